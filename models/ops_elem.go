package models

import (
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// concatOp joins its inputs row by row (all [n, d_i] → [n, Σd_i]), optionally through a ReLU. It is
// used on the data only, so it passes no gradient.
type concatOp struct {
	opBase
	noDiff
	n    int
	dims []int
	relu bool
}

func newConcatOp(n int, dims []int, relu bool) *concatOp {
	total := 0
	for _, d := range dims {
		total += d
	}
	return &concatOp{opBase: newOpBase("concat", len(dims), tensor.Shape{n, total}, nil), n: n, dims: dims, relu: relu}
}

func (op *concatOp) Do(in ...G.Value) (G.Value, error) {
	total := op.shape[1]
	for r := 0; r < op.n; r++ {
		dst := op.buf[r*total : (r+1)*total]
		off := 0
		for i, d := range op.dims {
			src := f32s(in[i])[r*d : (r+1)*d]
			part := dst[off : off+d]
			if op.relu {
				for j, v := range src {
					part[j] = max(v, 0)
				}
			} else {
				copy(part, src)
			}
			off += d
		}
	}
	return op.out, nil
}

// Unary activations.
const (
	actReLU = iota
	actTanh
	actSigmoid
)

var actNames = [...]string{"relu", "tanh", "sigmoid"}

// unaryOp applies an activation elementwise.
type unaryOp struct {
	opBase
	kind int
}

func newUnaryOp(kind int, shape tensor.Shape) *unaryOp {
	op := &unaryOp{opBase: newOpBase(actNames[kind], 1, shape, nil), kind: kind}
	op.need = []bool{true}
	return op
}

func (op *unaryOp) Do(in ...G.Value) (G.Value, error) {
	x, y := f32s(in[0]), op.buf
	switch op.kind {
	case actReLU:
		for i, v := range x {
			y[i] = max(v, 0)
		}
	case actTanh:
		for i, v := range x {
			y[i] = float32(math.Tanh(float64(v)))
		}
	case actSigmoid:
		for i, v := range x {
			y[i] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	}
	return op.out, nil
}

func (op *unaryOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	d := &unaryGradOp{opBase: newOpBase(op.name+"_grad", 2, op.shape, nil), kind: op.kind}
	return G.Nodes{apply(d, grad, output)}, nil
}

// unaryGradOp computes dx from (g, y) for an activation y = f(x).
type unaryGradOp struct {
	opBase
	noDiff
	kind int
}

func (op *unaryGradOp) Do(in ...G.Value) (G.Value, error) {
	g, y, dx := f32s(in[0]), f32s(in[1]), op.buf
	switch op.kind {
	case actReLU:
		for i, v := range y {
			if v > 0 {
				dx[i] = g[i]
			} else {
				dx[i] = 0
			}
		}
	case actTanh:
		for i, v := range y {
			dx[i] = g[i] * (1 - v*v)
		}
	case actSigmoid:
		for i, v := range y {
			dx[i] = g[i] * v * (1 - v)
		}
	}
	return op.out, nil
}

// mulOp is the elementwise product of two same-shaped inputs (dropout: x ⊙ mask; align: a ⊙ b).
type mulOp struct {
	opBase
}

func newMulOp(name string, shape tensor.Shape, need []bool) *mulOp {
	op := &mulOp{opBase: newOpBase(name, 2, shape, nil)}
	op.need = need
	return op
}

func (op *mulOp) Do(in ...G.Value) (G.Value, error) {
	a, b, y := f32s(in[0]), f32s(in[1]), op.buf
	for i := range y {
		y[i] = a[i] * b[i]
	}
	return op.out, nil
}

func (op *mulOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	res := make(G.Nodes, 2)
	for i := range 2 {
		if op.need[i] {
			res[i] = apply(newMulOp(op.name+"_grad", op.shape, nil), grad, inputs[1-i])
		}
	}
	return res, nil
}

// l2NormOp normalises each row of x [n,d] to unit L2 norm (like torch.nn.functional.normalize, eps 1e-12).
type l2NormOp struct {
	opBase
	n, d  int
	norms []float32
}

const normEps = 1e-12

func newL2NormOp(n, d int) *l2NormOp {
	op := &l2NormOp{opBase: newOpBase("l2norm", 1, tensor.Shape{n, d}, nil), n: n, d: d, norms: make([]float32, n)}
	op.need = []bool{true}
	return op
}

func (op *l2NormOp) Do(in ...G.Value) (G.Value, error) {
	x := f32s(in[0])
	for r := 0; r < op.n; r++ {
		row := x[r*op.d : (r+1)*op.d]
		var s float64
		for _, v := range row {
			s += float64(v) * float64(v)
		}
		nrm := max(float32(math.Sqrt(s)), normEps)
		op.norms[r] = nrm
		y := op.buf[r*op.d : (r+1)*op.d]
		for j, v := range row {
			y[j] = v / nrm
		}
	}
	return op.out, nil
}

func (op *l2NormOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	d := &l2NormGradOp{opBase: newOpBase("l2norm_grad", 2, op.shape, nil), fwd: op}
	return G.Nodes{apply(d, grad, output)}, nil
}

// l2NormGradOp computes dx = (g − y·(g·y)) / ‖x‖ per row (the clamp at eps is treated as constant).
type l2NormGradOp struct {
	opBase
	noDiff
	fwd *l2NormOp
}

func (op *l2NormGradOp) Do(in ...G.Value) (G.Value, error) {
	g, y := f32s(in[0]), f32s(in[1])
	d := op.fwd.d
	for r := 0; r < op.fwd.n; r++ {
		gr, yr, dx := g[r*d:(r+1)*d], y[r*d:(r+1)*d], op.buf[r*d:(r+1)*d]
		var dot float32
		for j := range gr {
			dot += gr[j] * yr[j]
		}
		inv := 1 / op.fwd.norms[r]
		for j := range gr {
			dx[j] = (gr[j] - yr[j]*dot) * inv
		}
	}
	return op.out, nil
}

// outerOp is the per-row outer product of a [n,p] and b [n,q], flattened to [n, p·q] (index i·q+j).
type outerOp struct {
	opBase
	n, p, q int
}

func newOuterOp(n, p, q int) *outerOp {
	op := &outerOp{opBase: newOpBase("outer", 2, tensor.Shape{n, p * q}, nil), n: n, p: p, q: q}
	op.need = []bool{true, true}
	return op
}

func (op *outerOp) Do(in ...G.Value) (G.Value, error) {
	a, b := f32s(in[0]), f32s(in[1])
	pq := op.p * op.q
	for r := 0; r < op.n; r++ {
		ar, br, y := a[r*op.p:(r+1)*op.p], b[r*op.q:(r+1)*op.q], op.buf[r*pq:(r+1)*pq]
		for i, av := range ar {
			yi := y[i*op.q : (i+1)*op.q]
			for j, bv := range br {
				yi[j] = av * bv
			}
		}
	}
	return op.out, nil
}

func (op *outerOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	da := &outerGradOp{opBase: newOpBase("outer_grad_a", 2, tensor.Shape{op.n, op.p}, nil), fwd: op, wrtA: true}
	db := &outerGradOp{opBase: newOpBase("outer_grad_b", 2, tensor.Shape{op.n, op.q}, nil), fwd: op}
	return G.Nodes{apply(da, grad, inputs[1]), apply(db, grad, inputs[0])}, nil
}

// outerGradOp computes da[i] = Σ_j g[i,j]·b[j] (wrtA) or db[j] = Σ_i g[i,j]·a[i] from (g, other).
type outerGradOp struct {
	opBase
	noDiff
	fwd  *outerOp
	wrtA bool
}

func (op *outerGradOp) Do(in ...G.Value) (G.Value, error) {
	g, o := f32s(in[0]), f32s(in[1])
	p, q := op.fwd.p, op.fwd.q
	for r := 0; r < op.fwd.n; r++ {
		gr := g[r*p*q : (r+1)*p*q]
		if op.wrtA {
			br, da := o[r*q:(r+1)*q], op.buf[r*p:(r+1)*p]
			for i := range p {
				var s float32
				for j, bv := range br {
					s += gr[i*q+j] * bv
				}
				da[i] = s
			}
		} else {
			ar, db := o[r*p:(r+1)*p], op.buf[r*q:(r+1)*q]
			clear(db)
			for i, av := range ar {
				gi := gr[i*q : (i+1)*q]
				for j, gv := range gi {
					db[j] += gv * av
				}
			}
		}
	}
	return op.out, nil
}

// gmuOp combines h = z⊙hv + (1−z)⊙ht from (z, hv, ht).
type gmuOp struct {
	opBase
}

func newGMUOp(shape tensor.Shape) *gmuOp {
	op := &gmuOp{opBase: newOpBase("gmu", 3, shape, nil)}
	op.need = []bool{true, true, true}
	return op
}

func (op *gmuOp) Do(in ...G.Value) (G.Value, error) {
	z, hv, ht, h := f32s(in[0]), f32s(in[1]), f32s(in[2]), op.buf
	for i := range h {
		h[i] = z[i]*hv[i] + (1-z[i])*ht[i]
	}
	return op.out, nil
}

func (op *gmuOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	res := make(G.Nodes, 3)
	for i := range 3 {
		d := &gmuGradOp{opBase: newOpBase("gmu_grad", 4, op.shape, nil), wrt: i}
		res[i] = apply(d, grad, inputs[0], inputs[1], inputs[2])
	}
	return res, nil
}

// gmuGradOp computes the gradient of the gmu combination for input wrt from (g, z, hv, ht).
type gmuGradOp struct {
	opBase
	noDiff
	wrt int
}

func (op *gmuGradOp) Do(in ...G.Value) (G.Value, error) {
	g, z, hv, ht, d := f32s(in[0]), f32s(in[1]), f32s(in[2]), f32s(in[3]), op.buf
	switch op.wrt {
	case 0:
		for i := range d {
			d[i] = g[i] * (hv[i] - ht[i])
		}
	case 1:
		for i := range d {
			d[i] = g[i] * z[i]
		}
	case 2:
		for i := range d {
			d[i] = g[i] * (1 - z[i])
		}
	}
	return op.out, nil
}

// meanOp averages two same-shaped inputs (late fusion of two classifiers' logits).
type meanOp struct {
	opBase
}

func newMeanOp(shape tensor.Shape) *meanOp {
	op := &meanOp{opBase: newOpBase("mean2", 2, shape, nil)}
	op.need = []bool{true, true}
	return op
}

func (op *meanOp) Do(in ...G.Value) (G.Value, error) {
	a, b, y := f32s(in[0]), f32s(in[1]), op.buf
	for i := range y {
		y[i] = 0.5 * (a[i] + b[i])
	}
	return op.out, nil
}

func (op *meanOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	h := apply(&halfOp{opBase: newOpBase("mean2_grad", 1, op.shape, nil)}, grad)
	return G.Nodes{h, h}, nil
}

// halfOp computes g/2.
type halfOp struct {
	opBase
	noDiff
}

func (op *halfOp) Do(in ...G.Value) (G.Value, error) {
	g, y := f32s(in[0]), op.buf
	for i := range y {
		y[i] = 0.5 * g[i]
	}
	return op.out, nil
}
