package cuda

import (
	"fmt"
)

// node is a value of the forward pass: an [n, dim] buffer, and the buffer its gradient goes to (none for
// values that depend on the data only, which get no gradient).
type node struct {
	val  bufRef
	grad bufRef
	dim  int
	data bool
	used bool
}

// builder emits the steps of one pass at batch size n. Backward steps are collected as closures in
// forward order and emitted in reverse.
type builder struct {
	n       int
	train   bool
	dropP   float64
	params  bufRef // the flat params (state arena)
	grads   bufRef // the flat grads, same layout
	mem     *arena
	fwd     []step
	bwd     []func()
	bwdOut  []step
	masks   []bufRef
	nodes   []*node
	err     error
	dropCnt int
}

func (b *builder) newNode(name string, dim int, data bool) *node {
	nd := &node{val: b.mem.add(name, b.n*dim), dim: dim, data: data, grad: none}
	if b.train && !data {
		nd.grad = b.mem.add(name+".grad", b.n*dim)
	}
	b.nodes = append(b.nodes, nd)
	return nd
}

// use marks x consumed; a learned value consumed twice would need its gradients summed, which no
// registered architecture does, so it is refused.
func (b *builder) use(xs ...node) {
	for _, x := range xs {
		for _, nd := range b.nodes {
			if nd.val == x.val {
				if nd.used && !nd.data && b.err == nil {
					b.err = fmt.Errorf("cuda: plan: a learned value is used twice (unsupported)")
				}
				nd.used = true
			}
		}
	}
}

func (b *builder) emit(s step)         { b.fwd = append(b.fwd, s) }
func (b *builder) emitBwd(s step)      { b.bwdOut = append(b.bwdOut, s) }
func (b *builder) onBackward(f func()) { b.bwd = append(b.bwd, f) }

func (b *builder) param(off, n int) bufRef { return b.params.sub(off, n) }
func (b *builder) grad(off, n int) bufRef  { return b.grads.sub(off, n) }

// linear: y = x·Wᵀ + b.
func (b *builder) linear(x node, l *layer) node {
	b.use(x)
	y := *b.newNode(l.name, l.out, false)
	w, bias := b.param(l.w, l.in*l.out), b.param(l.b, l.out)
	b.emit(step{kind: opGemm, i: []int{0, 1, b.n, l.out, l.in, l.in, l.in, l.out}, b: []bufRef{x.val, w, y.val, bias}, f: []float32{1, 0}})
	if b.train {
		b.onBackward(func() {
			if !x.data {
				b.emitBwd(step{kind: opGemm, i: []int{0, 0, b.n, l.in, l.out, l.out, l.in, l.in}, b: []bufRef{y.grad, w, x.grad, none}, f: []float32{1, 0}})
			}
			b.emitBwd(step{kind: opGemm, i: []int{1, 0, l.out, l.in, b.n, l.out, l.in, l.in}, b: []bufRef{y.grad, x.val, b.grad(l.w, l.in*l.out), none}, gradOut: true})
			b.emitBwd(step{kind: opColsum, i: []int{b.n, l.out}, b: []bufRef{y.grad, b.grad(l.b, l.out)}, gradOut: true})
		})
	}
	return y
}

func (b *builder) act(kind int, x node) node {
	b.use(x)
	y := *b.newNode("act", x.dim, x.data)
	b.emit(step{kind: opActFwd, i: []int{kind, b.n * x.dim}, b: []bufRef{x.val, y.val}})
	if b.train && !x.data {
		b.onBackward(func() {
			b.emitBwd(step{kind: opActBwd, i: []int{kind, b.n * x.dim}, b: []bufRef{y.grad, y.val, x.grad}})
		})
	}
	return y
}

// dropout multiplies by a mask input filled per step (inverted dropout, see masks.go).
func (b *builder) dropout(x node) node {
	if !b.train || b.dropP == 0 {
		return x
	}
	b.use(x)
	b.dropCnt++
	mask := b.mem.add(fmt.Sprintf("dropout_mask%d", b.dropCnt), b.n*x.dim)
	b.masks = append(b.masks, mask)
	y := *b.newNode("dropout", x.dim, x.data)
	b.emit(step{kind: opMul, i: []int{b.n * x.dim}, b: []bufRef{x.val, mask, y.val}})
	if !x.data {
		b.onBackward(func() {
			b.emitBwd(step{kind: opMul, i: []int{b.n * x.dim}, b: []bufRef{y.grad, mask, x.grad}})
		})
	}
	return y
}

