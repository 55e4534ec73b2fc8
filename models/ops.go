package models

import (
	"fmt"
	"hash"
	"hash/fnv"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// This file holds the base of the package's Gorgonia ops and the linear layer's ops.
//
// Every op owns its output: Do computes into a buffer allocated when the graph is built and returns the
// same value every step, so the TapeMachine allocates nothing for it. Ops are built per graph (one graph
// per batch size), so a fixed output shape is fine.

var opIDs atomic.Uint64

// opBase implements the bookkeeping half of gorgonia.Op.
type opBase struct {
	name  string
	id    uint64
	arity int
	shape tensor.Shape
	out   G.Value
	buf   []float32 // out's memory
	need  []bool    // which inputs get a gradient (nil: none)
}

// newOpBase allocates the output for shape (a scalar when shape is empty). When mem is not nil it
// becomes the output's memory.
func newOpBase(name string, arity int, shape tensor.Shape, mem []float32) opBase {
	o := opBase{name: name, id: opIDs.Add(1), arity: arity, shape: shape}
	if len(shape) == 0 {
		f := G.NewF32(0)
		o.out = f
		o.buf = f32sOfScalar(f)
		return o
	}
	if mem == nil {
		mem = make([]float32, shape.TotalSize())
	}
	o.buf = mem
	o.out = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(mem))
	return o
}

func (o *opBase) Arity() int { return o.arity }

func (o *opBase) Type() hm.Type {
	ts := make([]hm.Type, o.arity+1)
	for i := 0; i < o.arity; i++ {
		ts[i] = hm.TypeVariable('i' + rune(i)) // not 'b': Gorgonia names the return type b
	}
	if len(o.shape) == 0 {
		ts[o.arity] = G.Float32
	} else {
		ts[o.arity] = G.TensorType{Dims: len(o.shape), Of: G.Float32}
	}
	return hm.NewFnType(ts...)
}

func (o *opBase) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.shape.Clone(), nil }
func (o *opBase) ReturnsPtr() bool                               { return false }
func (o *opBase) CallsExtern() bool                              { return false }
func (o *opBase) OverwritesInput() int                           { return -1 }
func (o *opBase) String() string                                 { return o.name }

// WriteHash makes every op distinct, so Gorgonia never merges two nodes that own different buffers.
func (o *opBase) WriteHash(h hash.Hash) { fmt.Fprintf(h, "mami.%s#%d", o.name, o.id) }

func (o *opBase) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

// DiffWRT reports which inputs the op passes gradients to.
func (o *opBase) DiffWRT(n int) []bool {
	if o.need == nil {
		return make([]bool, n)
	}
	return o.need
}

// noDiff is embedded by ops that pass no gradient (gradient ops, input preparation, eval-only ops).
type noDiff struct{}

func (noDiff) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) { return nil, nil }

func f32sOfScalar(f *G.F32) []float32 { return unsafe.Slice((*float32)(f), 1) }

// f32s returns the float32 memory behind a value without copying.
func f32s(v G.Value) []float32 {
	switch t := v.(type) {
	case *tensor.Dense:
		return t.Float32s()
	case *G.F32:
		return f32sOfScalar(t)
	}
	panic(fmt.Sprintf("models: unexpected value %T", v))
}

// scalarOf reads a scalar value (the upstream gradient of the loss).
func scalarOf(v G.Value) float32 {
	switch t := v.(type) {
	case *G.F32:
		return float32(*t)
	case *tensor.Dense:
		return t.Float32s()[0]
	}
	panic(fmt.Sprintf("models: unexpected scalar %T", v))
}

// apply adds op to the graph; Gorgonia errors become panics recovered at the API boundary.
func apply(op G.Op, children ...*G.Node) *G.Node {
	n, err := G.ApplyOp(op, children...)
	if err != nil {
		panic(buildError{fmt.Errorf("apply %v: %w", op, err)})
	}
	return n
}

// buildError carries a graph-construction error through a panic to the recover in build.
type buildError struct{ err error }

// runState is what the gradient ops read at run time: how to write into Param.Grad.
type runState struct {
	scale      float32
	accumulate bool
}

func (r *runState) beta() float32 {
	if r.accumulate {
		return 1
	}
	return 0
}

// linearOp computes y = x·Wᵀ + b for x [n,in], W [out,in] (PyTorch layout), b [out].
type linearOp struct {
	opBase
	n, in, outDim int
	p             *linearLayer
	run           *runState
	parts         int // how many cores share the product (see gemmParts)
	x, w, b       []float32
	wg            sync.WaitGroup
}

