package models

import (
	"testing"

	"gonum.org/v1/gonum/blas"
)

// BenchmarkSgemm measures the BLAS on the bench model's two large products (forward of the first
// layer, and its weight gradient), in GFLOP/s.
func BenchmarkSgemm(b *testing.B) {
	const n, in, out = 64, 1024, 512
	x, w, y := make([]float32, n*in), make([]float32, out*in), make([]float32, n*out)
	for i := range x {
		x[i] = float32(i%17) * 0.01
	}
	for i := range w {
		w[i] = float32(i%13) * 0.01
	}
	flops := float64(2 * n * in * out)
	b.Run("forward/"+BLAS, func(b *testing.B) {
		for b.Loop() {
			impl.Sgemm(blas.NoTrans, blas.Trans, n, out, in, 1, x, in, w, in, 0, y, out)
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("weight_grad/"+BLAS, func(b *testing.B) {
		for b.Loop() {
			impl.Sgemm(blas.Trans, blas.NoTrans, out, in, n, 1, y, out, x, in, 0, w, in)
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
