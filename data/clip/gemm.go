package clip

import (
	"runtime"
	"sync"
)

// Matrix-multiply kernels. C[m×n] += A[m×k]·B[k×n] with B packed once into
// panels of nr columns (weights are packed at load time) and A packed per
// call into micro-panels of mr rows, BLIS style: the k dimension is cut into
// blocks of kc so a micro-panel of B stays in L1 and a block of A in L2, and
// the column panels are shared out among the cores.
const (
	mr = 6   // rows of a micro-tile
	nr = 16  // columns of a micro-tile (two AVX registers)
	kc = 256 // k block
	mc = 144 // rows of A kept hot while sweeping a worker's column panels
)

// packedB is a k×n matrix stored as ceil(n/nr) panels, panel j holding
// columns j*nr..j*nr+nr-1 as k rows of nr values (zero-padded).
type packedB struct {
	k, n int
	data []float32
}

func (p *packedB) panels() int { return (p.n + nr - 1) / nr }

// panel returns rows k0..k1 of column panel j.
func (p *packedB) panel(j, k0, k1 int) []float32 {
	base := j * p.k * nr
	return p.data[base+k0*nr : base+k1*nr]
}

// packTransposed packs B = Wᵀ for a weight W stored [n][k] (nn.Linear layout).
func packTransposed(w []float32, n, k int) packedB {
	p := packedB{k: k, n: n, data: make([]float32, ((n+nr-1)/nr)*nr*k)}
	for j := 0; j < n; j++ {
		panel, jj := j/nr, j%nr
		base := panel * k * nr
		row := w[j*k : j*k+k]
		for kk, v := range row {
			p.data[base+kk*nr+jj] = v
		}
	}
	return p
}

// packRows packs B stored row-major [k][n] with leading dimension ldb.
func packRows(b []float32, k, n, ldb int, dst []float32) packedB {
	size := ((n + nr - 1) / nr) * nr * k
	if cap(dst) < size {
		dst = make([]float32, size)
	}
	p := packedB{k: k, n: n, data: dst[:size]}
	for j0 := 0; j0 < n; j0 += nr {
		base := (j0 / nr) * k * nr
		w := min(nr, n-j0)
		for kk := 0; kk < k; kk++ {
			out := p.data[base+kk*nr : base+kk*nr+nr]
			copy(out, b[kk*ldb+j0:kk*ldb+j0+w])
			clear(out[w:])
		}
	}
	return p
}

// packA packs rows of A (columns k0..k1) into micro-panels of mr rows:
// dst[(i/mr)*kb*mr + kk*mr + i%mr]. Missing rows are zero.
func packA(dst, a []float32, lda, m, k0, k1 int) {
	kb := k1 - k0
	for i0 := 0; i0 < m; i0 += mr {
		panel := dst[(i0/mr)*kb*mr : (i0/mr+1)*kb*mr]
		rows := min(mr, m-i0)
		for ii := 0; ii < mr; ii++ {
			if ii >= rows {
				for kk := 0; kk < kb; kk++ {
					panel[kk*mr+ii] = 0
				}
				continue
			}
			src := a[(i0+ii)*lda+k0 : (i0+ii)*lda+k1]
			for kk, v := range src {
				panel[kk*mr+ii] = v
			}
		}
	}
}

// kernelGo is the portable micro-kernel: c[i*ldc+j] += Σ_k a[k*mr+i]·b[k*nr+j]
// for a full mr×nr tile.
func kernelGo(k int, a, b, c []float32, ldc int) {
	var acc [mr][nr]float32
	for kk := 0; kk < k; kk++ {
		bk := b[kk*nr : kk*nr+nr]
		ak := a[kk*mr : kk*mr+mr]
		for i := 0; i < mr; i++ {
			ai := ak[i]
			row := &acc[i]
			for j := 0; j < nr; j++ {
				row[j] += ai * bk[j]
			}
		}
	}
	for i := 0; i < mr; i++ {
		row := c[i*ldc : i*ldc+nr]
		for j := range row {
			row[j] += acc[i][j]
		}
	}
}

var apool = sync.Pool{New: func() any { return new([]float32) }}

// gemm computes C[m×n] += A[m×k]·B with A row-major (leading dimension lda)
// and C row-major (ldc), using up to workers goroutines.
func gemm(m int, a []float32, lda int, b *packedB, c []float32, ldc int, workers int) {
	if m == 0 || b.n == 0 {
		return
	}
	k := b.k
	np := b.panels()
	mPad := (m + mr - 1) / mr * mr
	bufp := apool.Get().(*[]float32)
	defer apool.Put(bufp)
	if cap(*bufp) < mPad*min(k, kc) {
		*bufp = make([]float32, mPad*min(k, kc))
	}
	workers = max(1, min(workers, np, (m*k*b.n)/(1<<15)+1))
	for k0 := 0; k0 < k; k0 += kc {
		k1 := min(k, k0+kc)
		kb := k1 - k0
		ap := (*bufp)[:mPad*kb]
		packA(ap, a, lda, m, k0, k1)
		if workers == 1 {
			gemmPanels(m, ap, kb, b, k0, k1, 0, np, c, ldc)
			continue
		}
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			j0, j1 := w*np/workers, (w+1)*np/workers
			wg.Go(func() { gemmPanels(m, ap, kb, b, k0, k1, j0, j1, c, ldc) })
		}
		wg.Wait()
	}
}

// gemmPanels multiplies the packed A block by column panels j0..j1.
func gemmPanels(m int, ap []float32, kb int, b *packedB, k0, k1, j0, j1 int, c []float32, ldc int) {
	var tmp [mr * nr]float32
	for i0 := 0; i0 < m; i0 += mc {
		i1 := min(m, i0+mc)
		for j := j0; j < j1; j++ {
			bp := b.panel(j, k0, k1)
			cols := min(nr, b.n-j*nr)
			for i := i0; i < i1; i += mr {
				a := ap[(i/mr)*kb*mr : (i/mr+1)*kb*mr]
				rows := min(mr, m-i)
				if rows == mr && cols == nr {
					kernel(kb, a, bp, c[i*ldc+j*nr:], ldc)
					continue
				}
				clear(tmp[:])
				kernel(kb, a, bp, tmp[:], nr)
				for ii := 0; ii < rows; ii++ {
					row := c[(i+ii)*ldc+j*nr : (i+ii)*ldc+j*nr+cols]
					for jj := range row {
						row[jj] += tmp[ii*nr+jj]
					}
				}
			}
		}
	}
}

// numWorkers is the default parallelism: every core.
func numWorkers() int { return runtime.GOMAXPROCS(0) }
