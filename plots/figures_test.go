package plots_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/mami-lab/mami/experiments"
	"github.com/mami-lab/mami/plots"
)

// figDir, when set, receives every figure of the golden tests in all three
// formats at print resolution, for looking at them.
var figDir = flag.String("figdir", "", "also write every test figure (pdf, svg, png at 300 dpi) into this folder")

// goldenDPI keeps the golden images small; the figures are vector, so the
// layout at 100 dpi is the layout at print.
const goldenDPI = 100

var fusions = []string{"concat", "late", "gmu", "text_only"}

// fusionHistory is a trainer-shaped history of one run: epochs of 20 steps
// whose loss falls towards a floor that depends on the fusion and lr, and
// validation metrics per epoch. Seeded.
func fusionHistory(rng *rand.Rand, epochs int, floor, speed float64) []map[string]any {
	var h []map[string]any
	step := 0
	for e := 1; e <= epochs; e++ {
		sum := 0.0
		const steps = 20
		for k := 1; k <= steps; k++ {
			step++
			t := float64(step) / (steps * 10)
			loss := floor + (0.69-floor)*math.Exp(-speed*t) + 0.02*rng.NormFloat64()
			sum += loss
			row := map[string]any{"_step": float64(step), "epoch": float64(e), "train/loss": loss}
			if k == steps {
				f1 := 0.5 + (0.78-floor/3)*(1-math.Exp(-speed*t)) + 0.01*rng.NormFloat64()
				f1 = math.Min(f1, 0.95)
				row["train/epoch_loss"] = sum / steps
				row["val/loss"] = floor + 0.03 + (0.69-floor)*math.Exp(-0.8*speed*t) + 0.01*rng.NormFloat64()
				row["val/f1_macro"] = f1
				row["val/acc"] = f1 + 0.01
				row["val/auroc"] = math.Min(0.99, f1+0.08)
			}
			h = append(h, row)
		}
	}
	return h
}

// scores draws n labelled samples whose P(misogynous) separates the
// classes by sep (logit units). Seeded.
func scores(rng *rand.Rand, n int, sep float64) ([]int, []float32) {
	labels := make([]int, n)
	prob := make([]float32, n)
	for i := range labels {
		if rng.Float64() < 0.5 {
			labels[i] = 1
		}
		z := (float64(labels[i])-0.5)*sep + rng.NormFloat64()
		prob[i] = float32(1 / (1 + math.Exp(-z)))
	}
	return labels, prob
}

func lossFigure() (*plots.Figure, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	var train, val []plots.Series
	for i, f := range fusions {
		s := plots.Series{Label: f}
		v := plots.Series{Label: f}
		for seed := 0; seed < 3; seed++ {
			h := fusionHistory(rng, 8, 0.3+0.05*float64(i), 2+float64(i)/2)
			s.Runs = append(s.Runs, plots.EpochMetric(h, "train/epoch_loss"))
			v.Runs = append(v.Runs, plots.EpochMetric(h, "val/loss"))
		}
		train, val = append(train, s), append(val, v)
	}
	return plots.Curves("loss", plots.TwoColumn, 2.8*vg.Inch, []plots.CurvePanel{
		{Title: "(a) training loss", XLabel: "epoch", YLabel: "loss (epoch mean)", Series: train, Epochs: true},
		{Title: "(b) validation loss", XLabel: "epoch", YLabel: "loss", Series: val, Epochs: true},
	})
}

var lrs = []float64{1e-4, 3e-4, 1e-3, 3e-3}

func lrFigure() (*plots.Figure, error) {
	rng := rand.New(rand.NewPCG(3, 4))
	var series []plots.Series
	for i, f := range fusions {
		s := plots.Series{Label: f}
		for seed := 0; seed < 2; seed++ {
			var xys plotter.XYs
			for j, lr := range lrs {
				y := 0.72 - 0.02*float64(i) - 0.01*math.Pow(float64(j)-1.6, 2) + 0.01*rng.NormFloat64()
				xys = append(xys, plotter.XY{X: lr, Y: y})
			}
			s.Runs = append(s.Runs, xys)
		}
		series = append(series, s)
	}
	return plots.Curves("lr_sensitivity", plots.OneColumn, 2.9*vg.Inch, []plots.CurvePanel{{
		XLabel: "learning rate", YLabel: "final validation macro-F1", Series: series, LogX: true, Markers: true,
	}})
}

