package cuda

import "fmt"

// Launch shapes and kernel arguments of a step, computed on the host (and tested without a GPU).

// Launch configuration constants.
const (
	blockThreads = 256  // threads per block of every 1-D kernel (mami_sum and mami_sumsq need exactly 256)
	maxGrid      = 8192 // 1-D kernels loop grid-stride beyond this many blocks
	gemmTile     = 64   // C tile of one gemm block (TILE in mami.cu)
	gemmThreads  = 16   // gemm blocks are gemmThreads×gemmThreads threads, 4×4 outputs each
)

// launchConfig is a kernel launch's grid and block.
type launchConfig struct {
	grid, block [3]int
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// oneD covers count items with 256-thread blocks (at least one block, at most maxGrid).
func oneD(count int) launchConfig {
	g := min(max(ceilDiv(count, blockThreads), 1), maxGrid)
	return launchConfig{grid: [3]int{g, 1, 1}, block: [3]int{blockThreads, 1, 1}}
}

// work is how many independent items a step's kernel loops over.
func (s *step) work() int {
	i := s.i
	switch s.kind {
	case opGemm:
		return i[2] * i[3]
	case opColsum:
		return i[1]
	case opConcat2:
		return i[0] * (i[1] + i[2])
	case opActFwd, opActBwd:
		return i[1]
	case opL2Fwd, opL2Bwd:
		return i[0]
	case opOuterFwd:
		return i[0] * i[1] * i[2]
	case opOuterBwdA:
		return i[0] * i[1]
	case opOuterBwdB:
		return i[0] * i[2]
	case opLoss:
		return i[1]
	case opProb, opSum:
		return i[0]
	case opGather:
		return i[0] * i[1]
	}
	return i[0] // mul, mean2, half, gmu_fwd, gmu_bwd, adam, sgd, sumsq, clip
}

// launch returns the grid and block of s.
func (s *step) launch() launchConfig {
	switch s.kind {
	case opGemm:
		m, n := s.i[2], s.i[3]
		return launchConfig{
			grid:  [3]int{max(ceilDiv(n, gemmTile), 1), max(ceilDiv(m, gemmTile), 1), 1},
			block: [3]int{gemmThreads, gemmThreads, 1},
		}
	case opSum:
		return launchConfig{grid: [3]int{1, 1, 1}, block: [3]int{blockThreads, 1, 1}}
	}
	return oneD(s.work())
}

// kernelName is the CUDA function a step launches.
func (s *step) kernelName() string { return "mami_" + s.kind.String() }

// Kernel argument kinds, as the C signature declares them.
type (
	argInt   int32   // int
	argFloat float32 // float
	argPtr   uint64  // a pointer (CUdeviceptr), 0 for none
)

// args returns the kernel arguments of s in the order of its C signature; addr resolves a buffer to a
// device address (0 for none). scale and accumulate apply to steps writing a Param.Grad.
func (s *step) args(addr func(bufRef) uint64, scale float32, accumulate bool) ([]any, error) {
	ints := func(n int) []any {
		out := make([]any, n)
		for k := range n {
			out[k] = argInt(s.i[k])
		}
		return out
	}
	ptrs := func(from int) []any {
		out := make([]any, 0, len(s.b)-from)
		for _, b := range s.b[from:] {
			out = append(out, argPtr(addr(b)))
		}
		return out
	}
	beta := float32(0)
	if accumulate {
		beta = 1
	}
	p := func(k int) any { return argPtr(addr(s.b[k])) }
	var out []any
	switch s.kind {
	case opGemm:
		alpha, b := s.f0(), s.f1()
		if s.gradOut {
			alpha, b = scale, beta
		}
		i := s.i
		out = []any{argInt(i[0]), argInt(i[1]), argInt(i[2]), argInt(i[3]), argInt(i[4]), argFloat(alpha),
			p(0), argInt(i[5]), p(1), argInt(i[6]), argFloat(b), p(2), argInt(i[7]), p(3)}
	case opColsum:
		out = []any{argInt(s.i[0]), argInt(s.i[1]), argFloat(scale), p(0), argFloat(beta), p(1)}
	case opConcat2:
		out = append(ints(4), ptrs(0)...)
	case opActFwd, opActBwd:
		out = append(ints(2), ptrs(0)...)
	case opMul, opMean2, opHalf, opGMUFwd, opGMUBwd, opSumsq:
		out = append(ints(1), ptrs(0)...)
	case opL2Fwd, opL2Bwd, opGather:
		out = append(ints(2), ptrs(0)...)
	case opOuterFwd, opOuterBwdA, opOuterBwdB:
		out = append(ints(3), ptrs(0)...)
	case opLoss:
		out = append(ints(3), ptrs(0)...)
	case opProb:
		out = append(ints(2), ptrs(0)...)
	case opSum:
		out = append(ints(1), ptrs(0)...)
	case opAdam:
		out = append(ints(1), ptrs(0)...)
		for _, f := range s.f {
			out = append(out, argFloat(f))
		}
	case opSGD:
		out = append(append(ints(1), ptrs(0)...), argFloat(s.f[0]), argFloat(s.f[1]))
	case opClip:
		out = append(append(ints(1), ptrs(0)...), argFloat(s.f[0]))
	case opMask:
		out = append(append(ints(3), argFloat(s.f[0]), argFloat(s.f[1])), ptrs(0)...)
	default:
		return nil, fmt.Errorf("cuda: no kernel arguments for step %v", s.kind)
	}
	return out, nil
}

func (s *step) f0() float32 {
	if len(s.f) > 0 {
		return s.f[0]
	}
	return 0
}

func (s *step) f1() float32 {
	if len(s.f) > 1 {
		return s.f[1]
	}
	return 0
}
