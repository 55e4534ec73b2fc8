package data_test

import (
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mami-lab/mami/data"
)

// synthetic returns the default dataset, timing the first call (Synthetic
// generates once per process and then copies).
var synthetic = sync.OnceValues(func() (*data.Set, *data.Set) {
	start := time.Now()
	train, official := data.Synthetic()
	syntheticTime = time.Since(start)
	return train, official
})

var syntheticTime time.Duration

func TestDefaultSyntheticValid(t *testing.T) {
	if err := data.DefaultSynthetic.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSynthetic(t *testing.T) {
	train, official := synthetic()
	t.Logf("generated 11,000 memes in %v (wall time, on a shared machine)", syntheticTime)

	for _, tc := range []struct {
		name      string
		set       *data.Set
		n, pos    int
		types     [4]int
		firstName string
	}{
		{"train", train, 10000, 5000, [4]int{1300, 2800, 2200, 1000}, "00001.jpg"},
		{"official", official, 1000, 500, [4]int{130, 280, 220, 100}, "10001.jpg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.set
			if s.Len() != tc.n || s.Dim != 512 {
				t.Fatalf("%d memes × %d, want %d × 512", s.Len(), s.Dim, tc.n)
			}
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			if s.Memes[0].FileName != tc.firstName {
				t.Errorf("first file name %q, want %q", s.Memes[0].FileName, tc.firstName)
			}
			var pos int
			var types [4]int
			for _, m := range s.Memes {
				pos += m.Misogynous
				tt := [4]int{m.Shaming, m.Stereotype, m.Objectification, m.Violence}
				any := 0
				for j, v := range tt {
					types[j] += v
					any |= v
				}
				if m.Misogynous == 0 && any == 1 {
					t.Fatalf("meme %s: Sub-task B label on a non-misogynous meme", m.FileName)
				}
				if m.Misogynous == 1 && any == 0 {
					t.Fatalf("meme %s: misogynous without a type", m.FileName)
				}
				if m.Text == "" || !strings.Contains(m.Text, "\n") {
					t.Fatalf("meme %s: transcription %q, want two lines", m.FileName, m.Text)
				}
			}
			if pos != tc.pos || types != tc.types {
				t.Errorf("misogynous %d, types %v; want %d, %v", pos, types, tc.pos, tc.types)
			}
		})
	}

	// Anisotropy: raw cosines of unrelated memes are high within a
	// modality, as with CLIP.
	cos := func(a, b []float32) float64 {
		var s float64
		for i := range a {
			s += float64(a[i]) * float64(b[i])
		}
		return s
	}
	var ci, ct float64
	for i := range 200 {
		ci += cos(train.ImageRow(i), train.ImageRow(i+5000))
		ct += cos(train.TextRow(i), train.TextRow(i+5000))
	}
	if ci/200 < 0.5 || ct/200 < 0.5 {
		t.Errorf("mean raw cosine image %.3f text %.3f, want ≥ 0.5", ci/200, ct/200)
	}

}

// TestSyntheticDeterministic generates twice (a smaller set, same code
// paths and worker split) and pins a few values of the default set so that
// a change of the generator cannot go unnoticed.
func TestSyntheticDeterministic(t *testing.T) {
	p := data.DefaultSynthetic
	p.Train, p.TrainPositive, p.Test, p.TestPositive = 1500, 700, 300, 100
	a1, b1, err := data.GenerateSynthetic(p)
	if err != nil {
		t.Fatal(err)
	}
	a2, b2, _ := data.GenerateSynthetic(p)
	if !reflect.DeepEqual(a1, a2) || !reflect.DeepEqual(b1, b2) {
		t.Error("two generations differ")
	}
	train, official := synthetic()
	got := []float32{train.Image[0], train.Text[0], train.Image[len(train.Image)-1], official.Text[12345]}
	// Within 1e-6: architectures that fuse multiply-adds may differ in the
	// last bits.
	want := []float32{-0.014626087, -0.0853039, -0.022913834, -0.0571531}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("pinned values %v, want %v (the generator changed: recalibrate and update docs/format/synthetic.md)", got, want)
		}
	}
	// Synthetic returns copies: modifying one leaves the next call intact.
	t1, _ := data.Synthetic()
	t1.Image[0], t1.Memes[0].Misogynous = 42, 7
	t2, _ := data.Synthetic()
	if t2.Image[0] != train.Image[0] || t2.Memes[0].Misogynous != train.Memes[0].Misogynous {
		t.Error("modifying the result of Synthetic changed a later result")
	}
}