func heatmapFigure() (*plots.Figure, error) {
	rng := rand.New(rand.NewPCG(5, 6))
	h := plots.Heatmap{XLabel: "learning rate", YLabel: "fusion", Rows: fusions}
	for _, lr := range lrs {
		h.Cols = append(h.Cols, plots.FormatLR(lr))
	}
	for i := range fusions {
		row := make([]float64, len(lrs))
		for j := range lrs {
			row[j] = 0.6 + 0.1*rng.Float64() - 0.01*float64(i)
		}
		h.Values = append(h.Values, row)
	}
	h.Values[3][0] = math.NaN() // a cell not run
	return plots.NewHeatmap("heatmap", plots.OneColumn, 2.6*vg.Inch, h)
}

func rocFigure() (*plots.Figure, error) {
	rng := rand.New(rand.NewPCG(7, 8))
	var sc []plots.Scored
	for i, f := range fusions {
		l, p := scores(rng, 400, 2.5-0.4*float64(i))
		sc = append(sc, plots.Scored{Label: f, Labels: l, Prob: p})
	}
	return plots.NewROCPR("roc_pr", plots.TwoColumn, 3.4*vg.Inch, sc)
}

func confusionFigure() (*plots.Figure, error) {
	rng := rand.New(rand.NewPCG(9, 10))
	l, p := scores(rng, 1000, 2)
	c := experiments.NewConfusion(l, experiments.PredictLabels(p))
	return plots.NewConfusion("confusion", "concat, test split", plots.OneColumn, 2.8*vg.Inch, c)
}

func intervalFigure() (*plots.Figure, error) {
	rng := rand.New(rand.NewPCG(11, 12))
	var items []plots.Interval
	for _, f := range fusions {
		v := 0.65 + 0.08*rng.Float64()
		items = append(items, plots.Interval{Label: f, Value: v, Lo: v - 0.02 - 0.01*rng.Float64(), Hi: v + 0.02 + 0.01*rng.Float64()})
	}
	return plots.NewIntervals("test_f1", "", "test macro-F1 (95% bootstrap CI)", plots.OneColumn, 2.2*vg.Inch, items)
}

func reproFigure() (*plots.Figure, error) {
	rng := rand.New(rand.NewPCG(13, 14))
	faithful := fusionHistory(rng, 10, 0.45, 1.2)
	correct := fusionHistory(rng, 10, 0.15, 3.5)
	return plots.NewReproduction("reproduction", plots.TwoColumn, 2.8*vg.Inch,
		plots.ReproRun{Head: "double_softmax", History: faithful},
		plots.ReproRun{Head: "softmax_ce", History: correct}, plots.SeedStudy)
}

func metricsFigure() (*plots.Figure, error) {
	rng := rand.New(rand.NewPCG(15, 16))
	return plots.RunMetrics("metrics", "concat · softmax_ce · lr 1e-3", fusionHistory(rng, 10, 0.2, 3))
}

var figureCases = []struct {
	name  string
	build func() (*plots.Figure, error)
	texts []string // strings the SVG must contain
}{
	{"loss", lossFigure, []string{"training loss", "epoch", "concat", "text_only"}},
	{"lr_sensitivity", lrFigure, []string{"learning rate", "1e-4", "3e-3", "gmu"}},
	{"heatmap", heatmapFigure, []string{"fusion", "–", "1e-3"}},
	{"roc_pr", rocFigure, []string{"false positive rate", "precision", "AUROC", "chance"}},
	{"confusion", confusionFigure, []string{"predicted class", "true class", "misogynous"}},
	{"test_f1", intervalFigure, []string{"bootstrap", "late"}},
	{"reproduction", reproFigure, []string{"double_softmax", "softmax_ce", "study (reported)", "0.483"}},
	{"metrics", metricsFigure, []string{"macro-F1", "AUROC"}},
}

