package cuda

import (
	"fmt"
	"strconv"

	"github.com/mami-lab/mami/models"
)

// This file turns a models.Spec into a plan: the memory layout and the list of kernel steps of one
// training or evaluation pass at a fixed batch size. The plan is backend-neutral: the Go reference
// (ref.go) and the CUDA executor (device_cuda.go) run the same steps.

// Arenas a bufRef points into.
const (
	arenaState = 0 // params, grads, optimizer state, data set, scalars: lives as long as the Net
	arenaPlan  = 1 // one plan's activations and gradients
)

// align is the alignment of every buffer, in 4-byte elements (256 bytes, what cuMemAlloc guarantees).
const align = 64

// bufRef is a buffer: n 4-byte elements at element offset off of an arena (float32 unless the step
// says it holds int32 indices or float64 scalars, which take two elements each).
type bufRef struct {
	arena int
	off   int
	n     int
}

// none is the absent buffer (a gemm without bias).
var none = bufRef{arena: -1}

func (r bufRef) valid() bool { return r.arena >= 0 }

// sub is the part [lo, lo+n) of r.
func (r bufRef) sub(lo, n int) bufRef { return bufRef{arena: r.arena, off: r.off + lo, n: n} }

// arena plans the buffers of one allocation.
type arena struct {
	id    int
	size  int // elements
	names []string
	bufs  []bufRef
}

func (a *arena) add(name string, n int) bufRef {
	off := (a.size + align - 1) / align * align
	r := bufRef{arena: a.id, off: off, n: n}
	a.size = off + n
	a.names = append(a.names, name)
	a.bufs = append(a.bufs, r)
	return r
}

// opKind names a kernel step. The integer and buffer arguments of each are documented on its constant.
type opKind int

const (
	opGemm      opKind = iota // i: transA transB M N K lda ldb ldc; b: A B C bias; f: alpha beta
	opColsum                  // i: rows cols; b: g out; f: scale beta
	opConcat2                 // i: n d1 d2 relu; b: a b y
	opActFwd                  // i: kind len; b: x y
	opActBwd                  // i: kind len; b: g y dx
	opMul                     // i: len; b: a b y
	opMean2                   // i: len; b: a b y
	opHalf                    // i: len; b: g y
	opL2Fwd                   // i: n d; b: x y norms
	opL2Bwd                   // i: n d; b: g y norms dx
	opOuterFwd                // i: n p q; b: a b y
	opOuterBwdA               // i: n p q; b: g b da
	opOuterBwdB               // i: n p q; b: g a db
	opGMUFwd                  // i: len; b: z hv ht h
	opGMUBwd                  // i: len; b: g z hv ht dz dhv dht
	opLoss                    // i: head n k; b: z labels loss dz(optional)
	opProb                    // i: n k; b: z p
	opSum                     // i: n; b: x out(f64)
	opGather                  // i: n dim; b: idx(i32) src dst
	opAdam                    // i: len; b: p g m v; f: wd decay b1 c1 b2 c2 step invBC2 eps
	opSGD                     // i: len; b: p g; f: lr wd
	opSumsq                   // i: len; b: g acc(f64)
	opClip                    // i: len; b: g acc(f64); f: max
	opMask                    // i: len seed stream; b: mask; f: p keep
)

var opNames = [...]string{"gemm", "colsum", "concat2", "act_fwd", "act_bwd", "mul", "mean2", "half", "l2norm_fwd",
	"l2norm_bwd", "outer_fwd", "outer_bwd_a", "outer_bwd_b", "gmu_fwd", "gmu_bwd", "loss", "prob", "sum", "gather", "adam", "sgd", "sumsq", "clip", "mask"}

func (k opKind) String() string { return opNames[k] }

// step is one kernel launch. gradOut marks a step writing a Param.Grad: its alpha/scale and beta come
// from Grad's scale and accumulate at run time.
type step struct {
	kind    opKind
	i       []int
	b       []bufRef
	f       []float32
	gradOut bool
}

// Activation kinds (the kernels' numbering).
const (
	actReLU    = 0
	actTanh    = 1
	actSigmoid = 2
)

// Head numbers of the loss kernel.
func headID(head string) int {
	switch head {
	case models.HeadSoftmaxCE:
		return 1
	case models.HeadBCE:
		return 2
	}
	return 0
}

// layer is one linear layer's place in the flat params: weight [out, in] then bias [out].
type layer struct {
	name    string
	in, out int
	w, b    int // element offsets of weight and bias in the flat params
}

