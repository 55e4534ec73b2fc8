package report_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mami-lab/mami/experiments"
	"github.com/mami-lab/mami/report"
)

// noisy returns n labels and scores that agree with the label with
// probability acc. Seeded.
func noisy(n int, acc float64, seed uint64) ([]int, []float32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	labels := make([]int, n)
	prob := make([]float32, n)
	for i := range labels {
		labels[i] = rng.IntN(2)
		right := rng.Float64() < acc
		switch {
		case right && labels[i] == 1, !right && labels[i] == 0:
			prob[i] = 0.9
		default:
			prob[i] = 0.1
		}
	}
	return labels, prob
}

func TestBootstrapMacroF1(t *testing.T) {
	labels, prob := noisy(2000, 0.8, 3)
	ci := report.BootstrapMacroF1(labels, prob, 1000, 0.95, 7)
	if want := experiments.MacroF1(labels, experiments.PredictLabels(prob)); ci.Value != want {
		t.Errorf("Value = %v, want the sample's macro-F1 %v", ci.Value, want)
	}
	if !(ci.Lo < ci.Value && ci.Value < ci.Hi) {
		t.Errorf("interval [%v, %v] does not contain %v", ci.Lo, ci.Hi, ci.Value)
	}
	// The standard error of a proportion near 0.8 on 2,000 samples is about
	// 0.009, so a 95% interval is about 0.035 wide.
	if w := ci.Hi - ci.Lo; w < 0.02 || w > 0.05 {
		t.Errorf("interval width %v, want about 0.035", w)
	}
	if again := report.BootstrapMacroF1(labels, prob, 1000, 0.95, 7); again != ci {
		t.Errorf("same seed gave %+v then %+v", ci, again)
	}
	if other := report.BootstrapMacroF1(labels, prob, 1000, 0.95, 8); other.Lo == ci.Lo && other.Hi == ci.Hi {
		t.Errorf("different seeds gave the same interval %+v", ci)
	}
	small := report.BootstrapMacroF1(labels[:200], prob[:200], 1000, 0.95, 7)
	if small.Hi-small.Lo <= ci.Hi-ci.Lo {
		t.Errorf("200 samples give a narrower interval (%v) than 2,000 (%v)", small.Hi-small.Lo, ci.Hi-ci.Lo)
	}
}

func TestBootstrapMacroF1Edges(t *testing.T) {
	perfect := report.BootstrapMacroF1([]int{0, 1, 1, 0}, []float32{0.1, 0.9, 0.8, 0.2}, 100, 0.95, 1)
	if perfect.Value != 1 || perfect.Lo != 1 || perfect.Hi != 1 {
		t.Errorf("perfect predictions: %+v, want 1 [1, 1]", perfect)
	}
	empty := report.BootstrapMacroF1(nil, nil, 100, 0.95, 1)
	if !math.IsNaN(empty.Lo) || !math.IsNaN(empty.Hi) {
		t.Errorf("no samples: %+v, want NaN bounds", empty)
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5}
	for _, tt := range []struct{ q, want float64 }{{0, 1}, {1, 5}, {0.5, 3}, {0.25, 2}, {0.1, 1.4}} {
		if got := report.Quantile(xs, tt.q); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if !math.IsNaN(report.Quantile(nil, 0.5)) {
		t.Error("Quantile of nothing is not NaN")
	}
}

func TestMeanSD(t *testing.T) {
	m, sd, n := report.MeanSD([]float64{2, 4, math.NaN(), 4, 4, 5, 5, 7, 9})
	if n != 8 || m != 5 || math.Abs(sd-math.Sqrt(32.0/7)) > 1e-12 {
		t.Errorf("MeanSD = %v, %v, %d; want 5, %v, 8", m, sd, n, math.Sqrt(32.0/7))
	}
	if _, sd, n := report.MeanSD([]float64{3}); n != 1 || !math.IsNaN(sd) {
		t.Errorf("one value: sd %v n %d, want NaN, 1", sd, n)
	}
}

func BenchmarkBootstrapMacroF1(b *testing.B) {
	labels, prob := noisy(2000, 0.8, 3)
	b.ReportAllocs()
	for b.Loop() {
		report.BootstrapMacroF1(labels, prob, 1000, 0.95, 7)
	}
}
