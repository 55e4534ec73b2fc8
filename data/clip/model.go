package clip

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mami-lab/mami/data/safetensors"
)

// linear is an nn.Linear with its weight packed for gemm.
type linear struct {
	w packedB
	b []float32 // nil: no bias
}

// apply computes dst[rows×out] = (accumulate ? dst : 0) + x·Wᵀ + b.
func (l *linear) apply(dst, x []float32, rows int, accumulate bool, workers int) {
	n := l.w.n
	if !accumulate {
		if l.b == nil {
			clear(dst[:rows*n])
		} else {
			for r := 0; r < rows; r++ {
				copy(dst[r*n:r*n+n], l.b)
			}
		}
	} else if l.b != nil {
		for r := 0; r < rows; r++ {
			row := dst[r*n : r*n+n]
			for i, v := range l.b {
				row[i] += v
			}
		}
	}
	gemm(rows, x, l.w.k, &l.w, dst, n, workers)
}

type block struct {
	ln1w, ln1b, ln2w, ln2b []float32
	qkv, out, fc1, fc2     linear
}

type tower struct {
	cfg    TowerConfig
	layers []block
}

// Model is a CLIPModel in float32. Its methods are safe for concurrent use.
type Model struct {
	cfg Config
	// Workers is the number of goroutines a forward pass uses (0: GOMAXPROCS).
	Workers int

	text               tower
	tokEmb, textPos    []float32
	finalLNw, finalLNb []float32
	textProj           linear
	vision             tower
	patch              linear
	classEmb, visPos   []float32
	preLNw, preLNb     []float32
	postLNw, postLNb   []float32
	visProj            linear
	logitScale         float32
}

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// LogitScale returns exp(logit_scale), the temperature multiplying cosine
// similarities in logits.
func (m *Model) LogitScale() float32 { return m.logitScale }

// Weights is a source of named float32 tensors (a safetensors reader).
type Weights interface {
	Float32(name string) ([]float32, []int, error)
}

// shapedWeights is a weight source that is told the expected shape (random
// weights for benchmarks).
type shapedWeights interface {
	float32Shaped(name string, shape []int) ([]float32, []int, error)
}

// randomWeights fills every tensor from a seeded generator: LayerNorm
// weights 1, biases 0, the rest N(0, 0.02²), logit_scale ln(1/0.07).
type randomWeights struct{ rng *rand.Rand }

func (r randomWeights) Float32(name string) ([]float32, []int, error) {
	return nil, nil, fmt.Errorf("random weights: tensor %s: shape unknown", name)
}

func (r randomWeights) float32Shaped(name string, shape []int) ([]float32, []int, error) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	switch {
	case name == "logit_scale":
		v[0] = 2.6592
	case strings.HasSuffix(name, ".bias"):
	case strings.Contains(name, "norm") && strings.HasSuffix(name, ".weight"):
		for i := range v {
			v[i] = 1
		}
	default:
		for i := range v {
			v[i] = float32(r.rng.NormFloat64() * 0.02)
		}
	}
	return v, shape, nil
}

// NewRandom returns a model of the given configuration with random weights
// drawn from seed (for benchmarks and tests of the plumbing; its embeddings
// mean nothing).
func NewRandom(cfg Config, seed uint64) (*Model, error) {
	return New(cfg, randomWeights{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))})
}

// Load reads config.json and model.safetensors from a CLIPModel directory.
func Load(dir string) (*Model, error) {
	cfg, err := ReadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "model.safetensors")
	r, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load clip model: %w", err)
	}
	m, err := New(*cfg, r)
	if cerr := r.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("load clip model %s: %w", path, err)
	}
	return m, nil
}

// loader reads tensors and checks their shapes, remembering the first error.
type loader struct {
	w   Weights
	err error
}

func (l *loader) get(name string, shape ...int) []float32 {
	if l.err != nil {
		return nil
	}
	var v []float32
	var got []int
	var err error
	if sw, ok := l.w.(shapedWeights); ok {
		v, got, err = sw.float32Shaped(name, shape)
	} else {
		v, got, err = l.w.Float32(name)
	}
	if err != nil {
		l.err = err
		return nil
	}
	if len(shape) == 0 && len(got) == 1 && got[0] == 1 {
		got = nil // a [1] scalar is accepted for rank 0
	}
	if !slices.Equal(got, shape) {
		l.err = fmt.Errorf("tensor %s: shape %v, want %v", name, got, shape)
		return nil
	}
	return v
}

