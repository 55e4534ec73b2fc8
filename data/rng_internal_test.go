package data

import (
	"math"
	"testing"
)

// TestNormDistribution checks the ziggurat sampler against the standard
// normal: moments and the probabilities of a few intervals, tails included.
func TestNormDistribution(t *testing.T) {
	r := newStream(1, 2, 3)
	const n = 500_000
	var sum, sum2, sum4 float64
	bins := []float64{-3.5, -2, -1, 0, 1, 2, 3.5}
	counts := make([]int, len(bins)+1)
	for range n {
		x := r.norm()
		sum += x
		sum2 += x * x
		sum4 += x * x * x * x
		k := 0
		for k < len(bins) && x > bins[k] {
			k++
		}
		counts[k]++
	}
	mean, variance, kurt := sum/n, sum2/n, sum4/n
	if math.Abs(mean) > 0.006 || math.Abs(variance-1) > 0.01 || math.Abs(kurt-3) > 0.06 {
		t.Errorf("mean %.4f var %.4f 4th moment %.4f, want 0, 1, 3", mean, variance, kurt)
	}
	cdf := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
	for k := range counts {
		lo, hi := math.Inf(-1), math.Inf(1)
		if k > 0 {
			lo = bins[k-1]
		}
		if k < len(bins) {
			hi = bins[k]
		}
		p := cdf(hi) - cdf(lo)
		sd := math.Sqrt(p * (1 - p) / n)
		if got := float64(counts[k]) / n; math.Abs(got-p) > 5*sd {
			t.Errorf("P(%g < x ≤ %g) = %.6f, want %.6f ± %.6f", lo, hi, got, p, 5*sd)
		}
	}
}