func (b *builder) mlp(layers []*layer, x node) node {
	for i, l := range layers {
		x = b.linear(x, l)
		if i < len(layers)-1 {
			x = b.dropout(b.act(actReLU, x))
		}
	}
	return x
}

func (b *builder) mul(x, y node) node {
	b.use(x, y)
	out := *b.newNode("mul", x.dim, x.data && y.data)
	b.emit(step{kind: opMul, i: []int{b.n * x.dim}, b: []bufRef{x.val, y.val, out.val}})
	if b.train && !out.data {
		b.onBackward(func() {
			if !x.data {
				b.emitBwd(step{kind: opMul, i: []int{b.n * x.dim}, b: []bufRef{out.grad, y.val, x.grad}})
			}
			if !y.data {
				b.emitBwd(step{kind: opMul, i: []int{b.n * x.dim}, b: []bufRef{out.grad, x.val, y.grad}})
			}
		})
	}
	return out
}

// concat joins two data-only values (ReLU'd when relu), like models' concat.
func (b *builder) concat(relu bool, x, y node) node {
	if (!x.data || !y.data) && b.err == nil {
		b.err = fmt.Errorf("cuda: plan: concat of a learned value is not supported")
	}
	b.use(x, y)
	out := *b.newNode("concat", x.dim+y.dim, true)
	r := 0
	if relu {
		r = 1
	}
	b.emit(step{kind: opConcat2, i: []int{b.n, x.dim, y.dim, r}, b: []bufRef{x.val, y.val, out.val}})
	return out
}

func (b *builder) l2norm(x node) node {
	b.use(x)
	y := *b.newNode("l2norm", x.dim, x.data)
	norms := b.mem.add("l2norm.norms", b.n)
	b.emit(step{kind: opL2Fwd, i: []int{b.n, x.dim}, b: []bufRef{x.val, y.val, norms}})
	if b.train && !x.data {
		b.onBackward(func() {
			b.emitBwd(step{kind: opL2Bwd, i: []int{b.n, x.dim}, b: []bufRef{y.grad, y.val, norms, x.grad}})
		})
	}
	return y
}

func (b *builder) outer(x, y node) node {
	b.use(x, y)
	p, q := x.dim, y.dim
	out := *b.newNode("outer", p*q, x.data && y.data)
	b.emit(step{kind: opOuterFwd, i: []int{b.n, p, q}, b: []bufRef{x.val, y.val, out.val}})
	if b.train && !out.data {
		b.onBackward(func() {
			if !x.data {
				b.emitBwd(step{kind: opOuterBwdA, i: []int{b.n, p, q}, b: []bufRef{out.grad, y.val, x.grad}})
			}
			if !y.data {
				b.emitBwd(step{kind: opOuterBwdB, i: []int{b.n, p, q}, b: []bufRef{out.grad, x.val, y.grad}})
			}
		})
	}
	return out
}

func (b *builder) gmu(z, hv, ht node) node {
	b.use(z, hv, ht)
	h := *b.newNode("gmu", z.dim, false)
	b.emit(step{kind: opGMUFwd, i: []int{b.n * z.dim}, b: []bufRef{z.val, hv.val, ht.val, h.val}})
	if b.train {
		if z.data || hv.data || ht.data {
			b.err = fmt.Errorf("cuda: plan: gmu of a data-only value is not supported")
		}
		b.onBackward(func() {
			b.emitBwd(step{kind: opGMUBwd, i: []int{b.n * z.dim}, b: []bufRef{h.grad, z.val, hv.val, ht.val, z.grad, hv.grad, ht.grad}})
		})
	}
	return h
}

func (b *builder) mean(x, y node) node {
	b.use(x, y)
	out := *b.newNode("mean2", x.dim, false)
	b.emit(step{kind: opMean2, i: []int{b.n * x.dim}, b: []bufRef{x.val, y.val, out.val}})
	if b.train {
		b.onBackward(func() {
			b.emitBwd(step{kind: opHalf, i: []int{b.n * x.dim}, b: []bufRef{out.grad, x.grad}})
			b.emitBwd(step{kind: opHalf, i: []int{b.n * x.dim}, b: []bufRef{out.grad, y.grad}})
		})
	}
	return out
}
