package clip_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mami-lab/mami/data/clip"
)

func TestMatMulTransposed(t *testing.T) {
	for _, asm := range []bool{true, false} {
		t.Run(fmt.Sprintf("asm=%v", asm), func(t *testing.T) {
			defer clip.UseAssembly(asm)()
			testMatMul(t)
		})
	}
}

func testMatMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ m, n, k, workers int }{
		{1, 1, 1, 1}, {6, 16, 8, 1}, {7, 17, 3, 2}, {50, 48, 300, 2}, {13, 100, 513, 3}, {100, 33, 64, 4},
	} {
		t.Run(fmt.Sprintf("%dx%dx%d/w%d", tc.m, tc.n, tc.k, tc.workers), func(t *testing.T) {
			a := make([]float32, tc.m*tc.k)
			w := make([]float32, tc.n*tc.k)
			for i := range a {
				a[i] = rng.Float32()*2 - 1
			}
			for i := range w {
				w[i] = rng.Float32()*2 - 1
			}
			got := clip.MatMulTransposed(a, w, tc.m, tc.n, tc.k, tc.workers)
			for i := 0; i < tc.m; i++ {
				for j := 0; j < tc.n; j++ {
					var want float64
					for k := 0; k < tc.k; k++ {
						want += float64(a[i*tc.k+k]) * float64(w[j*tc.k+k])
					}
					if d := math.Abs(float64(got[i*tc.n+j]) - want); d > 1e-4*math.Sqrt(float64(tc.k)) {
						t.Fatalf("C[%d][%d] = %v, want %v", i, j, got[i*tc.n+j], want)
					}
				}
			}
		})
	}
}

func TestExpf(t *testing.T) {
	for x := float32(-87); x <= 88; x += 0.0137 {
		got, want := float64(clip.Expf(x)), math.Exp(float64(x))
		if rel := math.Abs(got-want) / want; rel > 3e-7 {
			t.Fatalf("expf(%v) = %v, want %v (rel %g)", x, got, want, rel)
		}
	}
	if got := clip.Expf(-200); got != 0 {
		t.Errorf("expf(-200) = %v, want 0", got)
	}
}

func TestQuickGELU(t *testing.T) {
	var xs []float32
	for x := float32(-120); x <= 120; x += 0.0731 {
		xs = append(xs, x)
	}
	xs = append(xs, 0, float32(math.Inf(1)), -1e-30, 1e30)
	got := append([]float32(nil), xs...)
	clip.QuickGELU(got)
	ref := append([]float32(nil), xs...)
	clip.QuickGELUGo(ref)
	for i, x := range xs {
		want := float64(x) / (1 + math.Exp(-1.702*float64(x)))
		if math.IsInf(float64(x), 1) {
			want = float64(x)
		}
		for name, v := range map[string]float32{"vector": got[i], "portable": ref[i]} {
			if d := math.Abs(float64(v) - want); d > 1e-6*math.Max(1, math.Abs(want)) && !(math.IsInf(want, 1) && math.IsInf(float64(v), 1)) {
				t.Fatalf("%s quickGELU(%v) = %v, want %v", name, x, v, want)
			}
		}
	}
}
