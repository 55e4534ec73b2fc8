package models

import (
	"errors"
	"fmt"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// builder adds a model's nodes to one graph of a fixed batch size.
type builder struct {
	g        *G.ExprGraph
	n        int
	train    bool
	dropProb float64
	run      *runState
	params   map[*Param]*G.Node
	masks    []*dropMask
}

// dropMask is a mask input of a dropout: kept entries hold 1/(1−p), dropped ones 0 (inverted dropout).
type dropMask struct {
	buf []float32
	p   float64
}

// fill draws a fresh mask from rng.
func (m *dropMask) fill(rng *rand.Rand) {
	thr := uint32(m.p * (1 << 32))
	keep := float32(1 / (1 - m.p))
	buf := m.buf
	i := 0
	for ; i+1 < len(buf); i += 2 {
		u := rng.Uint64()
		buf[i] = keepOrDrop(uint32(u) >= thr, keep)
		buf[i+1] = keepOrDrop(uint32(u>>32) >= thr, keep)
	}
	if i < len(buf) {
		buf[i] = keepOrDrop(uint32(rng.Uint64()) >= thr, keep)
	}
}

func keepOrDrop(keep bool, v float32) float32 {
	if keep {
		return v
	}
	return 0
}

func (b *builder) input(name string, buf []float32, shape ...int) *G.Node {
	t := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(buf))
	if len(shape) == 1 {
		return G.NewVector(b.g, G.Float32, G.WithShape(shape...), G.WithName(name), G.WithValue(t))
	}
	return G.NewMatrix(b.g, G.Float32, G.WithShape(shape...), G.WithName(name), G.WithValue(t))
}

// param returns the node of p in this graph, bound to p's memory.
func (b *builder) param(p *Param) *G.Node {
	if n, ok := b.params[p]; ok {
		return n
	}
	var n *G.Node
	if len(p.Shape) == 1 {
		n = G.NewVector(b.g, G.Float32, G.WithShape(p.Shape...), G.WithName(p.Name), G.WithValue(p.t))
	} else {
		n = G.NewMatrix(b.g, G.Float32, G.WithShape(p.Shape...), G.WithName(p.Name), G.WithValue(p.t))
	}
	b.params[p] = n
	return n
}

func (b *builder) linear(x val, l *linearLayer) val {
	op := newLinearOp(l, b.n, !x.data, b.run)
	return val{node: apply(op, x.node, b.param(l.w), b.param(l.b)), dim: l.out}
}

func (b *builder) act(kind int, x val) val {
	return val{node: apply(newUnaryOp(kind, tensor.Shape{b.n, x.dim}), x.node), dim: x.dim, data: x.data}
}

func (b *builder) dropout(x val) val {
	if !b.train || b.dropProb == 0 {
		return x
	}
	m := &dropMask{buf: make([]float32, b.n*x.dim), p: b.dropProb}
	b.masks = append(b.masks, m)
	mask := b.input(fmt.Sprintf("dropout_mask%d", len(b.masks)), m.buf, b.n, x.dim)
	return b.mulNode("dropout", x, val{node: mask, dim: x.dim, data: true})
}

func (b *builder) mul(x, y val) val { return b.mulNode("mul", x, y) }

func (b *builder) mulNode(name string, x, y val) val {
	op := newMulOp(name, tensor.Shape{b.n, x.dim}, []bool{!x.data, !y.data})
	return val{node: apply(op, x.node, y.node), dim: x.dim, data: x.data && y.data}
}

func (b *builder) concat(relu bool, parts ...val) val {
	dims, nodes := make([]int, len(parts)), make([]*G.Node, len(parts))
	total := 0
	for i, p := range parts {
		if !p.data {
			panic(buildError{errors.New("concat of a learned value is not supported")})
		}
		dims[i], nodes[i] = p.dim, p.node
		total += p.dim
	}
	return val{node: apply(newConcatOp(b.n, dims, relu), nodes...), dim: total, data: true}
}

