package models

import (
	"math"
	"math/rand/v2"
	"strconv"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Param is one learnable tensor (row-major; a linear layer's weight is [out, in] like PyTorch's).
// Value is the memory the graphs compute with: write it in place (copy into it to load a checkpoint),
// never replace the slice. Grad is where Net.Grad writes the gradient; optimizers read it.
type Param struct {
	Name  string
	Shape []int
	Value []float32
	Grad  []float32

	t *tensor.Dense // Value as a tensor, bound to the param's node in every graph
}

// linearLayer is a fully connected layer y = x·Wᵀ + b with PyTorch's layout and initialisation.
type linearLayer struct {
	name    string
	in, out int
	w, b    *Param
}

// paramSet creates the params of a model in a stable order, initialised from one RNG.
type paramSet struct {
	rng    *rand.Rand
	params []*Param
}

func (ps *paramSet) newParam(name string, shape ...int) *Param {
	size := 1
	for _, d := range shape {
		size *= d
	}
	p := &Param{Name: name, Shape: shape, Value: make([]float32, size), Grad: make([]float32, size)}
	p.t = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(p.Value))
	ps.params = append(ps.params, p)
	return p
}

// linear creates a layer initialised like torch.nn.Linear: weights and bias U(±1/√in).
func (ps *paramSet) linear(name string, in, out int) *linearLayer {
	l := &linearLayer{name: name, in: in, out: out, w: ps.newParam(name+".weight", out, in), b: ps.newParam(name+".bias", out)}
	bound := 1 / math.Sqrt(float64(in))
	for _, p := range []*Param{l.w, l.b} {
		for i := range p.Value {
			p.Value[i] = float32((2*ps.rng.Float64() - 1) * bound)
		}
	}
	return l
}

// mlp is the classifier shared by every fusion: [Linear → ReLU → Dropout] per hidden size, then Linear.
type mlp struct {
	layers []*linearLayer
}

func newMLP(ps *paramSet, prefix string, in int, hidden []int, out int) *mlp {
	m := &mlp{}
	for i, h := range append(hidden[:len(hidden):len(hidden)], out) {
		m.layers = append(m.layers, ps.linear(prefix+"fc"+strconv.Itoa(i+1), in, h))
		in = h
	}
	return m
}

func (m *mlp) forward(b *builder, x val) val {
	for i, l := range m.layers {
		x = b.linear(x, l)
		if i < len(m.layers)-1 {
			x = b.dropout(b.act(actReLU, x))
		}
	}
	return x
}

// architecture builds the logits [n, outDim] of a fusion from the two modality inputs.
type architecture interface {
	forward(b *builder, image, text val) val
}

// registry maps a fusion name to the constructor of its architecture (params are created in order).
var registry = map[string]func(s Spec, ps *paramSet) architecture{
	FusionConcat: func(s Spec, ps *paramSet) architecture {
		return &concatArch{mlp: newMLP(ps, "", s.TextDim+s.ImageDim, s.Hidden, s.outDim())}
	},
	FusionLate: func(s Spec, ps *paramSet) architecture {
		return &lateArch{
			text:  newMLP(ps, "text.", s.TextDim, s.Hidden, s.outDim()),
			image: newMLP(ps, "image.", s.ImageDim, s.Hidden, s.outDim()),
		}
	},
	FusionAlign: func(s Spec, ps *paramSet) architecture {
		return &projArch{
			image: ps.linear("proj_image", s.ImageDim, s.ProjDim), text: ps.linear("proj_text", s.TextDim, s.ProjDim),
			mlp: newMLP(ps, "", s.ProjDim, s.Hidden, s.outDim()),
		}
	},
	FusionCross: func(s Spec, ps *paramSet) architecture {
		return &projArch{
			cross: true,
			image: ps.linear("proj_image", s.ImageDim, s.ProjDim), text: ps.linear("proj_text", s.TextDim, s.ProjDim),
			mlp: newMLP(ps, "", s.ProjDim*s.ProjDim, s.Hidden, s.outDim()),
		}
	},
	FusionGMU: func(s Spec, ps *paramSet) architecture {
		return &gmuArch{
			image: ps.linear("gmu.image", s.ImageDim, s.ProjDim), text: ps.linear("gmu.text", s.TextDim, s.ProjDim),
			gate: ps.linear("gmu.gate", s.ImageDim+s.TextDim, s.ProjDim),
			mlp:  newMLP(ps, "", s.ProjDim, s.Hidden, s.outDim()),
		}
	},
	FusionImageOnly: func(s Spec, ps *paramSet) architecture {
		return &singleArch{image: true, mlp: newMLP(ps, "", s.ImageDim, s.Hidden, s.outDim())}
	},
	FusionTextOnly: func(s Spec, ps *paramSet) architecture {
		return &singleArch{mlp: newMLP(ps, "", s.TextDim, s.Hidden, s.outDim())}
	},
}

// concatArch is the study's model: ReLU(t) ⊕ ReLU(v) → MLP.
type concatArch struct{ mlp *mlp }

func (a *concatArch) forward(b *builder, image, text val) val {
	return a.mlp.forward(b, b.concat(true, text, image))
}

// lateArch averages the logits of a text-only and an image-only classifier.
type lateArch struct{ text, image *mlp }

func (a *lateArch) forward(b *builder, image, text val) val {
	return b.mean(a.text.forward(b, text), a.image.forward(b, image))
}

// projArch projects both modalities to ProjDim, L2-normalises them and fuses them by Hadamard product
// (align) or flattened outer product (cross).
type projArch struct {
	cross       bool
	image, text *linearLayer
	mlp         *mlp
}

func (a *projArch) forward(b *builder, image, text val) val {
	pv := b.l2norm(b.linear(image, a.image))
	pt := b.l2norm(b.linear(text, a.text))
	if a.cross {
		return a.mlp.forward(b, b.outer(pv, pt))
	}
	return a.mlp.forward(b, b.mul(pv, pt))
}

// gmuArch is the gated multimodal unit: h = z⊙tanh(W_v v) + (1−z)⊙tanh(W_t t), z = σ(W_z [v; t]).
type gmuArch struct {
	image, text, gate *linearLayer
	mlp               *mlp
}

func (a *gmuArch) forward(b *builder, image, text val) val {
	hv := b.act(actTanh, b.linear(image, a.image))
	ht := b.act(actTanh, b.linear(text, a.text))
	z := b.act(actSigmoid, b.linear(b.concat(false, image, text), a.gate))
	return a.mlp.forward(b, b.gmu(z, hv, ht))
}

// singleArch is the one-modality baseline: the raw embedding → MLP.
type singleArch struct {
	image bool
	mlp   *mlp
}

func (a *singleArch) forward(b *builder, image, text val) val {
	if a.image {
		return a.mlp.forward(b, image)
	}
	return a.mlp.forward(b, text)
}

// val is a node under construction: its width and whether it depends on the data only (then no
// gradient flows into it).
type val struct {
	node *G.Node
	dim  int
	data bool
}
