package cuda_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mami-lab/mami/models"
	"github.com/mami-lab/mami/models/cuda"
)

// randomSet returns rows samples with L2-normalised random embeddings and labels that depend on them
// (so training has something to learn).
func randomSet(seed uint64, rows, imageDim, textDim int) (image, text, labels []float32) {
	rng := rand.New(rand.NewPCG(seed, 7))
	image, text, labels = make([]float32, rows*imageDim), make([]float32, rows*textDim), make([]float32, rows)
	fill := func(x []float32, d int) {
		for r := range rows {
			row := x[r*d : (r+1)*d]
			var s float64
			for i := range row {
				row[i] = float32(rng.NormFloat64())
				s += float64(row[i]) * float64(row[i])
			}
			for i := range row {
				row[i] /= float32(math.Sqrt(s))
			}
		}
	}
	fill(image, imageDim)
	fill(text, textDim)
	for r := range labels {
		if image[r*imageDim]+text[r*textDim] > 0 {
			labels[r] = 1
		}
	}
	return image, text, labels
}

// TestConformance runs every fusion × head through the parity check against the CPU backend, on the Go
// reference of the CUDA kernels: the GPU plan, its kernels' arithmetic, the optimizer and clipping.
func TestConformance(t *testing.T) {
	const imageDim, textDim, rows = 12, 10, 70
	image, text, labels := randomSet(1, rows, imageDim, textDim)
	for _, f := range models.Fusions() {
		for _, h := range models.Heads() {
			t.Run(f+"/"+h, func(t *testing.T) {
				spec := models.Spec{Fusion: f, Head: h, Hidden: []int{9, 7}, Dropout: 0.25, ProjDim: 4, ImageDim: imageDim, TextDim: textDim}
				res, err := cuda.CheckParity(cuda.ParityConfig{
					Spec: spec, Seed: 5, Epochs: 2, BatchSize: 16, LR: 3e-3,
					Image: image, Text: text, Labels: labels,
				}, cuda.NewReference)
				if err != nil {
					t.Fatal(err)
				}
				if !res.OK(1e-4) {
					t.Errorf("parity: grad rel diff %.3g, loss rel diff %.3g (cpu %v, ref %v), eval rel diff %.3g; want all <= 1e-4",
						res.GradRelDiff, res.LossRelDiff, res.CPULoss, res.Loss, res.EvalRelDiff)
				}
				if math.Abs(res.CPULoss[1]-res.CPULoss[0]) < 1e-5 {
					t.Errorf("cpu losses %v: training changed nothing, so the check compared nothing", res.CPULoss)
				}
			})
		}
	}
}
