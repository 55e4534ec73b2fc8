package cuda

import (
	"testing"

	"github.com/mami-lab/mami/models"
)

// nullBackend accepts every call and computes nothing: it measures what the host spends per training
// step (plans, dropout masks, kernel arguments) besides the kernels themselves.
type nullBackend struct{ n int }

func (b *nullBackend) alloc(int) (mem, error)             { b.n++; return mem(b.n - 1), nil }
func (b *nullBackend) free(mem) error                     { return nil }
func (b *nullBackend) write(mem, int, []float32) error    { return nil }
func (b *nullBackend) writeInt32(mem, int, []int32) error { return nil }
func (b *nullBackend) read(mem, int, []float32) error     { return nil }
func (b *nullBackend) readF64(mem, int) (float64, error)  { return 0, nil }
func (b *nullBackend) zero(mem, int, int) error           { return nil }
func (b *nullBackend) close() error                       { return nil }
func (b *nullBackend) run(s *step, _ *[3]mem, scale float32, acc bool) error {
	_, err := s.args(func(r bufRef) uint64 { return uint64(r.off) }, scale, acc)
	return err
}

// BenchmarkHostStep is the host side of one GPU training step of the bench workload (concat 1024→512→1,
// bce, dropout 0.2, batch 64, Adam): everything but the kernels and the copies.
func BenchmarkHostStep(b *testing.B) {
	spec := models.Spec{Fusion: models.FusionConcat, Head: models.HeadBCE, Hidden: []int{512}, Dropout: 0.2, ImageDim: 512, TextDim: 512}
	e, err := newEngine(&nullBackend{}, spec, 1)
	if err != nil {
		b.Fatal(err)
	}
	rows := 256
	if err := e.setData(make([]float32, rows*512), make([]float32, rows*512), make([]float32, rows)); err != nil {
		b.Fatal(err)
	}
	if e.optimize, err = newOptimizer(models.OptAdam, 0.9, 0.999, 1e-8, 0); err != nil {
		b.Fatal(err)
	}
	idx := make([]int, 64)
	for i := range idx {
		idx[i] = i * 3
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.gradRows(idx, 1, false); err != nil {
			b.Fatal(err)
		}
		if err := e.step(1e-4); err != nil {
			b.Fatal(err)
		}
	}
}
