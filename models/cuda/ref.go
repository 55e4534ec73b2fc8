package cuda

import (
	"fmt"
	"math"
)

// refBackend is the Go twin of the CUDA kernels: each step computes what its kernel in mami.cu
// computes, in the same order and precision (float32 element-wise and gemm sums over k in order;
// float64 where the kernel uses double). It lets the whole GPU plan — layout, steps, arguments,
// optimizer — be checked against the CPU backend on a machine without a GPU.
type refBackend struct {
	mems [][]float32
}

func (r *refBackend) alloc(elems int) (mem, error) {
	r.mems = append(r.mems, make([]float32, elems))
	return mem(len(r.mems) - 1), nil
}

func (r *refBackend) free(m mem) error { r.mems[m] = nil; return nil }

func (r *refBackend) at(m mem, off, n int) ([]float32, error) {
	if int(m) < 0 || int(m) >= len(r.mems) || off < 0 || off+n > len(r.mems[m]) {
		return nil, fmt.Errorf("cuda: ref: [%d, %d) outside allocation %d", off, off+n, m)
	}
	return r.mems[m][off : off+n], nil
}

func (r *refBackend) write(m mem, off int, src []float32) error {
	dst, err := r.at(m, off, len(src))
	if err != nil {
		return err
	}
	copy(dst, src)
	return nil
}

func (r *refBackend) writeInt32(m mem, off int, src []int32) error {
	dst, err := r.at(m, off, len(src))
	if err != nil {
		return err
	}
	for i, v := range src {
		dst[i] = math.Float32frombits(uint32(v))
	}
	return nil
}

func (r *refBackend) read(m mem, off int, dst []float32) error {
	src, err := r.at(m, off, len(dst))
	if err != nil {
		return err
	}
	copy(dst, src)
	return nil
}

func (r *refBackend) readF64(m mem, off int) (float64, error) {
	s, err := r.at(m, off, 2)
	if err != nil {
		return 0, err
	}
	return getF64(s), nil
}

func (r *refBackend) zero(m mem, off, n int) error {
	s, err := r.at(m, off, n)
	if err != nil {
		return err
	}
	clear(s)
	return nil
}

func (r *refBackend) close() error { r.mems = nil; return nil }

// float64 scalars take two elements, little-endian like the device.
func getF64(s []float32) float64 {
	return math.Float64frombits(uint64(math.Float32bits(s[0])) | uint64(math.Float32bits(s[1]))<<32)
}

func putF64(s []float32, v float64) {
	b := math.Float64bits(v)
	s[0], s[1] = math.Float32frombits(uint32(b)), math.Float32frombits(uint32(b>>32))
}