// TestSyntheticSignal checks the label signal the generator promises, with
// a nearest-class-mean probe: the image-only and text-only difference of
// class means separates the classes better than chance, and the product
// of image and text in the interaction subspace carries signal that neither
// modality's mean does.
func TestSyntheticSignal(t *testing.T) {
	train, _ := synthetic()
	dim := train.Dim
	acc := func(vec func(i int) []float32) float64 {
		mean := [2][]float64{make([]float64, dim), make([]float64, dim)}
		var cnt [2]float64
		for i, m := range train.Memes[:5000] {
			for d, x := range vec(i) {
				mean[m.Misogynous][d] += float64(x)
			}
			cnt[m.Misogynous]++
		}
		w := make([]float64, dim)
		var bias float64
		for d := range w {
			w[d] = mean[1][d]/cnt[1] - mean[0][d]/cnt[0]
			bias += w[d] * (mean[1][d]/cnt[1] + mean[0][d]/cnt[0]) / 2
		}
		correct := 0
		for i, m := range train.Memes[5000:] {
			var s float64
			for d, x := range vec(5000 + i) {
				s += w[d] * float64(x)
			}
			if (s > bias) == (m.Misogynous == 1) {
				correct++
			}
		}
		return float64(correct) / 5000
	}
	img := acc(train.ImageRow)
	txt := acc(train.TextRow)
	t.Logf("class-mean probe accuracy: image %.3f, text %.3f", img, txt)
	for name, a := range map[string]float64{"image": img, "text": txt} {
		if a < 0.6 || a > 0.9 {
			t.Errorf("%s probe accuracy %.3f, want in [0.6, 0.9]: signal partly, not wholly, in each modality", name, a)
		}
	}
	// Interaction: image and text of misogynous memes agree more (the
	// shared interaction subspace is aligned for misogynous interaction
	// memes and opposed for benign confounders), so the mean image–text
	// cosine differs between the classes by many standard errors.
	var sum, sum2 [2]float64
	var cnt [2]float64
	for i, m := range train.Memes {
		var c float64
		for d, x := range train.ImageRow(i) {
			c += float64(x) * float64(train.TextRow(i)[d])
		}
		sum[m.Misogynous] += c
		sum2[m.Misogynous] += c * c
		cnt[m.Misogynous]++
	}
	diff := sum[1]/cnt[1] - sum[0]/cnt[0]
	se := 0.0
	for k := range 2 {
		mean := sum[k] / cnt[k]
		se += (sum2[k]/cnt[k] - mean*mean) / cnt[k]
	}
	se = math.Sqrt(se)
	t.Logf("mean image-text cosine: misogynous − benign = %.4f (%.1f standard errors)", diff, diff/se)
	if diff < 5*se {
		t.Errorf("image-text cosine differs by %.4f (%.1f s.e.) between classes, want > 5 s.e.", diff, diff/se)
	}
}

func TestSyntheticParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(p *data.SyntheticParams)
		want   string
	}{
		{"routes over 1", func(p *data.SyntheticParams) { p.ImageRoute = 0.9 }, "route fractions"},
		{"too many positives", func(p *data.SyntheticParams) { p.TrainPositive = p.Train + 1 }, "out of range"},
		{"noise", func(p *data.SyntheticParams) { p.LabelNoise = 0.6 }, "label_noise"},
		{"type rate", func(p *data.SyntheticParams) { p.TypeRates[1] = 0.9 }, "type_rates[1]"},
		{"small dim", func(p *data.SyntheticParams) { p.Dim = 8 }, "too small"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := data.DefaultSynthetic
			tc.modify(&p)
			if _, _, err := data.GenerateSynthetic(p); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestGenerateSyntheticSmall(t *testing.T) {
	p := data.DefaultSynthetic
	p.Train, p.TrainPositive, p.Test, p.TestPositive, p.Dim = 101, 37, 11, 6, 128
	train, official, err := data.GenerateSynthetic(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := train.Validate(); err != nil {
		t.Fatal(err)
	}
	pos := 0
	for _, y := range official.Labels() {
		pos += y
	}
	if train.Len() != 101 || official.Len() != 11 || pos != 6 {
		t.Errorf("sizes %d/%d, official positives %d; want 101/11, 6", train.Len(), official.Len(), pos)
	}
	if math.IsNaN(float64(train.Image[0])) {
		t.Error("NaN embedding")
	}
}

func BenchmarkGenerateSynthetic(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := data.GenerateSynthetic(data.DefaultSynthetic); err != nil {
			b.Fatal(err)
		}
	}
}
