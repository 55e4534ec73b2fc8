package plots_test

import (
	"bytes"
	"errors"
	"flag"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mami-lab/mami/plots"
)

var regen = flag.Bool("regen", false, "regenerate the golden images in testdata/")

// seededHistory is a trainer-shaped history: 10 epochs of 25 steps whose
// loss falls from about 0.69 to about 0.48 with step noise, and a validation
// loss per epoch. Seeded, so the figure is the same on every run.
func seededHistory() []map[string]any {
	rng := rand.New(rand.NewPCG(7, 11))
	const epochs, steps = 10, 25
	var h []map[string]any
	step := 0
	for e := 1; e <= epochs; e++ {
		sum := 0.0
		for k := 1; k <= steps; k++ {
			step++
			t := float64(step) / (epochs * steps)
			loss := 0.48 + 0.21*math.Exp(-3.2*t) + 0.03*rng.NormFloat64()
			sum += loss
			row := map[string]any{"_step": step, "epoch": e, "train/loss": loss, "train/lr": 1e-3}
			if k == steps {
				row["train/epoch_loss"] = sum / steps
				row["val/loss"] = 0.50 + 0.17*math.Exp(-2.5*t) + 0.01*rng.NormFloat64()
			}
			h = append(h, row)
		}
	}
	return h
}

func TestLossGolden(t *testing.T) {
	dir := t.TempDir()
	ref := plots.SeedStudy
	paths, err := plots.Loss(dir, seededHistory(), plots.LossOptions{Title: "seed preset (synthetic)", Reference: &ref})
	if err != nil {
		t.Fatalf("Loss: %v", err)
	}
	if len(paths) != 2 || filepath.Base(paths[0]) != "loss.png" || filepath.Base(paths[1]) != "loss.svg" {
		t.Fatalf("paths = %v, want loss.png and loss.svg", paths)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "loss.png,loss.svg" {
		t.Errorf("dir holds %v, want exactly loss.png, loss.svg (no temporary files)", names)
	}
	got, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "loss_golden.png")
	if *regen {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", golden)
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run go test -regen to create it): %v", err)
	}
	frac, err := diffFraction(got, want)
	if err != nil {
		t.Fatal(err)
	}
	// Font rasterisation may move a few edge pixels between platforms; a
	// changed series, colour or layout moves far more than 0.5 %.
	if frac > 0.005 {
		bad := filepath.Join(t.TempDir(), "loss_got.png")
		_ = os.WriteFile(bad, got, 0o644)
		t.Errorf("loss.png differs from %s in %.2f%% of pixels (tolerance 0.5%%); got image kept at %s", golden, 100*frac, bad)
	}
	svg, err := os.ReadFile(paths[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "epoch", "loss", "study (reported)", "val/loss"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("loss.svg lacks %q", want)
		}
	}
}

// diffFraction is the share of pixels whose colour differs by more than
// 16/255 in any channel, or 1 when the sizes differ.
func diffFraction(a, b []byte) (float64, error) {
	ia, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		return 0, err
	}
	ib, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	if ia.Bounds() != ib.Bounds() {
		return 1, nil
	}
	r := ia.Bounds()
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if differs(ia, ib, x, y) {
				n++
			}
		}
	}
	return float64(n) / float64(r.Dx()*r.Dy()), nil
}

func differs(a, b image.Image, x, y int) bool {
	r1, g1, b1, a1 := a.At(x, y).RGBA()
	r2, g2, b2, a2 := b.At(x, y).RGBA()
	const tol = 16 << 8
	d := func(p, q uint32) bool { return p > q+tol || q > p+tol }
	return d(r1, r2) || d(g1, g2) || d(b1, b2) || d(a1, a2)
}

func TestLossGoldenDetectsChange(t *testing.T) {
	// The tolerance must not hide a real change: dropping the reference
	// markers has to fail the comparison.
	want, err := os.ReadFile(filepath.Join("testdata", "loss_golden.png"))
	if err != nil {
		t.Skipf("no golden yet: %v", err)
	}
	dir := t.TempDir()
	if _, err := plots.Loss(dir, seededHistory(), plots.LossOptions{Title: "seed preset (synthetic)"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "loss.png"))
	if err != nil {
		t.Fatal(err)
	}
	frac, err := diffFraction(got, want)
	if err != nil {
		t.Fatal(err)
	}
	if frac <= 0.005 {
		t.Errorf("figure without reference differs in only %.3f%% of pixels; the golden check would not notice", 100*frac)
	}
}

func TestExtractLoss(t *testing.T) {
	h := []map[string]any{
		{"_step": 1.0, "epoch": 1.0, "train/loss": 0.7},
		{"_step": 2.0, "epoch": 1.0, "train/loss": 0.6, "train/epoch_loss": 0.65, "val/loss": 0.66},
		{"_step": 3.0, "epoch": 2.0, "train/loss": "NaN"},
		{"_step": 4.0, "epoch": 2.0, "train/loss": float32(0.5), "train/epoch_loss": "Infinity", "val/loss": int64(1)},
	}
	s := plots.ExtractLoss(h)
	wantStep := [][2]float64{{0.5, 0.7}, {1, 0.6}, {2, 0.5}}
	if len(s.Step) != len(wantStep) {
		t.Fatalf("step series = %v, want %v", s.Step, wantStep)
	}
	for i, w := range wantStep {
		if math.Abs(s.Step[i].X-w[0]) > 1e-12 || math.Abs(s.Step[i].Y-w[1]) > 1e-6 {
			t.Errorf("step[%d] = (%v, %v), want (%v, %v)", i, s.Step[i].X, s.Step[i].Y, w[0], w[1])
		}
	}
	if len(s.Epoch) != 1 || s.Epoch[0].X != 1 || s.Epoch[0].Y != 0.65 {
		t.Errorf("epoch series = %v, want [(1, 0.65)] (Infinity dropped)", s.Epoch)
	}
	if len(s.Val) != 2 || s.Val[1].X != 2 || s.Val[1].Y != 1 {
		t.Errorf("val series = %v, want (1, 0.66), (2, 1)", s.Val)
	}
}

func TestLossErrors(t *testing.T) {
	tests := []struct {
		name    string
		history []map[string]any
	}{
		{"empty", nil},
		{"no loss keys", []map[string]any{{"_step": 1, "train/lr": 0.1}}},
		{"only non-finite", []map[string]any{{"_step": 1, "epoch": 1, "train/loss": math.NaN()}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "plots")
			_, err := plots.Loss(dir, tt.history, plots.LossOptions{})
			if !errors.Is(err, plots.ErrNoData) {
				t.Fatalf("err = %v, want ErrNoData", err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("dir created for a failed plot: %v", err)
			}
		})
	}
}

func TestNumber(t *testing.T) {
	tests := []struct {
		in   any
		want float64
		ok   bool
	}{
		{1.5, 1.5, true}, {float32(0.25), 0.25, true}, {3, 3, true}, {int64(-2), -2, true},
		{"Infinity", math.Inf(1), true}, {"-Infinity", math.Inf(-1), true},
		{"0.5", 0, false}, {nil, 0, false}, {true, 0, false},
	}
	for _, tt := range tests {
		got, ok := plots.Number(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("Number(%#v) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if v, ok := plots.Number("NaN"); !ok || !math.IsNaN(v) {
		t.Errorf("Number(\"NaN\") = %v, %v; want NaN, true", v, ok)
	}
}