func TestFiguresGolden(t *testing.T) {
	for _, tc := range figureCases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := tc.build()
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			var buf bytes.Buffer
			if err := f.WriteTo(&buf, "png", goldenDPI); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			if *figDir != "" {
				if _, err := f.Save(*figDir, 0); err != nil {
					t.Fatal(err)
				}
			}
			golden := filepath.Join("testdata", "report_"+tc.name+"_golden.png")
			if *regen {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (go test ./plots -regen writes it): %v", err)
			}
			frac, err := diffFraction(got, want)
			if err != nil {
				t.Fatal(err)
			}
			if frac > 0.005 {
				bad := filepath.Join(t.TempDir(), tc.name+"_got.png")
				_ = os.WriteFile(bad, got, 0o644)
				t.Errorf("%s differs from %s in %.2f%% of pixels (tolerance 0.5%%); got image kept at %s", tc.name, golden, 100*frac, bad)
			}
		})
	}
}

// TestFigureFormats checks every figure in every format: the PDF starts
// with %PDF- and embeds its fonts, the SVG is well-formed XML holding the
// figure's texts, the PNG decodes at the figure's size and DPI.
func TestFigureFormats(t *testing.T) {
	for _, tc := range figureCases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := tc.build()
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			dir := t.TempDir()
			paths, err := f.Save(dir, 72)
			if err != nil {
				t.Fatal(err)
			}
			if len(paths) != 3 {
				t.Fatalf("Save wrote %v, want 3 files", paths)
			}
			for _, p := range paths {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				switch filepath.Ext(p) {
				case ".pdf":
					if !bytes.HasPrefix(b, []byte("%PDF-")) {
						t.Errorf("%s starts with %q, want %%PDF-", p, b[:min(8, len(b))])
					}
					if !bytes.Contains(b, []byte("/FontFile2")) {
						t.Errorf("%s does not embed its fonts", p)
					}
				case ".svg":
					checkXML(t, p, b)
					if !bytes.Contains(b, []byte("Arial,Helvetica,sans-serif")) {
						t.Errorf("%s names no fallback font", p)
					}
					for _, s := range tc.texts {
						if !bytes.Contains(b, []byte(xmlEscape(s))) {
							t.Errorf("%s lacks text %q", p, s)
						}
					}
				case ".png":
					img, err := png.Decode(bytes.NewReader(b))
					if err != nil {
						t.Fatalf("%s: %v", p, err)
					}
					wantW := int(math.Ceil(f.Width.Points() / 72 * 72))
					if got := img.Bounds().Dx(); got < wantW-1 || got > wantW+1 {
						t.Errorf("%s is %d px wide, want %d (%.2f in at 72 dpi)", p, got, wantW, f.Width/vg.Inch)
					}
				}
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.Contains(e.Name(), ".tmp") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func checkXML(t *testing.T, name string, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", name, err)
		}
	}
}