func (l *loader) linear(prefix string, out, in int, bias bool) linear {
	w := l.get(prefix+".weight", out, in)
	var lin linear
	if l.err != nil {
		return lin
	}
	lin.w = packTransposed(w, out, in)
	if bias {
		lin.b = l.get(prefix+".bias", out)
	}
	return lin
}

func (l *loader) tower(prefix string, cfg TowerConfig) tower {
	t := tower{cfg: cfg}
	w, in := cfg.HiddenSize, cfg.IntermediateSize
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		p := fmt.Sprintf("%s.encoder.layers.%d.", prefix, i)
		var b block
		b.ln1w, b.ln1b = l.get(p+"layer_norm1.weight", w), l.get(p+"layer_norm1.bias", w)
		b.ln2w, b.ln2b = l.get(p+"layer_norm2.weight", w), l.get(p+"layer_norm2.bias", w)
		var qkvW, qkvB []float32
		for _, n := range []string{"q_proj", "k_proj", "v_proj"} {
			qkvW = append(qkvW, l.get(p+"self_attn."+n+".weight", w, w)...)
			qkvB = append(qkvB, l.get(p+"self_attn."+n+".bias", w)...)
		}
		if l.err != nil {
			return t
		}
		b.qkv = linear{w: packTransposed(qkvW, 3*w, w), b: qkvB}
		b.out = l.linear(p+"self_attn.out_proj", w, w, true)
		b.fc1 = l.linear(p+"mlp.fc1", in, w, true)
		b.fc2 = l.linear(p+"mlp.fc2", w, in, true)
		t.layers = append(t.layers, b)
	}
	return t
}

// New builds a model of the given configuration from HF CLIPModel tensors.
func New(cfg Config, w Weights) (*Model, error) {
	cfg.fillDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	l := &loader{w: w}
	tc, vc, pd := cfg.Text, cfg.Vision, cfg.ProjectionDim
	m := &Model{cfg: cfg}
	m.tokEmb = l.get("text_model.embeddings.token_embedding.weight", tc.VocabSize, tc.HiddenSize)
	m.textPos = l.get("text_model.embeddings.position_embedding.weight", tc.MaxPositionEmbeddings, tc.HiddenSize)
	m.text = l.tower("text_model", tc)
	m.finalLNw = l.get("text_model.final_layer_norm.weight", tc.HiddenSize)
	m.finalLNb = l.get("text_model.final_layer_norm.bias", tc.HiddenSize)
	m.textProj = l.linear("text_projection", pd, tc.HiddenSize, false)

	p, np := vc.PatchSize, (vc.ImageSize/vc.PatchSize)*(vc.ImageSize/vc.PatchSize)
	patchW := l.get("vision_model.embeddings.patch_embedding.weight", vc.HiddenSize, vc.NumChannels, p, p)
	if l.err == nil {
		m.patch = linear{w: packTransposed(patchW, vc.HiddenSize, vc.NumChannels*p*p)}
	}
	m.classEmb = l.get("vision_model.embeddings.class_embedding", vc.HiddenSize)
	m.visPos = l.get("vision_model.embeddings.position_embedding.weight", np+1, vc.HiddenSize)
	m.preLNw = l.get("vision_model.pre_layrnorm.weight", vc.HiddenSize)
	m.preLNb = l.get("vision_model.pre_layrnorm.bias", vc.HiddenSize)
	m.vision = l.tower("vision_model", vc)
	m.postLNw = l.get("vision_model.post_layernorm.weight", vc.HiddenSize)
	m.postLNb = l.get("vision_model.post_layernorm.bias", vc.HiddenSize)
	m.visProj = l.linear("visual_projection", pd, vc.HiddenSize, false)
	ls := l.get("logit_scale")
	if l.err != nil {
		return nil, l.err
	}
	m.logitScale = float32(math.Exp(float64(ls[0])))
	return m, nil
}