func (b *builder) l2norm(x val) val {
	return val{node: apply(newL2NormOp(b.n, x.dim), x.node), dim: x.dim}
}

func (b *builder) outer(x, y val) val {
	return val{node: apply(newOuterOp(b.n, x.dim, y.dim), x.node, y.node), dim: x.dim * y.dim}
}

func (b *builder) gmu(z, hv, ht val) val {
	return val{node: apply(newGMUOp(tensor.Shape{b.n, z.dim}), z.node, hv.node, ht.node), dim: z.dim}
}

func (b *builder) mean(x, y val) val {
	return val{node: apply(newMeanOp(tensor.Shape{b.n, x.dim}), x.node, y.node), dim: x.dim}
}

// program is one compiled graph: its TapeMachine and the memory of its inputs.
type program struct {
	g                   *G.ExprGraph
	vm                  G.VM
	n                   int
	image, text, labels []float32
	masks               []*dropMask
	loss                *lossOp
	prob                *probOp
}

// build compiles the graph of net for batch size n, in training mode (loss and weight gradients,
// dropout on) or eval mode (probabilities and loss).
func (net *Net) build(train bool, n int) (prog *program, err error) {
	defer func() {
		if r := recover(); r != nil {
			if be, ok := r.(buildError); ok {
				err = be.err
			} else {
				err = fmt.Errorf("gorgonia: %v", r)
			}
			prog = nil
		}
	}()
	s := net.spec
	b := &builder{g: G.NewGraph(), n: n, train: train, dropProb: s.Dropout, run: net.run, params: map[*Param]*G.Node{}}
	prog = &program{
		n:      n,
		image:  make([]float32, n*s.ImageDim),
		text:   make([]float32, n*s.TextDim),
		labels: make([]float32, n),
	}
	image := val{node: b.input("image", prog.image, n, s.ImageDim), dim: s.ImageDim, data: true}
	text := val{node: b.input("text", prog.text, n, s.TextDim), dim: s.TextDim, data: true}
	labels := b.input("labels", prog.labels, n)
	logits := net.arch.forward(b, image, text)
	prog.masks = b.masks
	prog.loss = newLossOp(s.Head, n, s.outDim())
	loss := apply(prog.loss, logits.node, labels)
	if train {
		wrt := make(G.Nodes, len(net.params))
		for i, p := range net.params {
			if wrt[i] = b.params[p]; wrt[i] == nil {
				return nil, fmt.Errorf("param %s is not used by the graph", p.Name)
			}
		}
		grads, err := G.Grad(loss, wrt...)
		if err != nil {
			return nil, fmt.Errorf("differentiate: %w", err)
		}
		for i, p := range net.params {
			if !writesGrad(grads[i], p) {
				return nil, fmt.Errorf("gradient of %s is not written into its Param.Grad (op %v)", p.Name, grads[i].Op())
			}
		}
	} else {
		prog.prob = newProbOp(n, s.outDim())
		apply(prog.prob, logits.node)
	}
	prog.g = b.g
	prog.vm = G.NewTapeMachine(b.g)
	return prog, nil
}

// writesGrad reports whether node is one of the ops that write a param's gradient into p.Grad.
func writesGrad(node *G.Node, p *Param) bool {
	var buf []float32
	switch op := node.Op().(type) {
	case *linearDWOp:
		buf = op.buf
	case *colSumOp:
		buf = op.buf
	default:
		return false
	}
	return len(buf) == len(p.Grad) && &buf[0] == &p.Grad[0]
}

// exec runs the program once on batch bt.
func (prog *program) exec(bt Batch, maskRNG *rand.Rand) (err error) {
	copy(prog.image, bt.Image)
	copy(prog.text, bt.Text)
	copy(prog.labels, bt.Labels)
	for _, m := range prog.masks {
		m.fill(maskRNG)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gorgonia: %v", r)
		}
	}()
	prog.vm.Reset()
	return prog.vm.RunAll()
}