// TestFigureErrors checks that figures refuse empty or inconsistent input
// with an error, not a panic or a blank figure.
func TestFigureErrors(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name  string
		build func() (*plots.Figure, error)
		want  error
	}{
		{"curves without panels", func() (*plots.Figure, error) { return plots.Curves("x", plots.OneColumn, vg.Inch, nil) }, plots.ErrEmpty},
		{"curves without points", func() (*plots.Figure, error) {
			return plots.Curves("x", plots.OneColumn, vg.Inch, []plots.CurvePanel{{Series: []plots.Series{{Label: "a"}}}})
		}, plots.ErrEmpty},
		{"heatmap all NaN", func() (*plots.Figure, error) {
			return plots.NewHeatmap("x", plots.OneColumn, vg.Inch, plots.Heatmap{Rows: []string{"a"}, Cols: []string{"b"}, Values: [][]float64{{nan}}})
		}, plots.ErrEmpty},
		{"heatmap ragged", func() (*plots.Figure, error) {
			return plots.NewHeatmap("x", plots.OneColumn, vg.Inch, plots.Heatmap{Rows: []string{"a"}, Cols: []string{"b", "c"}, Values: [][]float64{{1}}})
		}, nil},
		{"roc one class", func() (*plots.Figure, error) {
			return plots.NewROCPR("x", plots.TwoColumn, vg.Inch, []plots.Scored{{Label: "a", Labels: []int{1, 1}, Prob: []float32{0.2, 0.9}}})
		}, plots.ErrEmpty},
		{"roc length mismatch", func() (*plots.Figure, error) {
			return plots.NewROCPR("x", plots.TwoColumn, vg.Inch, []plots.Scored{{Label: "a", Labels: []int{1, 0}, Prob: []float32{0.2}}})
		}, nil},
		{"empty confusion", func() (*plots.Figure, error) {
			return plots.NewConfusion("x", "", plots.OneColumn, vg.Inch, experiments.Confusion{})
		}, plots.ErrEmpty},
		{"intervals all NaN", func() (*plots.Figure, error) {
			return plots.NewIntervals("x", "", "", plots.OneColumn, vg.Inch, []plots.Interval{{Label: "a", Value: nan}})
		}, plots.ErrEmpty},
		{"log x with zero", func() (*plots.Figure, error) {
			return plots.Curves("x", plots.OneColumn, vg.Inch, []plots.CurvePanel{{LogX: true,
				Series: []plots.Series{{Label: "a", Runs: []plotter.XYs{{{X: 0, Y: 1}, {X: 1, Y: 2}}}}}}})
		}, nil},
		{"repro without history", func() (*plots.Figure, error) {
			return plots.NewReproduction("x", plots.TwoColumn, vg.Inch, plots.ReproRun{Head: "a"}, plots.ReproRun{Head: "b"}, plots.SeedStudy)
		}, plots.ErrNoData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := tt.build()
			if err == nil {
				t.Fatalf("got figure %v, want an error", f.Name)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAggregate(t *testing.T) {
	runs := []plotter.XYs{
		{{X: 1, Y: 1}, {X: 2, Y: 4}},
		{{X: 1, Y: 3}, {X: 2, Y: math.NaN()}, {X: 3, Y: 5}},
	}
	mean, lo, hi := plots.Aggregate(runs)
	want := [][4]float64{{1, 2, 1, 3}, {2, 4, 4, 4}, {3, 5, 5, 5}}
	if len(mean) != len(want) {
		t.Fatalf("mean = %v, want %d points", mean, len(want))
	}
	for i, w := range want {
		if mean[i].X != w[0] || mean[i].Y != w[1] || lo[i].Y != w[2] || hi[i].Y != w[3] {
			t.Errorf("point %d = x %v mean %v lo %v hi %v, want %v", i, mean[i].X, mean[i].Y, lo[i].Y, hi[i].Y, w)
		}
	}
}

func TestFormatLR(t *testing.T) {
	for in, want := range map[float64]string{1e-3: "1e-3", 3e-4: "3e-4", 0.01: "1e-2", 1.5e-3: "1.5e-3", 0: "0"} {
		if got := plots.FormatLR(in); got != want {
			t.Errorf("FormatLR(%g) = %q, want %q", in, got, want)
		}
	}
}

func TestStyleForIsStable(t *testing.T) {
	seen := map[string]string{}
	for _, f := range []string{"concat", "late", "align", "cross", "gmu", "image_only", "text_only"} {
		s := plots.StyleFor(f)
		if s.Color != plots.StyleFor(f).Color {
			t.Fatalf("StyleFor(%q) changed between calls", f)
		}
		k := string(rune(s.Color.R)) + string(rune(s.Color.G)) + string(rune(s.Color.B))
		if other, ok := seen[k]; ok {
			t.Errorf("fusions %s and %s share a colour", other, f)
		}
		seen[k] = f
	}
}

func TestSimplify(t *testing.T) {
	tests := []struct {
		name     string
		in, want plotter.XYs
	}{
		{"vertical and horizontal runs", xy(0, 0, 0, 0.1, 0, 0.2, 0.1, 0.2, 0.2, 0.2, 0.2, 0.3),
			xy(0, 0, 0, 0.2, 0.2, 0.2, 0.2, 0.3)},
		{"diagonal", xy(0, 0, 0.5, 0.5, 1, 1), xy(0, 0, 1, 1)},
		{"turning back keeps the turn", xy(0, 0, 0, 1, 0, 0.5), xy(0, 0, 0, 1, 0, 0.5)},
		{"short", xy(0, 0, 1, 1), xy(0, 0, 1, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := plots.Simplify(tt.in)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// xy builds points from x, y pairs.
func xy(v ...float64) plotter.XYs {
	var out plotter.XYs
	for i := 0; i+1 < len(v); i += 2 {
		out = append(out, plotter.XY{X: v[i], Y: v[i+1]})
	}
	return out
}