func (r *refBackend) run(s *step, bases *[3]mem, scale float32, accumulate bool) error {
	buf := make([][]float32, len(s.b))
	for k, b := range s.b {
		if !b.valid() {
			continue
		}
		v, err := r.at(bases[b.arena], b.off, b.n)
		if err != nil {
			return fmt.Errorf("%s arg %d: %w", s.kind, k, err)
		}
		buf[k] = v
	}
	beta := float32(0)
	if accumulate {
		beta = 1
	}
	i := s.i
	switch s.kind {
	case opGemm:
		alpha, b := s.f0(), s.f1()
		if s.gradOut {
			alpha, b = scale, beta
		}
		refGemm(i[0] != 0, i[1] != 0, i[2], i[3], i[4], alpha, buf[0], i[5], buf[1], i[6], b, buf[2], i[7], buf[3])
	case opColsum:
		rows, cols, g, out := i[0], i[1], buf[0], buf[1]
		for j := range cols {
			var acc float32
			if beta != 0 {
				acc = out[j]
			}
			for r := range rows {
				acc += scale * g[r*cols+j]
			}
			out[j] = acc
		}
	case opConcat2:
		n, d1, d2, relu := i[0], i[1], i[2], i[3] != 0
		a, b, y := buf[0], buf[1], buf[2]
		d := d1 + d2
		for e := range n * d {
			r, c := e/d, e%d
			var v float32
			if c < d1 {
				v = a[r*d1+c]
			} else {
				v = b[r*d2+c-d1]
			}
			if relu {
				v = max(v, 0)
			}
			y[e] = v
		}
	case opActFwd:
		x, y := buf[0], buf[1]
		for e := range i[1] {
			y[e] = actF(i[0], x[e])
		}
	case opActBwd:
		g, y, dx := buf[0], buf[1], buf[2]
		for e := range i[1] {
			v := y[e]
			switch i[0] {
			case actReLU:
				dx[e] = 0
				if v > 0 {
					dx[e] = g[e]
				}
			case actTanh:
				dx[e] = g[e] * (1 - v*v)
			default:
				dx[e] = g[e] * v * (1 - v)
			}
		}
	case opMul:
		for e := range i[0] {
			buf[2][e] = buf[0][e] * buf[1][e]
		}
	case opMean2:
		for e := range i[0] {
			buf[2][e] = 0.5 * (buf[0][e] + buf[1][e])
		}
	case opHalf:
		for e := range i[0] {
			buf[1][e] = 0.5 * buf[0][e]
		}
	case opL2Fwd:
		n, d, x, y, norms := i[0], i[1], buf[0], buf[1], buf[2]
		for r := range n {
			var sum float64
			for j := range d {
				sum += float64(x[r*d+j]) * float64(x[r*d+j])
			}
			nrm := max(float32(math.Sqrt(sum)), 1e-12)
			norms[r] = nrm
			for j := range d {
				y[r*d+j] = x[r*d+j] / nrm
			}
		}
	case opL2Bwd:
		n, d, g, y, norms, dx := i[0], i[1], buf[0], buf[1], buf[2], buf[3]
		for r := range n {
			var dot float32
			for j := range d {
				dot += g[r*d+j] * y[r*d+j]
			}
			inv := 1 / norms[r]
			for j := range d {
				dx[r*d+j] = (g[r*d+j] - y[r*d+j]*dot) * inv
			}
		}
	case opOuterFwd:
		n, p, q, a, b, y := i[0], i[1], i[2], buf[0], buf[1], buf[2]
		for e := range n * p * q {
			r, ij := e/(p*q), e%(p*q)
			y[e] = a[r*p+ij/q] * b[r*q+ij%q]
		}
	case opOuterBwdA:
		n, p, q, g, b, da := i[0], i[1], i[2], buf[0], buf[1], buf[2]
		for e := range n * p {
			r, ii := e/p, e%p
			var sum float32
			for j := range q {
				sum += g[r*p*q+ii*q+j] * b[r*q+j]
			}
			da[e] = sum
		}
	case opOuterBwdB:
		n, p, q, g, a, db := i[0], i[1], i[2], buf[0], buf[1], buf[2]
		for e := range n * q {
			r, j := e/q, e%q
			var sum float32
			for ii := range p {
				sum += g[r*p*q+ii*q+j] * a[r*p+ii]
			}
			db[e] = sum
		}
	case opGMUFwd:
		z, hv, ht, h := buf[0], buf[1], buf[2], buf[3]
		for e := range i[0] {
			h[e] = z[e]*hv[e] + (1-z[e])*ht[e]
		}
	case opGMUBwd:
		g, z, hv, ht, dz, dhv, dht := buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6]
		for e := range i[0] {
			dz[e] = g[e] * (hv[e] - ht[e])
			dhv[e] = g[e] * z[e]
			dht[e] = g[e] * (1 - z[e])
		}
	case opLoss:
		refLoss(i[0], i[1], i[2], buf[0], buf[1], buf[2], buf[3])
	case opProb:
		n, k, z, p := i[0], i[1], buf[0], buf[1]
		for r := range n {
			if k == 1 {
				p[r] = float32(sigmoid(float64(z[r])))
				continue
			}
			a, b := float64(z[2*r]), float64(z[2*r+1])
			m := max(a, b)
			ea, eb := math.Exp(a-m), math.Exp(b-m)
			p[r] = float32(eb / (ea + eb))
		}
	case opSum:
		var sum float64
		for _, v := range buf[0][:i[0]] {
			sum += float64(v)
		}
		putF64(buf[1], sum)
	case opGather:
		n, dim, idx, src, dst := i[0], i[1], buf[0], buf[1], buf[2]
		for e := range n * dim {
			r, c := e/dim, e%dim
			row := int(int32(math.Float32bits(idx[r])))
			dst[e] = src[row*dim+c]
		}
	case opAdam:
		f := s.f
		wd, decay, b1, c1, b2, c2, stp, invBC2, eps := f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8]
		p, g, m, v := buf[0], buf[1], buf[2], buf[3]
		for e := range i[0] {
			gj := g[e] + wd*p[e]
			pj := decay * p[e]
			mj := b1*m[e] + c1*gj
			vj := b2*v[e] + c2*gj*gj
			m[e], v[e] = mj, vj
			p[e] = pj - stp*mj/(float32(math.Sqrt(float64(vj)))*invBC2+eps)
		}
	case opSGD:
		lr, wd, p, g := s.f[0], s.f[1], buf[0], buf[1]
		for e := range i[0] {
			p[e] -= lr * (g[e] + wd*p[e])
		}
	case opSumsq:
		acc := getF64(buf[1])
		for _, v := range buf[0][:i[0]] {
			acc += float64(v) * float64(v)
		}
		putF64(buf[1], acc)
	case opClip:
		norm := math.Sqrt(getF64(buf[1]))
		maxNorm := float64(s.f[0])
		if norm <= maxNorm {
			return nil
		}
		coef := float32(maxNorm / (norm + 1e-6))
		for e := range i[0] {
			buf[0][e] *= coef
		}
	case opMask:
		thr := uint32(min(float64(s.f[0])*(1<<32), math.MaxUint32))
		mask := buf[0]
		for e := range i[0] {
			mask[e] = 0
			if maskHash(i[1], i[2], e) >= thr {
				mask[e] = s.f[1]
			}
		}
	default:
		return fmt.Errorf("cuda: ref: no kernel for %v", s.kind)
	}
	return nil
}

