package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// TestSplitGEMMMatchesWhole: a linear layer's forward and weight gradient give the same numbers when
// split across parts (as the openblas build does for large layers) as in one piece, also for sizes that
// do not divide evenly.
func TestSplitGEMMMatchesWhole(t *testing.T) {
	const n, in, out = 5, 13, 37
	rng := rand.New(rand.NewPCG(1, 2))
	ps := &paramSet{rng: rng}
	l := ps.linear("fc", in, out)
	dense := func(size int, shape ...int) *tensor.Dense {
		s := make([]float32, size)
		for i := range s {
			s[i] = float32(rng.NormFloat64())
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(s))
	}
	x, g := dense(n*in, n, in), dense(n*out, n, out)
	run := &runState{scale: 0.5}
	compute := func(parts int) (y, dw []float32) {
		fwd := newLinearOp(l, n, false, run)
		fwd.parts = parts
		if _, err := fwd.Do(x, l.w.t, l.b.t); err != nil {
			t.Fatal(err)
		}
		dwOp := &linearDWOp{opBase: newOpBase("dw", 2, tensor.Shape{out, in}, l.w.Grad), fwd: fwd}
		if _, err := dwOp.Do(g, x); err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), fwd.buf...), append([]float32(nil), l.w.Grad...)
	}
	y1, dw1 := compute(1)
	for _, parts := range []int{2, 3, 4} {
		y, dw := compute(parts)
		for i := range y1 {
			if math.Abs(float64(y[i]-y1[i])) > 1e-5 {
				t.Fatalf("%d parts: y[%d] = %v, want %v", parts, i, y[i], y1[i])
			}
		}
		for i := range dw1 {
			if math.Abs(float64(dw[i]-dw1[i])) > 1e-5 {
				t.Fatalf("%d parts: dW[%d] = %v, want %v", parts, i, dw[i], dw1[i])
			}
		}
	}
	// And the one-piece result is x·Wᵀ + b.
	xs, w, b := x.Float32s(), l.w.Value, l.b.Value
	for r := 0; r < n; r++ {
		for j := 0; j < out; j++ {
			want := float64(b[j])
			for k := 0; k < in; k++ {
				want += float64(xs[r*in+k]) * float64(w[j*in+k])
			}
			if math.Abs(float64(y1[r*out+j])-want) > 1e-4 {
				t.Fatalf("y[%d,%d] = %v, want %v", r, j, y1[r*out+j], want)
			}
		}
	}
}
