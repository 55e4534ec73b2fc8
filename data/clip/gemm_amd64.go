package clip

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly micro-kernel (AVX2 + FMA).
var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func kernelAVX2(k int, a, b, c *float32, ldc int)

func kernel(k int, a, b, c []float32, ldc int) {
	if useAVX2 && k > 0 {
		_ = c[5*ldc+nr-1]
		_ = a[k*mr-1]
		_ = b[k*nr-1]
		kernelAVX2(k, &a[0], &b[0], &c[0], ldc)
		return
	}
	kernelGo(k, a, b, c, ldc)
}

//go:noescape
func quickGELUAVX2(x *float32, n int)

// quickGELU applies x·σ(1.702x) in place.
func quickGELU(x []float32) {
	n8 := len(x) &^ 7
	if useAVX2 && n8 > 0 {
		quickGELUAVX2(&x[0], n8)
		x = x[n8:]
	}
	quickGELUGo(x)
}
