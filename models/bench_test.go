package models_test

import (
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/mami-lab/mami/models"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The speed workload (configs/bench-seed-head.yaml): concat 1024→512→1, bce head, dropout 0.2,
// batch 64, Adam lr 1e-4. One iteration is one optimizer step (Grad + Step); samples/s = 64/step.

const benchBatch = 64

var benchSpec = models.Spec{Fusion: "concat", Head: "bce", Hidden: []int{512}, Dropout: 0.2, ImageDim: 512, TextDim: 512}

func benchBatches(n int) []models.Batch {
	rng := rand.New(rand.NewPCG(1, 2))
	bs := make([]models.Batch, n)
	for i := range bs {
		bs[i] = randomBatch(rng, benchBatch, 512, 512)
	}
	return bs
}

// reportThroughput reports samples/s over wall time, and the process CPU time per step since cpu0
// (steadier than wall time on a loaded machine; it counts all threads, OpenBLAS's too).
func reportThroughput(b *testing.B, steps int, cpu0 time.Duration) {
	b.ReportMetric(float64(steps*benchBatch)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(steps), "cpu-ms/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTrainStep compares the package's path ("mami") with the same model written with stock
// Gorgonia ops, its TapeMachine and its Adam solver ("naive"), in the same run. Run with and without
// -tags openblas (which both paths use when present).
func BenchmarkTrainStep(b *testing.B) {
	batches := benchBatches(8)
	b.Run("mami/"+models.BLAS, func(b *testing.B) {
		net, err := models.New(benchSpec, 42)
		if err != nil {
			b.Fatal(err)
		}
		opt, err := models.NewOptimizer(models.OptAdam, net.Params(), 0.9, 0.999, 1e-8, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		steps, cpu0 := 0, cpuTime()
		for b.Loop() {
			if _, err := net.Grad(batches[steps%len(batches)], 1, false); err != nil {
				b.Fatal(err)
			}
			opt.Step(1e-4)
			steps++
		}
		reportThroughput(b, steps, cpu0)
	})
	b.Run("naive/"+models.BLAS, func(b *testing.B) {
		step, err := newNaiveStep()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		steps, cpu0 := 0, cpuTime()
		for b.Loop() {
			if err := step(batches[steps%len(batches)]); err != nil {
				b.Fatal(err)
			}
			steps++
		}
		reportThroughput(b, steps, cpu0)
	})
}

// newNaiveStep builds the bench model the way Gorgonia's examples do: stock ops, symbolic gradients for
// everything, a TapeMachine binding dual values, and Gorgonia's Adam solver.
func newNaiveStep() (step func(models.Batch) error, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = r.(error)
		}
	}()
	const n, d, h = benchBatch, 512, 512
	g := G.NewGraph()
	newT := func(shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, tensor.Shape(shape).TotalSize())))
	}
	img, txt, lab, mask := newT(n, d), newT(n, d), newT(n, 1), newT(n, h)
	rng := rand.New(rand.NewPCG(3, 4))
	uniform := func(fanIn int, shape ...int) *tensor.Dense {
		t := newT(shape...)
		for i, s := 0, t.Float32s(); i < len(s); i++ {
			s[i] = float32((2*rng.Float64() - 1) / math.Sqrt(float64(fanIn)))
		}
		return t
	}
	v := G.NewMatrix(g, G.Float32, G.WithShape(n, d), G.WithName("image"), G.WithValue(img))
	t := G.NewMatrix(g, G.Float32, G.WithShape(n, d), G.WithName("text"), G.WithValue(txt))
	y := G.NewMatrix(g, G.Float32, G.WithShape(n, 1), G.WithName("labels"), G.WithValue(lab))
	m := G.NewMatrix(g, G.Float32, G.WithShape(n, h), G.WithName("mask"), G.WithValue(mask))
	w1 := G.NewMatrix(g, G.Float32, G.WithShape(2*d, h), G.WithName("w1"), G.WithValue(uniform(2*d, 2*d, h)))
	b1 := G.NewMatrix(g, G.Float32, G.WithShape(1, h), G.WithName("b1"), G.WithValue(uniform(2*d, 1, h)))
	w2 := G.NewMatrix(g, G.Float32, G.WithShape(h, 1), G.WithName("w2"), G.WithValue(uniform(h, h, 1)))
	b2 := G.NewMatrix(g, G.Float32, G.WithShape(1, 1), G.WithName("b2"), G.WithValue(uniform(h, 1, 1)))
	x := G.Must(G.Concat(1, G.Must(G.Rectify(t)), G.Must(G.Rectify(v))))
	a1 := G.Must(G.Rectify(G.Must(G.BroadcastAdd(G.Must(G.Mul(x, w1)), b1, nil, []byte{0}))))
	z := G.Must(G.BroadcastAdd(G.Must(G.Mul(G.Must(G.HadamardProd(a1, m)), w2)), b2, nil, []byte{0}))
	loss := G.Must(G.Mean(G.Must(G.Sub(G.Must(G.Softplus(z)), G.Must(G.HadamardProd(z, y))))))
	learn := G.Nodes{w1, b1, w2, b2}
	if _, err := G.Grad(loss, learn...); err != nil {
		return nil, err
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(learn...))
	solver := G.NewAdamSolver(G.WithLearnRate(1e-4))
	grads := G.NodesToValueGrads(learn)
	maskRNG := rand.New(rand.NewPCG(5, 6))
	return func(bt models.Batch) error {
		copy(img.Float32s(), bt.Image)
		copy(txt.Float32s(), bt.Text)
		copy(lab.Float32s(), bt.Labels)
		for i, s := 0, mask.Float32s(); i < len(s); i++ {
			if maskRNG.Float32() >= 0.2 {
				s[i] = 1 / 0.8
			} else {
				s[i] = 0
			}
		}
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			return err
		}
		return solver.Step(grads)
	}, nil
}

// BenchmarkOptimizerStep measures one optimizer step over the bench model's 525,313 params.
func BenchmarkOptimizerStep(b *testing.B) {
	for _, name := range []string{models.OptAdam, models.OptAdamW, models.OptSGD} {
		b.Run(name, func(b *testing.B) {
			ps := newParams(make([]float32, 1024*512), make([]float32, 512), make([]float32, 512), make([]float32, 1))
			for _, p := range ps {
				for i := range p.Grad {
					p.Grad[i] = float32(i%7) - 3
				}
			}
			opt, err := models.NewOptimizer(name, ps, 0.9, 0.999, 1e-8, 0.01)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				opt.Step(1e-4)
			}
		})
	}
}