func newLinearOp(l *linearLayer, n int, gradX bool, run *runState) *linearOp {
	op := &linearOp{opBase: newOpBase("linear:"+l.name, 3, tensor.Shape{n, l.out}, nil), n: n, in: l.in, outDim: l.out, p: l, run: run}
	op.need = []bool{gradX, true, true}
	op.parts = gemmParts(n, l.in, l.out)
	return op
}

// gemmMinFlops is the smallest product worth splitting across cores.
const gemmMinFlops = 1 << 22

// gemmParts returns how many parts the products of a layer are split into (1 unless splitGEMM).
func gemmParts(n, in, out int) int {
	if !splitGEMM || 2*n*in*out < gemmMinFlops || out < 16 {
		return 1
	}
	return min(runtime.GOMAXPROCS(0), maxParts, out/8)
}

// splitRange is part of [0, n) in parts, rounded to multiples of 8 for the BLAS kernels.
func splitRange(part, parts, n int) (lo, hi int) {
	lo, hi = part*n/parts&^7, (part+1)*n/parts&^7
	if part == parts-1 {
		hi = n
	}
	return lo, hi
}

func (op *linearOp) Do(in ...G.Value) (G.Value, error) {
	op.x, op.w, op.b = f32s(in[0]), f32s(in[1]), f32s(in[2])
	runParts(op, op.parts, &op.wg)
	return op.out, nil
}

// runRange computes the output columns of part: y[:, lo:hi] = x·W[lo:hi]ᵀ + b[lo:hi].
func (op *linearOp) runRange(part, _, _ int) {
	lo, hi := splitRange(part, op.parts, op.outDim)
	y := op.buf
	for r := 0; r < op.n; r++ {
		copy(y[r*op.outDim+lo:r*op.outDim+hi], op.b[lo:hi])
	}
	impl.Sgemm(blas.NoTrans, blas.Trans, op.n, hi-lo, op.in, 1, op.x, op.in, op.w[lo*op.in:], op.in, 1, y[lo:], op.outDim)
}

func (op *linearOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	res := make(G.Nodes, 3)
	if op.need[0] {
		res[0] = apply(&linearDXOp{opBase: newOpBase("linear_dx:"+op.p.name, 2, tensor.Shape{op.n, op.in}, nil), fwd: op}, grad, inputs[1])
	}
	res[1] = apply(&linearDWOp{opBase: newOpBase("linear_dw:"+op.p.name, 2, tensor.Shape{op.outDim, op.in}, op.p.w.Grad), fwd: op}, grad, inputs[0])
	res[2] = apply(&colSumOp{opBase: newOpBase("linear_db:"+op.p.name, 1, tensor.Shape{op.outDim}, op.p.b.Grad), fwd: op}, grad)
	return res, nil
}

// linearDXOp computes dx = g·W.
type linearDXOp struct {
	opBase
	noDiff
	fwd *linearOp
}

func (op *linearDXOp) Do(in ...G.Value) (G.Value, error) {
	g, w := f32s(in[0]), f32s(in[1])
	f := op.fwd
	impl.Sgemm(blas.NoTrans, blas.NoTrans, f.n, f.in, f.outDim, 1, g, f.outDim, w, f.in, 0, op.buf, f.in)
	return op.out, nil
}

// linearDWOp writes scale·gᵀ·x into the weight's Param.Grad (adding to it when accumulating).
type linearDWOp struct {
	opBase
	noDiff
	fwd  *linearOp
	g, x []float32
	wg   sync.WaitGroup
}

func (op *linearDWOp) Do(in ...G.Value) (G.Value, error) {
	op.g, op.x = f32s(in[0]), f32s(in[1])
	runParts(op, op.fwd.parts, &op.wg)
	return op.out, nil
}

// runRange computes the weight-gradient rows of part.
func (op *linearDWOp) runRange(part, _, _ int) {
	f := op.fwd
	lo, hi := splitRange(part, f.parts, f.outDim)
	impl.Sgemm(blas.Trans, blas.NoTrans, hi-lo, f.in, f.n, f.run.scale, op.g[lo:], f.outDim, op.x, f.in, f.run.beta(), op.buf[lo*f.in:], f.in)
}

// colSumOp writes scale·Σ_rows g into the bias's Param.Grad (adding to it when accumulating).
type colSumOp struct {
	opBase
	noDiff
	fwd *linearOp
}

func (op *colSumOp) Do(in ...G.Value) (G.Value, error) {
	g := f32s(in[0])
	f := op.fwd
	db := op.buf
	if !f.run.accumulate {
		clear(db)
	}
	s := f.run.scale
	for r := 0; r < f.n; r++ {
		row := g[r*f.outDim : (r+1)*f.outDim]
		for j, v := range row {
			db[j] += s * v
		}
	}
	return op.out, nil
}