// paramInfo is one param in models' order.
type paramInfo struct {
	name  string
	shape []int
	off   int
}

// layout is the flat parameter layout of a spec: every param in models' order, one contiguous range.
type layout struct {
	spec   models.Spec
	params []paramInfo
	layers []*layer
	total  int
}

func (l *layout) linear(name string, in, out int) *layer {
	ly := &layer{name: name, in: in, out: out, w: l.total, b: l.total + in*out}
	l.params = append(l.params,
		paramInfo{name: name + ".weight", shape: []int{out, in}, off: ly.w},
		paramInfo{name: name + ".bias", shape: []int{out}, off: ly.b})
	l.total += in*out + out
	l.layers = append(l.layers, ly)
	return ly
}

func (l *layout) mlp(prefix string, in int, hidden []int, out int) []*layer {
	var ls []*layer
	for i, h := range append(hidden[:len(hidden):len(hidden)], out) {
		ls = append(ls, l.linear(prefix+"fc"+strconv.Itoa(i+1), in, h))
		in = h
	}
	return ls
}

// arch is a fusion architecture as a plan builder sees it: its layers and its forward pass.
type arch struct {
	forward func(b *builder, image, text node) node
}

func outDim(s models.Spec) int {
	if s.Head == models.HeadBCE {
		return 1
	}
	return 2
}

// newArch lays out the params of spec's fusion in models' order and returns its forward pass. It
// mirrors the registry of package models (see the report on exporting it there).
func newArch(s models.Spec, l *layout) (*arch, error) {
	k := outDim(s)
	switch s.Fusion {
	case models.FusionConcat:
		m := l.mlp("", s.TextDim+s.ImageDim, s.Hidden, k)
		return &arch{func(b *builder, image, text node) node { return b.mlp(m, b.concat(true, text, image)) }}, nil
	case models.FusionLate:
		mt := l.mlp("text.", s.TextDim, s.Hidden, k)
		mi := l.mlp("image.", s.ImageDim, s.Hidden, k)
		return &arch{func(b *builder, image, text node) node { return b.mean(b.mlp(mt, text), b.mlp(mi, image)) }}, nil
	case models.FusionAlign, models.FusionCross:
		pi := l.linear("proj_image", s.ImageDim, s.ProjDim)
		pt := l.linear("proj_text", s.TextDim, s.ProjDim)
		in := s.ProjDim
		if s.Fusion == models.FusionCross {
			in = s.ProjDim * s.ProjDim
		}
		m := l.mlp("", in, s.Hidden, k)
		cross := s.Fusion == models.FusionCross
		return &arch{func(b *builder, image, text node) node {
			pv := b.l2norm(b.linear(image, pi))
			ptx := b.l2norm(b.linear(text, pt))
			if cross {
				return b.mlp(m, b.outer(pv, ptx))
			}
			return b.mlp(m, b.mul(pv, ptx))
		}}, nil
	case models.FusionGMU:
		li := l.linear("gmu.image", s.ImageDim, s.ProjDim)
		lt := l.linear("gmu.text", s.TextDim, s.ProjDim)
		lg := l.linear("gmu.gate", s.ImageDim+s.TextDim, s.ProjDim)
		m := l.mlp("", s.ProjDim, s.Hidden, k)
		return &arch{func(b *builder, image, text node) node {
			hv := b.act(actTanh, b.linear(image, li))
			ht := b.act(actTanh, b.linear(text, lt))
			z := b.act(actSigmoid, b.linear(b.concat(false, image, text), lg))
			return b.mlp(m, b.gmu(z, hv, ht))
		}}, nil
	case models.FusionImageOnly:
		m := l.mlp("", s.ImageDim, s.Hidden, k)
		return &arch{func(b *builder, image, _ node) node { return b.mlp(m, image) }}, nil
	case models.FusionTextOnly:
		m := l.mlp("", s.TextDim, s.Hidden, k)
		return &arch{func(b *builder, _, text node) node { return b.mlp(m, text) }}, nil
	}
	return nil, fmt.Errorf("cuda: fusion %q has no GPU plan", s.Fusion)
}

// newLayout validates spec and lays out its params.
func newLayout(s models.Spec) (*layout, *arch, error) {
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	l := &layout{spec: s}
	a, err := newArch(s, l)
	if err != nil {
		return nil, nil, err
	}
	return l, a, nil
}
