package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/mami-lab/mami/models"
)

// The parity check is the conformance suite every backend passes against the CPU backend: the same
// spec, seed (initial weights and dropout masks), data and batches, trained side by side.

// ParityConfig is one parity check.
type ParityConfig struct {
	Spec        models.Spec
	Seed        int64
	Epochs      int     // default 2
	BatchSize   int     // default 64
	LR          float64 // default 1e-3
	WeightDecay float64 // AdamW's; default 0.01
	ClipNorm    float64 // default 1.0
	// Image, Text (rows × dim, row-major) and Labels (0/1) are the training data.
	Image, Text, Labels []float32
}

// ParityResult compares a backend with the CPU backend.
type ParityResult struct {
	Fusion, Head string
	// GradRelDiff is the largest |g − g_cpu| / max|g_cpu| over the params of the first step.
	GradRelDiff float64
	// CPULoss and Loss are the sample-weighted mean training losses of each epoch (1-based: [0] is epoch 1).
	CPULoss, Loss []float64
	// LossRelDiff is the largest |loss − loss_cpu| / |loss_cpu| over the epochs.
	LossRelDiff float64
	// EvalRelDiff is the relative difference of the eval-mode loss on the training data after training.
	EvalRelDiff float64
}

// OK reports whether r is within tol (relative) on gradients and losses.
func (r ParityResult) OK(tol float64) bool {
	return r.GradRelDiff <= tol && r.LossRelDiff <= tol && r.EvalRelDiff <= tol
}

func (c *ParityConfig) defaults() {
	if c.Epochs == 0 {
		c.Epochs = 2
	}
	if c.BatchSize == 0 {
		c.BatchSize = 64
	}
	if c.LR == 0 {
		c.LR = 1e-3
	}
	if c.WeightDecay == 0 {
		c.WeightDecay = 0.01
	}
	if c.ClipNorm == 0 {
		c.ClipNorm = 1
	}
}

// CheckParity trains the CPU backend (models.Net) and net, built by newNet from the same spec and
// seed, side by side with AdamW on the same batches, and compares them.
func CheckParity(cfg ParityConfig, newNet func(models.Spec, int64) (*Net, error)) (ParityResult, error) {
	cfg.defaults()
	s := cfg.Spec
	res := ParityResult{Fusion: s.Fusion, Head: s.Head}
	rows := len(cfg.Labels)
	if rows == 0 || len(cfg.Image) != rows*s.ImageDim || len(cfg.Text) != rows*s.TextDim {
		return res, fmt.Errorf("cuda: parity data: %d labels, %d image and %d text values for dims %d/%d",
			rows, len(cfg.Image), len(cfg.Text), s.ImageDim, s.TextDim)
	}
	cpu, err := models.New(s, cfg.Seed)
	if err != nil {
		return res, err
	}
	opt, err := models.NewOptimizer(models.OptAdamW, cpu.Params(), 0.9, 0.999, 1e-8, cfg.WeightDecay)
	if err != nil {
		return res, err
	}
	dev, err := newNet(s, cfg.Seed)
	if err != nil {
		return res, err
	}
	defer dev.Close()
	dev.SetHostMasks(true)
	if err := dev.SetOptimizer(models.OptAdamW, 0.9, 0.999, 1e-8, cfg.WeightDecay); err != nil {
		return res, err
	}
	if err := dev.UploadSet(cfg.Image, cfg.Text, cfg.Labels); err != nil {
		return res, err
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x70617269747921))
	b := models.Batch{}
	for epoch := 0; epoch < cfg.Epochs; epoch++ {
		order := rng.Perm(rows)
		var cpuSum, devSum float64
		for lo := 0; lo < rows; lo += cfg.BatchSize {
			idx := order[lo:min(lo+cfg.BatchSize, rows)]
			gatherBatch(&b, idx, s, cfg.Image, cfg.Text, cfg.Labels)
			lc, err := cpu.Grad(b, 1, false)
			if err != nil {
				return res, err
			}
			ld, err := dev.GradRows(idx, 1, false)
			if err != nil {
				return res, err
			}
			if epoch == 0 && lo == 0 {
				if res.GradRelDiff, err = gradDiff(cpu.Params(), dev); err != nil {
					return res, err
				}
			}
			models.ClipGradNorm(cpu.Params(), cfg.ClipNorm)
			if _, err := dev.ClipGradNorm(cfg.ClipNorm); err != nil {
				return res, err
			}
			opt.Step(cfg.LR)
			if err := dev.Step(cfg.LR); err != nil {
				return res, err
			}
			cpuSum += lc * float64(len(idx))
			devSum += ld * float64(len(idx))
		}
		res.CPULoss = append(res.CPULoss, cpuSum/float64(rows))
		res.Loss = append(res.Loss, devSum/float64(rows))
		res.LossRelDiff = max(res.LossRelDiff, relDiff(res.Loss[epoch], res.CPULoss[epoch]))
	}
	all := models.Batch{N: rows, Image: cfg.Image, Text: cfg.Text, Labels: cfg.Labels}
	_, lc, err := cpu.Predict(all)
	if err != nil {
		return res, err
	}
	_, ld, err := dev.Predict(all)
	if err != nil {
		return res, err
	}
	res.EvalRelDiff = relDiff(ld, lc)
	return res, nil
}

func relDiff(a, b float64) float64 { return math.Abs(a-b) / max(math.Abs(b), 1e-12) }

func gradDiff(cpu []*models.Param, dev *Net) (float64, error) {
	dp, err := dev.Params()
	if err != nil {
		return 0, err
	}
	worst := 0.0
	for i, p := range cpu {
		var scale float64
		for _, g := range p.Grad {
			scale = max(scale, math.Abs(float64(g)))
		}
		scale = max(scale, 1e-12)
		for j, g := range p.Grad {
			worst = max(worst, math.Abs(float64(dp[i].Grad[j])-float64(g))/scale)
		}
	}
	return worst, nil
}

// gatherBatch fills b with rows idx.
func gatherBatch(b *models.Batch, idx []int, s models.Spec, image, text, labels []float32) {
	n := len(idx)
	b.N = n
	b.Image = grow(b.Image, n*s.ImageDim)
	b.Text = grow(b.Text, n*s.TextDim)
	b.Labels = grow(b.Labels, n)
	for r, i := range idx {
		copy(b.Image[r*s.ImageDim:(r+1)*s.ImageDim], image[i*s.ImageDim:(i+1)*s.ImageDim])
		copy(b.Text[r*s.TextDim:(r+1)*s.TextDim], text[i*s.TextDim:(i+1)*s.TextDim])
		b.Labels[r] = labels[i]
	}
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}
