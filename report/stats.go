package report

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/mami-lab/mami/experiments"
)

// CI is a point estimate with a confidence interval.
type CI struct {
	Value, Lo, Hi float64
	// Level is the coverage, e.g. 0.95.
	Level float64
	// Resamples is the number of bootstrap resamples behind Lo and Hi.
	Resamples int
}

// BootstrapMacroF1 is the macro-F1 of prob (thresholded at
// experiments.Threshold) against labels with a percentile bootstrap
// confidence interval at level: resamples samples of the same size are
// drawn with replacement from a PCG generator seeded with seed, and Lo and
// Hi are the (1-level)/2 and (1+level)/2 quantiles of their macro-F1
// (linear interpolation between order statistics). The same seed gives the
// same interval on every machine. Labels other than 0 and 1 give NaN
// bounds.
func BootstrapMacroF1(labels []int, prob []float32, resamples int, level float64, seed uint64) CI {
	pred := experiments.PredictLabels(prob)
	ci := CI{Value: experiments.MacroF1(labels, pred), Level: level, Resamples: resamples}
	n := len(labels)
	if n == 0 || resamples <= 0 {
		ci.Lo, ci.Hi = math.NaN(), math.NaN()
		return ci
	}
	// Each sample's cell of the confusion matrix: 0 TN, 1 FP, 2 FN, 3 TP.
	cell := make([]uint8, n)
	for i, y := range labels {
		if (y != 0 && y != 1) || i >= len(pred) {
			ci.Lo, ci.Hi = math.NaN(), math.NaN() // unlabelled or mismatched: no interval
			return ci
		}
		cell[i] = uint8(2*y + pred[i])
	}
	rng := rand.New(rand.NewPCG(seed, 0x6d616d69)) // "mami"
	stats := make([]float64, 0, resamples)
	for range resamples {
		var k [4]int
		for range n {
			k[cell[rng.IntN(n)]]++
		}
		stats = append(stats, experiments.Confusion{TN: k[0], FP: k[1], FN: k[2], TP: k[3]}.MacroF1())
	}
	slices.Sort(stats)
	ci.Lo = Quantile(stats, (1-level)/2)
	ci.Hi = Quantile(stats, (1+level)/2)
	return ci
}

// Quantile is the q-quantile of sorted values, interpolating linearly
// between order statistics (NumPy's default, "linear"). NaN when empty.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	f := pos - float64(lo)
	return sorted[lo] + f*(sorted[hi]-sorted[lo])
}

// MeanSD is the mean and sample standard deviation (n-1) of the finite
// values of xs, and how many there were; SD is NaN for fewer than two.
func MeanSD(xs []float64) (mean, sd float64, n int) {
	var sum float64
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			sum += x
			n++
		}
	}
	if n == 0 {
		return math.NaN(), math.NaN(), 0
	}
	mean = sum / float64(n)
	if n < 2 {
		return mean, math.NaN(), n
	}
	var ss float64
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			ss += (x - mean) * (x - mean)
		}
	}
	return mean, math.Sqrt(ss / float64(n-1)), n
}
