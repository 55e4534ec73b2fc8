package clip

import (
	"bytes"
	"io"
)

// MatMulTransposed computes C[m×n] = A[m×k]·Wᵀ for W stored [n][k], with the
// package's packed kernel and the given number of workers (tests only).
func MatMulTransposed(a, w []float32, m, n, k, workers int) []float32 {
	return PackTransposed(w, n, k)(a, m, workers)
}

// PackTransposed packs W once and returns the multiply (benchmarks).
func PackTransposed(w []float32, n, k int) func(a []float32, m, workers int) []float32 {
	p := packTransposed(w, n, k)
	return func(a []float32, m, workers int) []float32 {
		c := make([]float32, m*n)
		gemm(m, a, k, &p, c, n, workers)
		return c
	}
}

// Expf exposes the fast exp for tests.
var Expf = expf

// QuickGELU and QuickGELUGo expose the activation (vector and portable).
var (
	QuickGELU   = quickGELU
	QuickGELUGo = quickGELUGo
)

// ParsePart parses a features.part image (see openPart): the names of its
// valid records and the length of the valid prefix (tests only).
func ParsePart(b []byte, dim int) (names []string, good int64, reencoded []byte) {
	r := bytesReader(b)
	var buf bytesBuffer
	for {
		rec, n, err := readRecord(r, dim)
		if err != nil {
			break
		}
		names = append(names, rec.name)
		good += n
		rec.write(&buf)
	}
	return names, good, buf.b
}

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