func (m *Model) workers() int {
	if m.Workers > 0 {
		return m.Workers
	}
	return numWorkers()
}

// seqSpan is one sequence's rows within a stacked activation matrix.
type seqSpan struct{ start, n int }

// forward runs the tower's layers in place on x [rows×width].
func (t *tower) forward(x []float32, seqs []seqSpan, causal bool, workers int) {
	w, inter := t.cfg.HiddenSize, t.cfg.IntermediateSize
	rows := len(x) / w
	heads := t.cfg.NumAttentionHeads
	dh := w / heads
	scale := float32(1 / math.Sqrt(float64(dh)))
	eps := float32(t.cfg.LayerNormEps)
	h := make([]float32, rows*w)
	qkv := make([]float32, rows*3*w)
	f := make([]float32, rows*inter)
	act := quickGELU
	if t.cfg.HiddenAct == "gelu" {
		act = gelu
	}
	const minRows = 8
	for li := range t.layers {
		b := &t.layers[li]
		parallelFor(rows, workers, minRows, func(lo, hi int) {
			layerNorm(h[lo*w:hi*w], x[lo*w:hi*w], w, b.ln1w, b.ln1b, eps)
		})
		b.qkv.apply(qkv, h, rows, false, workers)
		parallelFor(len(seqs)*heads, workers, 1, func(lo, hi int) {
			var sc attnScratch
			for job := lo; job < hi; job++ {
				s, hd := seqs[job/heads], job%heads
				attention(qkv[s.start*3*w:], 3*w, s.n, w, hd*dh, dh, causal, scale, h[s.start*w:], w, &sc)
			}
		})
		b.out.apply(x, h, rows, true, workers)
		parallelFor(rows, workers, minRows, func(lo, hi int) {
			layerNorm(h[lo*w:hi*w], x[lo*w:hi*w], w, b.ln2w, b.ln2b, eps)
		})
		b.fc1.apply(f, h, rows, false, workers)
		parallelFor(rows, workers, minRows, func(lo, hi int) { act(f[lo*inter : hi*inter]) })
		b.fc2.apply(x, f, rows, true, workers)
	}
}

// ErrInput is wrapped by errors about malformed model inputs.
var ErrInput = errors.New("clip: bad input")

// EOTIndex returns the pooling position of a token sequence: the first
// occurrence of its largest id (argmax), which is the first end-of-text.
func EOTIndex(ids []int) int {
	best := 0
	for i, id := range ids {
		if id > ids[best] {
			best = i
		}
	}
	return best
}

// EncodeText returns the projected text embeddings (before normalisation)
// of token sequences (padded or not; each is pooled at [EOTIndex]). Only the
// positions up to the end-of-text token are computed: with the causal mask
// the rest cannot change the pooled output.
func (m *Model) EncodeText(ids [][]int) ([][]float32, error) {
	tc := m.cfg.Text
	w := tc.HiddenSize
	seqs := make([]seqSpan, len(ids))
	rows := 0
	for i, seq := range ids {
		if len(seq) == 0 {
			return nil, fmt.Errorf("text %d: empty token sequence: %w", i, ErrInput)
		}
		n := EOTIndex(seq) + 1
		if n > tc.MaxPositionEmbeddings {
			return nil, fmt.Errorf("text %d: end-of-text at position %d beyond the context of %d: %w", i, n-1, tc.MaxPositionEmbeddings, ErrInput)
		}
		for _, id := range seq[:n] {
			if id < 0 || id >= tc.VocabSize {
				return nil, fmt.Errorf("text %d: token id %d outside the vocabulary of %d: %w", i, id, tc.VocabSize, ErrInput)
			}
		}
		seqs[i] = seqSpan{start: rows, n: n}
		rows += n
	}
	x := make([]float32, rows*w)
	for i, s := range seqs {
		for p := 0; p < s.n; p++ {
			row := x[(s.start+p)*w : (s.start+p+1)*w]
			copy(row, m.tokEmb[ids[i][p]*w:(ids[i][p]+1)*w])
			axpy(1, m.textPos[p*w:(p+1)*w], row)
		}
	}
	workers := m.workers()
	m.text.forward(x, seqs, true, workers)
	pooled := make([]float32, len(seqs)*w)
	for i, s := range seqs {
		last := s.start + s.n - 1
		layerNorm(pooled[i*w:(i+1)*w], x[last*w:(last+1)*w], w, m.finalLNw, m.finalLNb, float32(tc.LayerNormEps))
	}
	return m.project(&m.textProj, pooled, len(seqs), workers), nil
}

