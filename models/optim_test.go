package models_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mami-lab/mami/models"
)

func newParams(vals ...[]float32) []*models.Param {
	var ps []*models.Param
	for _, v := range vals {
		ps = append(ps, &models.Param{Name: "p", Shape: []int{len(v)}, Value: append([]float32(nil), v...), Grad: make([]float32, len(v))})
	}
	return ps
}

// adamRef is torch.optim.Adam/AdamW for one scalar, written out in float64.
func adamRef(p float64, grads []float64, lr, b1, b2, eps, wd float64, decoupled bool) float64 {
	var m, v float64
	for t, g := range grads {
		step := float64(t + 1)
		if decoupled {
			p *= 1 - lr*wd
		} else {
			g += wd * p
		}
		m = b1*m + (1-b1)*g
		v = b2*v + (1-b2)*g*g
		mhat := m / (1 - math.Pow(b1, step))
		vhat := v / (1 - math.Pow(b2, step))
		p -= lr * mhat / (math.Sqrt(vhat) + eps)
		_ = mhat
	}
	return p
}

func TestOptimizersMatchReference(t *testing.T) {
	// 19 elements: the vector kernel's body (16) and the portable tail (3).
	start := []float32{0.5, -1.25, 2, 0, 0.1, 0.2, -0.3, 7, -7, 1e-4, 3, 3, -2, 0.01, 0.5, 0.25, 1, -1, 4}
	grads := [][]float32{make([]float32, len(start)), make([]float32, len(start))}
	for i := range start {
		grads[0][i] = float32(i%5)*0.3 - 0.7
		grads[1][i] = float32(i%3)*1e-3 - 1e-3
	}
	const lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-8, 0.1
	for _, name := range []string{models.OptAdamW, models.OptAdam, models.OptSGD, "adamw-portable", "adam-portable"} {
		t.Run(name, func(t *testing.T) {
			ps := newParams(start)
			opt, err := models.NewOptimizer(strings.TrimSuffix(name, "-portable"), ps, b1, b2, eps, wd)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(name, "-portable") {
				models.UsePortableKernel(opt)
				name = strings.TrimSuffix(name, "-portable")
			}
			for _, g := range grads {
				copy(ps[0].Grad, g)
				opt.Step(lr)
			}
			for i := range start {
				var want float64
				gs := []float64{float64(grads[0][i]), float64(grads[1][i])}
				switch name {
				case models.OptAdamW:
					want = adamRef(float64(start[i]), gs, lr, b1, b2, eps, wd, true)
				case models.OptAdam:
					want = adamRef(float64(start[i]), gs, lr, b1, b2, eps, wd, false)
				default:
					want = float64(start[i])
					for _, g := range gs {
						want -= lr * (g + wd*want)
					}
				}
				if got := float64(ps[0].Value[i]); math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
					t.Errorf("param %d after 2 steps: got %.9g, want %.9g", i, got, want)
				}
			}
		})
	}
}

