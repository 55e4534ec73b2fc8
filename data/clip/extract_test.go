package clip_test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mami-lab/mami/data/clip"
)

var (
	bundleOnce sync.Once
	bundle     *clip.Bundle
	bundleErr  error
)

// tinyBundle loads the tiny fixture model with the fixture tokenizer once
// for all tests (the model and tokenizer are safe for concurrent use).
func tinyBundle(t testing.TB) *clip.Bundle {
	t.Helper()
	dir, gz := tinyDir(t), filepath.Join(fixtureDir(t), "bpe_simple_vocab_16e6.txt.gz")
	bundleOnce.Do(func() { bundle, bundleErr = clip.LoadBundle(dir, gz) })
	if bundleErr != nil {
		t.Fatal(bundleErr)
	}
	return bundle
}

// writePNG writes a w×h image with a pattern depending on seed.
func writePNG(t *testing.T, path string, w, h, seed int) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x*7 + seed*31), uint8(y*5 + seed), uint8((x + y) * seed), 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func makeItems(t *testing.T, dir string, n int) []clip.Item {
	var items []clip.Item
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%d.png", i+1)
		writePNG(t, filepath.Join(dir, name), 40+i, 36+2*i, i+1)
		items = append(items, clip.Item{Name: name, Text: fmt.Sprintf("MEME NUMBER %d when she cooks", i), ImagePath: filepath.Join(dir, name)})
	}
	return items
}

func TestExtractMatchesDirectEncoding(t *testing.T) {
	b := tinyBundle(t)
	dir := t.TempDir()
	items := makeItems(t, dir, 5)
	var reports []clip.Progress
	res, err := clip.Extract(context.Background(), items, clip.ExtractOptions{
		Model: b.Model, Tokenizer: b.Tokenizer, Preprocessor: b.Preprocessor,
		WorkDir: filepath.Join(dir, "work"), Fingerprint: b.Fingerprint, Batch: 2,
		Progress: func(p clip.Progress) { reports = append(reports, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dim != 16 || len(res.Names) != 5 || len(res.Image) != 5*16 || len(res.Text) != 5*16 {
		t.Fatalf("got dim %d, %d names, %d/%d values", res.Dim, len(res.Names), len(res.Image), len(res.Text))
	}
	if last := reports[len(reports)-1]; last.Done != 5 || last.Total != 5 || len(reports) != 4 {
		t.Errorf("progress reports %+v: want 4 ending at 5/5", reports)
	}
	for i, it := range items {
		if res.Names[i] != it.Name {
			t.Errorf("name %d = %q, want %q", i, res.Names[i], it.Name)
		}
		px, err := b.Preprocessor.PixelsFromFile(it.ImagePath)
		if err != nil {
			t.Fatal(err)
		}
		img, _ := b.Model.EncodeImages([][]float32{px})
		txt, _ := b.Model.EncodeText([][]int{b.Tokenizer.TokenizeContext(it.Text, 77)})
		assertClose(t, "image "+it.Name, res.Image[i*16:(i+1)*16], clip.Normalize(img[0]), 1e-5)
		assertClose(t, "text "+it.Name, res.Text[i*16:(i+1)*16], clip.Normalize(txt[0]), 1e-5)
	}
}

func TestExtractResumes(t *testing.T) {
	b := tinyBundle(t)
	dir := t.TempDir()
	items := makeItems(t, dir, 6)
	work := filepath.Join(dir, "work")
	opts := clip.ExtractOptions{Model: b.Model, Tokenizer: b.Tokenizer, Preprocessor: b.Preprocessor, WorkDir: work, Fingerprint: b.Fingerprint, Batch: 2}

	// A run cancelled after its first batch keeps that batch.
	ctx, cancel := context.WithCancel(context.Background())
	first := opts
	first.Progress = func(p clip.Progress) {
		if p.Done >= 2 {
			cancel()
		}
	}
	if _, err := clip.Extract(ctx, items, first); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled extract: got %v, want context.Canceled", err)
	}
	// Simulate a kill in the middle of a write: a torn record at the end.
	part := filepath.Join(work, "features.part")
	f, err := os.OpenFile(part, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{5, 0, 0, 0, 'x', 'y'})
	f.Close()

	var resumed int
	second := opts
	second.Progress = func(p clip.Progress) { resumed = p.Resumed }
	res, err := clip.Extract(context.Background(), items, second)
	if err != nil {
		t.Fatal(err)
	}
	if resumed < 2 || resumed >= 6 {
		t.Errorf("resumed %d items, want at least the first batch of 2 and not all 6", resumed)
	}
	full, err := clip.Extract(context.Background(), items, clip.ExtractOptions{Model: b.Model, Tokenizer: b.Tokenizer, Preprocessor: b.Preprocessor, WorkDir: filepath.Join(dir, "fresh"), Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Names, full.Names) || !slices.Equal(res.Image, full.Image) || !slices.Equal(res.Text, full.Text) {
		t.Error("resumed extraction differs from a fresh one")
	}
	// Another model's fingerprint is refused.
	other := opts
	other.Fingerprint = "different"
	if _, err := clip.Extract(context.Background(), items, other); err == nil || !strings.Contains(err.Error(), work) {
		t.Errorf("different fingerprint: got %v, want an error naming the work dir", err)
	}
	if err := clip.RemoveWorkDir(work); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(work); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("work dir still exists: %v", err)
	}
}

func TestExtractBadImage(t *testing.T) {
	b := tinyBundle(t)
	dir := t.TempDir()
	items := makeItems(t, dir, 3)
	os.WriteFile(items[1].ImagePath, []byte("not an image"), 0o644)
	opts := clip.ExtractOptions{Model: b.Model, Tokenizer: b.Tokenizer, Preprocessor: b.Preprocessor, WorkDir: filepath.Join(dir, "w1"), Batch: 2}
	_, err := clip.Extract(context.Background(), items, opts)
	if err == nil || !strings.Contains(err.Error(), items[1].ImagePath) {
		t.Fatalf("got %v, want an error naming %s", err, items[1].ImagePath)
	}
	opts.SkipBad = true
	opts.WorkDir = filepath.Join(dir, "w2")
	res, err := clip.Extract(context.Background(), items, opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{items[0].Name, items[2].Name}; !slices.Equal(res.Names, want) {
		t.Errorf("names %v, want %v", res.Names, want)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Name != items[1].Name {
		t.Errorf("skipped %+v, want %s", res.Skipped, items[1].Name)
	}
	dup := append(items[:1:1], items[0])
	if _, err := clip.Extract(context.Background(), dup, opts); err == nil {
		t.Error("duplicate names: got nil error")
	}
}