func (m *Model) project(l *linear, pooled []float32, n, workers int) [][]float32 {
	pd := m.cfg.ProjectionDim
	out := make([]float32, n*pd)
	l.apply(out, pooled, n, false, workers)
	res := make([][]float32, n)
	for i := range res {
		res[i] = out[i*pd : (i+1)*pd : (i+1)*pd]
	}
	return res
}

// PixelSize returns the number of floats of one image input: 3×size×size,
// channel-major (CHW).
func (m *Model) PixelSize() int {
	s := m.cfg.Vision.ImageSize
	return 3 * s * s
}

// EncodeImages returns the projected image embeddings (before
// normalisation) of normalised CHW pixel tensors of [Model.PixelSize] floats.
func (m *Model) EncodeImages(pixels [][]float32) ([][]float32, error) {
	vc := m.cfg.Vision
	w, S, p := vc.HiddenSize, vc.ImageSize, vc.PatchSize
	g := S / p
	np := g * g
	kdim := 3 * p * p
	for i, px := range pixels {
		if len(px) != m.PixelSize() {
			return nil, fmt.Errorf("image %d: %d pixel values, want %d: %w", i, len(px), m.PixelSize(), ErrInput)
		}
	}
	n := len(pixels)
	workers := m.workers()
	patches := make([]float32, n*np*kdim)
	parallelFor(n*np, workers, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			img, pi := r/np, r%np
			py, pxi := pi/g, pi%g
			dst := patches[r*kdim : (r+1)*kdim]
			for c := 0; c < 3; c++ {
				for ky := 0; ky < p; ky++ {
					src := pixels[img][c*S*S+(py*p+ky)*S+pxi*p:]
					copy(dst[c*p*p+ky*p:c*p*p+ky*p+p], src[:p])
				}
			}
		}
	})
	emb := make([]float32, n*np*w)
	m.patch.apply(emb, patches, n*np, false, workers)
	L := np + 1
	x := make([]float32, n*L*w)
	seqs := make([]seqSpan, n)
	for i := 0; i < n; i++ {
		seqs[i] = seqSpan{start: i * L, n: L}
		base := i * L * w
		copy(x[base:base+w], m.classEmb)
		copy(x[base+w:base+L*w], emb[i*np*w:(i+1)*np*w])
		axpy(1, m.visPos[:L*w], x[base:base+L*w])
	}
	eps := float32(vc.LayerNormEps)
	parallelFor(n*L, workers, 8, func(lo, hi int) {
		layerNorm(x[lo*w:hi*w], x[lo*w:hi*w], w, m.preLNw, m.preLNb, eps)
	})
	m.vision.forward(x, seqs, false, workers)
	pooled := make([]float32, n*w)
	for i := 0; i < n; i++ {
		layerNorm(pooled[i*w:(i+1)*w], x[i*L*w:i*L*w+w], w, m.postLNw, m.postLNb, eps)
	}
	return m.project(&m.visProj, pooled, n, workers), nil
}

// Normalize returns v divided by its L2 norm (v itself if the norm is 0).
func Normalize(v []float32) []float32 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if ss == 0 {
		copy(out, v)
		return out
	}
	inv := 1 / math.Sqrt(ss)
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out
}

// Logits returns logits_per_image[i][j] = exp(logit_scale)·cos(image_i, text_j).
func (m *Model) Logits(imageEmbeds, textEmbeds [][]float32) [][]float32 {
	texts := make([][]float32, len(textEmbeds))
	for j, t := range textEmbeds {
		texts[j] = Normalize(t)
	}
	out := make([][]float32, len(imageEmbeds))
	for i, im := range imageEmbeds {
		in := Normalize(im)
		out[i] = make([]float32, len(texts))
		for j, t := range texts {
			out[i][j] = m.logitScale * dot(in, t)
		}
	}
	return out
}
