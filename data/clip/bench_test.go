package clip_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mami-lab/mami/data/clip"
)

var (
	b32Once  sync.Once
	b32Model *clip.Model
	b32Err   error
)

// vitB32 returns a ViT-B/32-sized model (openai/clip-vit-base-patch32's
// config.json sizes) with random weights.
func vitB32(b *testing.B) *clip.Model {
	b32Once.Do(func() { b32Model, b32Err = clip.NewRandom(clip.Config{}, 1) })
	if b32Err != nil {
		b.Fatal(b32Err)
	}
	return b32Model
}

func benchImages(b *testing.B, batch int) {
	m := vitB32(b)
	rng := rand.New(rand.NewPCG(3, 4))
	px := make([][]float32, batch)
	for i := range px {
		px[i] = make([]float32, m.PixelSize())
		for j := range px[i] {
			px[i][j] = float32(rng.NormFloat64())
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := m.EncodeImages(px); err != nil {
			b.Fatal(err)
		}
	}
	reportRates(b, batch, cpu0, "images")
}

func benchTexts(b *testing.B, batch, tokens int) {
	m := vitB32(b)
	ids := make([][]int, batch)
	for i := range ids {
		seq := make([]int, clip.ContextLength)
		seq[0] = clip.StartOfText
		for j := 1; j < tokens-1; j++ {
			seq[j] = 320 + j
		}
		seq[tokens-1] = clip.EndOfText
		ids[i] = seq
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := m.EncodeText(ids); err != nil {
			b.Fatal(err)
		}
	}
	reportRates(b, batch, cpu0, "texts")
}

// reportRates reports items per wall-clock second and per CPU-second (the
// latter is robust to other processes competing for the cores).
func reportRates(b *testing.B, batch int, cpu0 time.Duration, unit string) {
	n := float64(b.N * batch)
	b.ReportMetric(n/b.Elapsed().Seconds(), unit+"/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(n/cpu.Seconds(), unit+"/cpu-s")
	}
}

// BenchmarkImagesViTB32 measures the image tower of a ViT-B/32-sized model.
func BenchmarkImagesViTB32(b *testing.B) {
	b.Run("batch1", func(b *testing.B) { benchImages(b, 1) })
	b.Run("batch8", func(b *testing.B) { benchImages(b, 8) })
}

// BenchmarkTextsViTB32 measures the text tower: 77 tokens (what the
// reference always computes) and 22 (MAMI's median transcription).
func BenchmarkTextsViTB32(b *testing.B) {
	b.Run("batch8/tokens77", func(b *testing.B) { benchTexts(b, 8, 77) })
	b.Run("batch8/tokens22", func(b *testing.B) { benchTexts(b, 8, 22) })
}

// BenchmarkMatMul measures the packed GEMM on a ViT-B/32 MLP shape.
func BenchmarkMatMul(b *testing.B) {
	const m, n, k = 400, 3072, 768
	a := make([]float32, m*k)
	w := make([]float32, n*k)
	for i := range a {
		a[i] = float32(i%7) * 0.1
	}
	for i := range w {
		w[i] = float32(i%5) * 0.1
	}
	mul := clip.PackTransposed(w, n, k)
	workers := runtime.GOMAXPROCS(0)
	cpu0 := cpuTime()
	for b.Loop() {
		mul(a, m, workers)
	}
	flop := 2 * m * n * k * float64(b.N)
	b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(flop/cpu.Seconds()/1e9, "GFLOP/cpu-s")
	}
}

// BenchmarkPreprocessJPEG640x480 decodes a 640×480 JPEG of noise and applies
// ViT-B/32's preprocessing (resize to 298×224, crop 224, normalise).
func BenchmarkPreprocessJPEG640x480(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256))
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	p := clip.DefaultPreprocessor
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		rgb, err := clip.DecodeImage(bytes.NewReader(buf.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		if px := p.Pixels(rgb); len(px) != 3*224*224 {
			b.Fatalf("got %d values", len(px))
		}
	}
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/op")
	}
}