// refGemm is mami_gemm: C = alpha·op(A)·op(B) + beta·C (+bias), each output summed over k in order
// with fused multiply-adds (math.FMA in float32 is what fmaf does).
func refGemm(transA, transB bool, M, N, K int, alpha float32, A []float32, lda int, B []float32, ldb int,
	beta float32, C []float32, ldc int, bias []float32) {
	for m := range M {
		for n := range N {
			var acc float32
			for k := range K {
				var a, b float32
				if transA {
					a = A[k*lda+m]
				} else {
					a = A[m*lda+k]
				}
				if transB {
					b = B[n*ldb+k]
				} else {
					b = B[k*ldb+n]
				}
				acc = fmaf(a, b, acc)
			}
			v := alpha * acc
			if bias != nil {
				v += bias[n]
			}
			if beta == 0 {
				C[m*ldc+n] = v
			} else {
				C[m*ldc+n] = fmaf(beta, C[m*ldc+n], v)
			}
		}
	}
}

func fmaf(a, b, c float32) float32 { return float32(math.FMA(float64(a), float64(b), float64(c))) }

func actF(kind int, v float32) float32 {
	switch kind {
	case actReLU:
		return max(v, 0)
	case actTanh:
		return float32(math.Tanh(float64(v)))
	}
	return float32(1 / (1 + math.Exp(-float64(v))))
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// refLoss is mami_loss.
func refLoss(head, n, k int, z, y, loss, dz []float32) {
	s := 1 / float64(n)
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for r := range n {
		c := y[r] >= 0.5
		if head == 2 {
			x := float64(z[r])
			loss[r] = float32(max(x, 0) - x*float64(y[r]) + math.Log1p(math.Exp(-math.Abs(x))))
			if dz != nil {
				dz[r] = float32(s * (sigmoid(x) - float64(y[r])))
			}
			continue
		}
		a, b := float64(z[2*r]), float64(z[2*r+1])
		m := max(a, b)
		ea, eb := math.Exp(a-m), math.Exp(b-m)
		p0, p1 := ea/(ea+eb), eb/(ea+eb)
		if head == 1 {
			picked := a
			if c {
				picked = b
			}
			loss[r] = float32(m + math.Log(ea+eb) - picked)
			if dz != nil {
				dz[2*r] = float32(s * (p0 - b2f(!c)))
				dz[2*r+1] = float32(s * (p1 - b2f(c)))
			}
			continue
		}
		m2 := max(p0, p1)
		e0, e1 := math.Exp(p0-m2), math.Exp(p1-m2)
		picked := p0
		if c {
			picked = p1
		}
		loss[r] = float32(m2 + math.Log(e0+e1) - picked)
		if dz != nil {
			g0, g1 := e0/(e0+e1)-b2f(!c), e1/(e0+e1)-b2f(c)
			dot := p0*g0 + p1*g1
			dz[2*r] = float32(s * p0 * (g0 - dot))
			dz[2*r+1] = float32(s * p1 * (g1 - dot))
		}
	}
}

// maskHash is mami_mask's hash of (seed, stream, i): SplitMix64's finaliser, high 32 bits.
func maskHash(seed, stream, i int) uint32 {
	x := (uint64(uint32(stream))<<32 | uint64(uint32(i))) ^ uint64(uint32(seed))*0x9E3779B97F4A7C15
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	x ^= x >> 31
	return uint32(x >> 32)
}
