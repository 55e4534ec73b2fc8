package models_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mami-lab/mami/models"
)

// The conformance suite: every fusion × head must pass every check below.

type conformanceCase struct {
	name string
	spec models.Spec
}

func conformanceCases(imageDim, textDim, proj int, hidden []int, dropout float64) []conformanceCase {
	var cs []conformanceCase
	for _, f := range models.Fusions() {
		for _, h := range models.Heads() {
			cs = append(cs, conformanceCase{
				name: f + "/" + h,
				spec: models.Spec{Fusion: f, Head: h, Hidden: hidden, Dropout: dropout, ProjDim: proj, ImageDim: imageDim, TextDim: textDim},
			})
		}
	}
	return cs
}

// randomBatch returns n samples with L2-normalised random embeddings and balanced labels.
func randomBatch(rng *rand.Rand, n, imageDim, textDim int) models.Batch {
	b := models.Batch{N: n, Image: make([]float32, n*imageDim), Text: make([]float32, n*textDim), Labels: make([]float32, n)}
	fill := func(x []float32, d int) {
		for r := 0; r < n; r++ {
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
	fill(b.Image, imageDim)
	fill(b.Text, textDim)
	for i := range b.Labels {
		b.Labels[i] = float32(i % 2)
	}
	return b
}

func TestGradientCheck(t *testing.T) {
	for _, c := range conformanceCases(6, 5, 3, []int{7}, 0.3) {
		t.Run(c.name, func(t *testing.T) {
			net, err := models.New(c.spec, 3)
			if err != nil {
				t.Fatal(err)
			}
			b := randomBatch(rand.New(rand.NewPCG(1, 2)), 5, 6, 5)
			for _, x := range [][]float32{b.Image, b.Text} { // large inputs drive tanh/sigmoid/softmax off their linear parts
				for i := range x {
					x[i] *= 4
				}
			}
			loss := func() float64 {
				models.ResetDropout(net, 11)
				l, err := net.Grad(b, 1, false)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			loss()
			var analytic [][]float64
			for _, p := range net.Params() {
				g := make([]float64, len(p.Grad))
				for i, v := range p.Grad {
					g[i] = float64(v)
				}
				analytic = append(analytic, g)
			}
			const h = 1e-3
			var diff2, norm2 float64
			worst, worstName := 0.0, ""
			for pi, p := range net.Params() {
				for i := range p.Value {
					orig := p.Value[i]
					p.Value[i] = orig + h
					hi := float64(p.Value[i])
					lp := loss()
					p.Value[i] = orig - h
					lo := float64(p.Value[i])
					lm := loss()
					p.Value[i] = orig
					num := (lp - lm) / (hi - lo)
					a := analytic[pi][i]
					diff2 += (num - a) * (num - a)
					norm2 += num*num + a*a
					if d := math.Abs(num - a); d > worst {
						worst, worstName = d, fmt.Sprintf("%s[%d]: analytic %.6g, numeric %.6g", p.Name, i, a, num)
					}
				}
			}
			if norm2 == 0 {
				t.Fatal("all gradients are zero")
			}
			rel := math.Sqrt(diff2) / math.Sqrt(norm2)
			t.Logf("relative error %.3g, worst abs %.3g", rel, worst)
			if rel > 1e-3 || worst > 1e-4 {
				t.Errorf("gradient check: relative error %.3g (want <= 1e-3, worst <= 1e-4), worst abs %.3g at %s", rel, worst, worstName)
			}
		})
	}
}

func TestOverfit(t *testing.T) {
	steps := 300
	if testing.Short() {
		steps = 150
	}
	for _, c := range conformanceCases(32, 32, 8, []int{64}, 0) {
		t.Run(c.name, func(t *testing.T) {
			net, err := models.New(c.spec, 5)
			if err != nil {
				t.Fatal(err)
			}
			b := randomBatch(rand.New(rand.NewPCG(7, 8)), 64, 32, 32)
			rng := rand.New(rand.NewPCG(9, 9))
			for i := range b.Labels { // random labels: only memorisation can fit them
				b.Labels[i] = float32(rng.IntN(2))
			}
			opt, err := models.NewOptimizer(models.OptAdamW, net.Params(), 0.9, 0.999, 1e-8, 0)
			if err != nil {
				t.Fatal(err)
			}
			first := math.NaN()
			for s := 0; s < steps; s++ {
				l, err := net.Grad(b, 1, false)
				if err != nil {
					t.Fatal(err)
				}
				if s == 0 {
					first = l
				}
				opt.Step(1e-2)
			}
			_, loss, err := net.Predict(b)
			if err != nil {
				t.Fatal(err)
			}
			floor := 0.0
			if c.spec.Head == models.HeadDoubleSoftmax {
				floor = math.Log1p(math.Exp(-1))
			}
			if loss > floor+0.05 || loss < floor-1e-6 {
				t.Errorf("after %d steps loss %.4f (first %.4f), want within 0.05 above the floor %.4f", steps, loss, first, floor)
			}
		})
	}
}

// trainTrace runs a few optimizer steps and returns the losses and final params.
func trainTrace(t *testing.T, spec models.Spec, seed int64) ([]float64, [][]float32) {
	t.Helper()
	losses, params, err := runTrace(spec, seed)
	if err != nil {
		t.Fatal(err)
	}
	return losses, params
}

func runTrace(spec models.Spec, seed int64) ([]float64, [][]float32, error) {
	net, err := models.New(spec, seed)
	if err != nil {
		return nil, nil, err
	}
	opt, err := models.NewOptimizer(models.OptAdamW, net.Params(), 0.9, 0.999, 1e-8, 0.01)
	if err != nil {
		return nil, nil, err
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var losses []float64
	for range 4 {
		b := randomBatch(rng, 8, spec.ImageDim, spec.TextDim)
		l, err := net.Grad(b, 1, false)
		if err != nil {
			return nil, nil, err
		}
		losses = append(losses, l)
		models.ClipGradNorm(net.Params(), 1)
		opt.Step(1e-3)
	}
	var params [][]float32
	for _, p := range net.Params() {
		params = append(params, slices.Clone(p.Value))
	}
	return losses, params, nil
}

func TestDeterministic(t *testing.T) {
	for _, c := range conformanceCases(12, 10, 4, []int{16, 8}, 0.5) {
		t.Run(c.name, func(t *testing.T) {
			l1, p1 := trainTrace(t, c.spec, 42)
			l2, p2 := trainTrace(t, c.spec, 42)
			if !slices.Equal(l1, l2) {
				t.Errorf("same seed: losses %v and %v differ", l1, l2)
			}
			for i := range p1 {
				if !slices.Equal(p1[i], p2[i]) {
					t.Errorf("same seed: param %d differs", i)
				}
			}
			_, p3 := trainTrace(t, c.spec, 43)
			if slices.Equal(p1[0], p3[0]) {
				t.Errorf("seeds 42 and 43 gave the same first param")
			}
		})
	}
}

func TestPredictInUnitInterval(t *testing.T) {
	for _, c := range conformanceCases(12, 10, 4, []int{16}, 0.2) {
		t.Run(c.name, func(t *testing.T) {
			net, err := models.New(c.spec, 1)
			if err != nil {
				t.Fatal(err)
			}
			b := randomBatch(rand.New(rand.NewPCG(5, 6)), 600, 12, 10) // > one eval chunk
			for i := range b.Image[:len(b.Image)/2] {                  // and some extreme inputs
				b.Image[i] *= 1e4
			}
			prob, loss, err := net.Predict(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(prob) != b.N {
				t.Fatalf("got %d probabilities, want %d", len(prob), b.N)
			}
			for i, p := range prob {
				if !(p >= 0 && p <= 1) {
					t.Fatalf("prob[%d] = %v, want in [0,1]", i, p)
				}
			}
			if math.IsNaN(loss) || math.IsInf(loss, 0) || loss < 0 {
				t.Errorf("loss = %v, want finite and >= 0", loss)
			}
			// Eval mode has no dropout: the same batch gives the same answer twice.
			prob2, loss2, err := net.Predict(b)
			if err != nil || !slices.Equal(prob, prob2) || loss != loss2 {
				t.Errorf("Predict is not repeatable (err %v, loss %v vs %v)", err, loss, loss2)
			}
		})
	}
}