// TestAdamWHandComputed pins AdamW's first two steps to numbers worked out by hand:
// p=1, g=(0.5, 0.25), lr=0.1, wd=0.5, betas (0.9, 0.999), eps 0.
// step 1: p = 1·(1−0.05) = 0.95; m̂ = 0.5, v̂ = 0.25 → p = 0.95 − 0.1·0.5/0.5 = 0.85.
// step 2: p = 0.85·0.95 = 0.8075; m = 0.9·0.05+0.1·0.25 = 0.07, m̂ = 0.07/0.19;
// v = 0.999·0.00025+0.001·0.0625 = 0.00031225, v̂ = 0.00031225/0.001999 → p = 0.8075 − 0.1·m̂/√v̂.
func TestAdamWHandComputed(t *testing.T) {
	ps := newParams([]float32{1})
	opt, err := models.NewOptimizer(models.OptAdamW, ps, 0.9, 0.999, 1e-30, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	ps[0].Grad[0] = 0.5
	opt.Step(0.1)
	if got := ps[0].Value[0]; math.Abs(float64(got)-0.85) > 1e-6 {
		t.Fatalf("step 1: got %v, want 0.85", got)
	}
	ps[0].Grad[0] = 0.25
	opt.Step(0.1)
	want := 0.8075 - 0.1*(0.07/0.19)/math.Sqrt(0.00031225/0.001999)
	if got := ps[0].Value[0]; math.Abs(float64(got)-want) > 1e-6 {
		t.Fatalf("step 2: got %v, want %v", got, want)
	}
}

func TestOptimizerLargeParallelMatchesSmall(t *testing.T) {
	// A model big enough to be split across cores must get the same update as one element at a time.
	rng := rand.New(rand.NewPCG(1, 1))
	big := make([]float32, 100_003)
	for i := range big {
		big[i] = float32(rng.NormFloat64())
	}
	ps := newParams(big[:70_000], big[70_000:])
	opt, _ := models.NewOptimizer(models.OptAdamW, ps, 0.9, 0.999, 1e-8, 0.01)
	for _, p := range ps {
		for i := range p.Grad {
			p.Grad[i] = float32(i%13) - 6
		}
	}
	opt.Step(1e-3)
	for _, idx := range []int{0, 69_999, 70_000, 100_002} {
		pi, i := 0, idx
		if idx >= 70_000 {
			pi, i = 1, idx-70_000
		}
		g := float64(float32(i%13) - 6)
		want := adamRef(float64(big[idx]), []float64{g}, 1e-3, 0.9, 0.999, 1e-8, 0.01, true)
		if got := float64(ps[pi].Value[i]); math.Abs(got-want) > 1e-6 {
			t.Errorf("element %d: got %.8g, want %.8g", idx, got, want)
		}
	}
}

func TestOptimizerStepAllocatesNothing(t *testing.T) {
	ps := newParams(make([]float32, 300_000), make([]float32, 1000))
	for _, name := range []string{models.OptAdamW, models.OptAdam, models.OptSGD} {
		opt, _ := models.NewOptimizer(name, ps, 0.9, 0.999, 1e-8, 0.01)
		opt.Step(1e-3)
		if a := testing.AllocsPerRun(10, func() { opt.Step(1e-3) }); a != 0 {
			t.Errorf("%s: Step allocates %v times, want 0", name, a)
		}
	}
}

func TestNewOptimizerRejectsBadInput(t *testing.T) {
	ps := newParams([]float32{1})
	for _, c := range []struct {
		name            string
		b1, b2, eps, wd float64
	}{
		{"rmsprop", 0.9, 0.999, 1e-8, 0},
		{"adamw", 1, 0.999, 1e-8, 0},
		{"adam", 0.9, 0.999, 0, 0},
		{"sgd", 0.9, 0.999, 1e-8, -1},
	} {
		if _, err := models.NewOptimizer(c.name, ps, c.b1, c.b2, c.eps, c.wd); err == nil {
			t.Errorf("NewOptimizer(%s, %v, %v, %v, %v): got nil error", c.name, c.b1, c.b2, c.eps, c.wd)
		}
	}
}

func TestClipGradNorm(t *testing.T) {
	large := make([]float32, 50_000) // big enough to be split across cores
	large[49_999] = 12
	cases := []struct {
		name      string
		grads     [][]float32
		max       float64
		wantNorm  float64
		wantScale float64
	}{
		{"clipped", [][]float32{{3, 0}, {4}}, 1, 5, 1 / (5 + 1e-6)},
		{"under max", [][]float32{{3, 0}, {4}}, 10, 5, 1},
		{"off", [][]float32{{3, 0}, {4}}, 0, 5, 1},
		{"parallel", [][]float32{large, {5}}, 6.5, 13, 6.5 / (13 + 1e-6)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := newParams(c.grads...)
			for i, g := range c.grads {
				copy(ps[i].Grad, g)
			}
			norm := models.ClipGradNorm(ps, c.max)
			if math.Abs(norm-c.wantNorm) > 1e-5 {
				t.Errorf("norm: got %v, want %v", norm, c.wantNorm)
			}
			for i, g := range c.grads {
				for j, v := range g {
					want := float64(v) * c.wantScale
					if got := float64(ps[i].Grad[j]); math.Abs(got-want) > 1e-6 {
						t.Fatalf("grad[%d][%d]: got %v, want %v", i, j, got, want)
					}
				}
			}
		})
	}
}
