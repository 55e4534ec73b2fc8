package clip

import (
	"math"
	"sync"
)

// parallelFor runs fn over [0,n) split into at most workers contiguous
// chunks, each of at least minChunk items.
func parallelFor(n, workers, minChunk int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	parts := max(1, min(workers, n/max(1, minChunk)))
	if parts == 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for p := 0; p < parts; p++ {
		lo, hi := p*n/parts, (p+1)*n/parts
		wg.Go(func() { fn(lo, hi) })
	}
	wg.Wait()
}

// layerNorm writes LN(x) (per row of width w) into dst; dst may alias x.
func layerNorm(dst, x []float32, w int, gamma, beta []float32, eps float32) {
	rows := len(x) / w
	for r := 0; r < rows; r++ {
		row := x[r*w : r*w+w]
		var sum float64
		for _, v := range row {
			sum += float64(v)
		}
		mean := sum / float64(w)
		var ss float64
		for _, v := range row {
			d := float64(v) - mean
			ss += d * d
		}
		inv := float32(1 / math.Sqrt(ss/float64(w)+float64(eps)))
		m := float32(mean)
		out := dst[r*w : r*w+w]
		for i, v := range row {
			out[i] = (v-m)*inv*gamma[i] + beta[i]
		}
	}
}

// expf is a float32 exp accurate to about 1 ulp over the range used here
// (Cephes' expf polynomial after reduction by ln 2).
func expf(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	if x > 88 {
		x = 88
	} else if x < -87 {
		return 0
	}
	n := float32(math.Floor(float64(x*log2e + 0.5)))
	r := x - n*c1 - n*c2
	z := r * r
	p := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	p = p*z + r + 1
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// quickGELUGo applies x·σ(1.702x) in place (portable version).
func quickGELUGo(x []float32) {
	for i, v := range x {
		x[i] = v / (1 + expf(-1.702*v))
	}
}

// gelu applies the exact (erf) GELU in place.
func gelu(x []float32) {
	for i, v := range x {
		x[i] = float32(0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2)))
	}
}

func dot(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	n := len(a)
	b = b[:n]
	i := 0
	for ; i+4 <= n; i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func axpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

// attnScratch holds one worker's buffers for [attention].
type attnScratch struct {
	scores []float32
	kp, vp []float32
}

// attention computes softmax(q·kᵀ·scale [+causal mask])·v for one sequence
// and one head with the packed kernel. qkv holds rows of [q | k | v] (stride
// ld); out rows have stride ldo. off is the head's column offset within each
// of q, k, v; w is the model width.
func attention(qkv []float32, ld, L, w, off, dh int, causal bool, scale float32, out []float32, ldo int, sc *attnScratch) {
	if cap(sc.scores) < L*L {
		sc.scores = make([]float32, L*L)
	}
	s := sc.scores[:L*L]
	clear(s)
	// S = Q·Kᵀ: K rows are the "weight" rows [L][dh].
	kp := packedB{k: dh, n: L}
	size := ((L + nr - 1) / nr) * nr * dh
	if cap(sc.kp) < size {
		sc.kp = make([]float32, size)
	}
	kp.data = sc.kp[:size]
	clear(kp.data)
	for j := 0; j < L; j++ {
		base := (j / nr) * dh * nr
		jj := j % nr
		row := qkv[j*ld+w+off : j*ld+w+off+dh]
		for kk, v := range row {
			kp.data[base+kk*nr+jj] = v
		}
	}
	gemm(L, qkv[off:], ld, &kp, s, L, 1)
	for i := 0; i < L; i++ {
		n := L
		if causal {
			n = i + 1
		}
		row := s[i*L : i*L+L]
		mx := float32(math.Inf(-1))
		for j := 0; j < n; j++ {
			row[j] *= scale
			mx = max(mx, row[j])
		}
		var sum float32
		for j := 0; j < n; j++ {
			row[j] = expf(row[j] - mx)
			sum += row[j]
		}
		inv := 1 / sum
		for j := 0; j < n; j++ {
			row[j] *= inv
		}
		clear(row[n:])
		clear(out[i*ldo+off : i*ldo+off+dh])
	}
	vp := packRows(qkv[2*w+off:], L, dh, ld, sc.vp)
	sc.vp = vp.data
	gemm(L, s, L, &vp, out[off:], ldo, 1)
}
