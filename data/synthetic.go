package data

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// SyntheticName is the dataset name of the generated default dataset.
const SyntheticName = "synthetic-mami"

// SyntheticParams fixes every constant of the generated dataset. The
// structure is described in docs/format/synthetic.md; [DefaultSynthetic] is
// the calibrated value behind [Synthetic].
//
// Each embedding (image and text alike) is the normalisation of
//
//	MeanWeight·mean + TopicWeight·topic[k] + NoiseWeight·g
//	  + route signal ± ImageSignal·u (or TextSignal·u') + InteractionWeight·P·z
//	  + TypeWeight·(Sub-task B directions)
//
// where g is isotropic Gaussian noise of unit expected norm, k the meme's
// topic (shared by its image and text) and z a unit vector in a
// rank-InteractionRank subspace P shared by both modalities.
type SyntheticParams struct {
	Seed          uint64 `json:"seed"`           // fixes directions, labels and noise
	Train         int    `json:"train"`          // training memes
	TrainPositive int    `json:"train_positive"` // misogynous training memes
	Test          int    `json:"test"`           // official test memes
	TestPositive  int    `json:"test_positive"`  // misogynous official test memes
	Dim           int    `json:"dim"`            // embedding size per modality

	MeanWeight      float64 `json:"mean_weight"`       // weight of the shared mean direction (anisotropy)
	ModalityMeanCos float64 `json:"modality_mean_cos"` // cosine between the image and the text mean directions
	Topics          int     `json:"topics"`            // topic clusters shared by a meme's image and text
	TopicWeight     float64 `json:"topic_weight"`      // weight of the topic direction
	NoiseWeight     float64 `json:"noise_weight"`      // weight of the isotropic per-meme noise

	// Route fractions, within each class: where the label shows. The rest
	// (1 − their sum) carries no label signal at all.
	ImageRoute       float64 `json:"image_route"`       // only in the image
	TextRoute        float64 `json:"text_route"`        // only in the text
	BothRoute        float64 `json:"both_route"`        // in the image and in the text
	InteractionRoute float64 `json:"interaction_route"` // only in how image and text combine

	ImageSignal       float64 `json:"image_signal"`       // ± weight along the image label direction
	TextSignal        float64 `json:"text_signal"`        // ± weight along the text label direction
	SignalSpread      float64 `json:"signal_spread"`      // per-meme signal factor uniform in [1−s, 1+s]
	InteractionRank   int     `json:"interaction_rank"`   // rank of the shared interaction subspace
	InteractionWeight float64 `json:"interaction_weight"` // weight of the interaction component

	// Sub-task B: rates among ALL memes, and how strongly each type shows in
	// the image and in the text of a truly misogynous meme (order: shaming,
	// stereotype, objectification, violence).
	TypeRates  [4]float64 `json:"type_rates"`
	TypeWeight float64    `json:"type_weight"`
	TypeImage  [4]float64 `json:"type_image"`
	TypeText   [4]float64 `json:"type_text"`

	LabelNoise float64 `json:"label_noise"` // fraction of each class whose observed label is flipped
}

// DefaultSynthetic is the calibrated parameter set of [Synthetic]; see
// docs/format/synthetic.md for how it was calibrated against the study.
var DefaultSynthetic = SyntheticParams{
	Seed:          20220705,
	Train:         10000,
	TrainPositive: 5000,
	Test:          1000,
	TestPositive:  500,
	Dim:           512,

	MeanWeight:      0.8,
	ModalityMeanCos: 0.2,
	Topics:          16,
	TopicWeight:     0.35,
	NoiseWeight:     0.45,

	ImageRoute:       0.25,
	TextRoute:        0.30,
	BothRoute:        0.15,
	InteractionRoute: 0.20,

	ImageSignal:       0.035,
	TextSignal:        0.035,
	SignalSpread:      0.5,
	InteractionRank:   32,
	InteractionWeight: 0.3,

	TypeRates:  [4]float64{0.13, 0.28, 0.22, 0.10},
	TypeWeight: 0.08,
	TypeImage:  [4]float64{0.5, 0.3, 1, 1},
	TypeText:   [4]float64{1, 1, 0.5, 1},

	LabelNoise: 0.18,
}

// Synthetic returns the default synthetic dataset: 10,000 training memes
// (5,000 misogynous) and 1,000 official test memes (500 misogynous),
// generated deterministically from [DefaultSynthetic]. The dataset is
// generated once per process; every call returns fresh copies that the
// caller may modify.
func Synthetic() (train, official *Set) {
	t, o := defaultSynthetic()
	return t.clone(), o.clone()
}

var defaultSynthetic = sync.OnceValues(func() (*Set, *Set) {
	train, official, err := GenerateSynthetic(DefaultSynthetic)
	if err != nil { // DefaultSynthetic is valid; TestDefaultSyntheticValid checks it.
		panic("data: DefaultSynthetic invalid: " + err.Error())
	}
	return train, official
})

// Validate reports the first parameter that cannot generate a dataset.
func (p SyntheticParams) Validate() error {
	routes := p.ImageRoute + p.TextRoute + p.BothRoute + p.InteractionRoute
	var rates float64
	for _, r := range p.TypeRates {
		rates += r
	}
	switch {
	case p.Train <= 0 || p.Test <= 0:
		return fmt.Errorf("synthetic: train %d and test %d must be positive", p.Train, p.Test)
	case p.TrainPositive < 0 || p.TrainPositive > p.Train || p.TestPositive < 0 || p.TestPositive > p.Test:
		return fmt.Errorf("synthetic: positive counts %d/%d, %d/%d out of range", p.TrainPositive, p.Train, p.TestPositive, p.Test)
	case p.Dim < p.Topics+p.InteractionRank+12:
		return fmt.Errorf("synthetic: dim %d too small for %d topics and rank %d", p.Dim, p.Topics, p.InteractionRank)
	case p.Topics <= 0 || p.InteractionRank <= 0:
		return fmt.Errorf("synthetic: topics %d and interaction_rank %d must be positive", p.Topics, p.InteractionRank)
	case math.Abs(p.ModalityMeanCos) > 1:
		return fmt.Errorf("synthetic: modality_mean_cos %g outside [-1, 1]", p.ModalityMeanCos)
	case p.ImageRoute < 0 || p.TextRoute < 0 || p.BothRoute < 0 || p.InteractionRoute < 0 || routes > 1+1e-9:
		return fmt.Errorf("synthetic: route fractions must be ≥ 0 and sum to ≤ 1, got sum %g", routes)
	case p.SignalSpread < 0 || p.SignalSpread > 1:
		return fmt.Errorf("synthetic: signal_spread %g outside [0, 1]", p.SignalSpread)
	case p.LabelNoise < 0 || p.LabelNoise > 0.5:
		return fmt.Errorf("synthetic: label_noise %g outside [0, 0.5]", p.LabelNoise)
	}
	for j, r := range p.TypeRates {
		if r < 0 || int(math.Round(r*float64(p.Train))) > p.TrainPositive || int(math.Round(r*float64(p.Test))) > p.TestPositive {
			return fmt.Errorf("synthetic: type_rates[%d] %g needs more misogynous memes than exist", j, r)
		}
	}
	if p.TrainPositive > 0 && rates > 0 && p.TestPositive == 0 {
		return fmt.Errorf("synthetic: type rates need misogynous test memes")
	}
	return nil
}

// Streams of the generator (the second argument of newStream).
const (
	streamBasis = iota
	streamLabels
	streamMeme
	streamText
)

// Routes a meme's label signal can take.
const (
	routeNone = iota
	routeImage
	routeText
	routeBoth
	routeInteraction
)

// basis holds the fixed directions of the generator.
type basis struct {
	meanI, meanT []float64
	topics       [][]float64 // shared by both modalities
	labelI       []float64
	labelT       []float64
	inter        [][]float64 // shared interaction subspace
	typeI, typeT [4][]float64
}

func newBasis(p SyntheticParams) *basis {
	r := newStream(p.Seed, streamBasis, 0)
	n := 2 + p.Topics + 2 + p.InteractionRank + 8
	vs := make([][]float64, 0, n)
	for len(vs) < n { // Gram–Schmidt on Gaussian vectors: an orthonormal set
		v := make([]float64, p.Dim)
		for i := range v {
			v[i] = r.norm()
		}
		for _, u := range vs {
			axpy(v, -dot(v, u), u)
		}
		if s := math.Sqrt(dot(v, v)); s > 1e-6 {
			scale(v, 1/s)
			vs = append(vs, v)
		}
	}
	b := &basis{meanI: vs[0]}
	b.meanT = make([]float64, p.Dim)
	axpy(b.meanT, p.ModalityMeanCos, vs[0])
	axpy(b.meanT, math.Sqrt(1-p.ModalityMeanCos*p.ModalityMeanCos), vs[1])
	vs = vs[2:]
	b.topics, vs = vs[:p.Topics], vs[p.Topics:]
	b.labelI, b.labelT, vs = vs[0], vs[1], vs[2:]
	b.inter, vs = vs[:p.InteractionRank], vs[p.InteractionRank:]
	for j := range 4 {
		b.typeI[j], b.typeT[j] = vs[2*j], vs[2*j+1]
	}
	return b
}

// synthMeme is the latent description of one generated meme.
type synthMeme struct {
	trueLabel int // label the embeddings were generated from
	label     int // observed label (after label noise)
	route     int
	topic     int // index into the topic directions (and topicWords)
	types     [4]int
}

// GenerateSynthetic generates the training and official test sets of p.
func GenerateSynthetic(p SyntheticParams) (train, official *Set, err error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	b := newBasis(p)
	train = p.generate(b, 0, p.Train, p.TrainPositive, 0)
	official = p.generate(b, 1, p.Test, p.TestPositive, p.Train)
	return train, official, nil
}

// latent draws labels, routes, label noise and Sub-task B types of one split
// with exact counts.
func (p SyntheticParams) latent(split uint64, n, npos int) []synthMeme {
	r := newStream(p.Seed, streamLabels, split)
	ms := make([]synthMeme, n)
	for i, j := range r.perm(n) {
		if j < npos {
			ms[i].trueLabel = 1
		}
	}
	fracs := []float64{p.ImageRoute, p.TextRoute, p.BothRoute, p.InteractionRoute}
	var pos, neg []int
	for i := range ms {
		if ms[i].trueLabel == 1 {
			pos = append(pos, i)
		} else {
			neg = append(neg, i)
		}
	}
	for _, class := range [][]int{pos, neg} {
		order := r.perm(len(class))
		cum, lo := 0.0, 0
		for k, f := range fracs {
			cum += f
			hi := int(math.Round(cum * float64(len(class))))
			for _, o := range order[lo:hi] {
				ms[class[o]].route = routeImage + k
			}
			lo = hi
		}
	}
	for i := range ms {
		ms[i].topic = r.intn(p.Topics)
	}
	// Label noise: flip the same number in each class so counts stay exact.
	flips := int(math.Round(p.LabelNoise * float64(min(len(pos), len(neg)))))
	for i := range ms {
		ms[i].label = ms[i].trueLabel
	}
	for _, class := range [][]int{pos, neg} {
		for _, o := range r.perm(len(class))[:flips] {
			ms[class[o]].label = 1 - ms[class[o]].label
		}
	}
	// Sub-task B types on observed misogynous memes: every one gets a primary
	// type (blocks proportional to the type counts), then each type is topped
	// up to its exact count from memes that lack it.
	var obs []int
	for i := range ms {
		if ms[i].label == 1 {
			obs = append(obs, i)
		}
	}
	var counts [4]int
	total := 0
	for j, rate := range p.TypeRates {
		counts[j] = int(math.Round(rate * float64(n)))
		total += counts[j]
	}
	if total == 0 || len(obs) == 0 {
		return ms
	}
	order := r.perm(len(obs))
	cum, lo := 0, 0
	var have [4]int
	for j := range 4 {
		cum += counts[j]
		hi := min(int(math.Round(float64(cum)/float64(total)*float64(len(obs)))), lo+counts[j])
		if j == 3 && total >= len(obs) {
			hi = len(obs)
		}
		for _, o := range order[lo:hi] {
			ms[obs[o]].types[j] = 1
		}
		have[j] = hi - lo
		lo = hi
	}
	for j := range 4 {
		for _, o := range r.perm(len(obs)) {
			if have[j] >= counts[j] {
				break
			}
			if m := &ms[obs[o]]; m.types[j] == 0 {
				m.types[j] = 1
				have[j]++
			}
		}
	}
	return ms
}

func (p SyntheticParams) generate(b *basis, split uint64, n, npos, offset int) *Set {
	ms := p.latent(split, n, npos)
	s := &Set{Memes: make([]Meme, n), Dim: p.Dim, Image: make([]float32, n*p.Dim), Text: make([]float32, n*p.Dim)}
	workers := min(runtime.GOMAXPROCS(0), 8)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			img := make([]float64, p.Dim)
			txt := make([]float64, p.Dim)
			for i := w; i < n; i += workers {
				p.meme(b, ms[i], uint64(offset+i), img, txt)
				for d := range p.Dim {
					s.Image[i*p.Dim+d] = float32(img[d])
					s.Text[i*p.Dim+d] = float32(txt[d])
				}
				m := &s.Memes[i]
				m.FileName = fmt.Sprintf("%05d.jpg", offset+i+1)
				m.Misogynous = ms[i].label
				m.Shaming, m.Stereotype, m.Objectification, m.Violence = ms[i].types[0], ms[i].types[1], ms[i].types[2], ms[i].types[3]
				m.Text = transcription(newStream(p.Seed, streamText, uint64(offset+i)), ms[i])
			}
		})
	}
	wg.Wait()
	return s
}

// meme writes the normalised image and text embeddings of one meme.
func (p SyntheticParams) meme(b *basis, m synthMeme, id uint64, img, txt []float64) {
	r := newStream(p.Seed, streamMeme, id)
	noise := p.NoiseWeight / math.Sqrt(float64(p.Dim))
	for d := range img {
		img[d] = noise * r.norm()
		txt[d] = noise * r.norm()
	}
	axpy(img, p.MeanWeight, b.meanI)
	axpy(txt, p.MeanWeight, b.meanT)
	topic := b.topics[m.topic]
	axpy(img, p.TopicWeight, topic)
	axpy(txt, p.TopicWeight, topic)

	sign := float64(2*m.trueLabel - 1)
	strength := 1 + p.SignalSpread*(2*r.float()-1)
	if m.route == routeImage || m.route == routeBoth {
		axpy(img, sign*strength*p.ImageSignal, b.labelI)
	}
	if m.route == routeText || m.route == routeBoth {
		axpy(txt, sign*strength*p.TextSignal, b.labelT)
	}
	// Interaction: image and text each point along a random unit vector of
	// the shared subspace; for interaction memes the text's vector is the
	// image's (misogynous) or its opposite (benign confounder).
	zi := unitVec(r, p.InteractionRank)
	zt := unitVec(r, p.InteractionRank)
	if m.route == routeInteraction {
		for k := range zt {
			zt[k] = sign * zi[k]
		}
	}
	addCombination(img, p.InteractionWeight, zi, b.inter)
	addCombination(txt, p.InteractionWeight, zt, b.inter)
	if m.trueLabel == 1 {
		for j, t := range m.types {
			if t == 1 {
				axpy(img, p.TypeWeight*p.TypeImage[j], b.typeI[j])
				axpy(txt, p.TypeWeight*p.TypeText[j], b.typeT[j])
			}
		}
	}
	scale(img, 1/math.Sqrt(dot(img, img)))
	scale(txt, 1/math.Sqrt(dot(txt, txt)))
}

func unitVec(r *splitmix, n int) []float64 {
	v := make([]float64, n)
	for {
		for i := range v {
			v[i] = r.norm()
		}
		if s := math.Sqrt(dot(v, v)); s > 1e-9 {
			scale(v, 1/s)
			return v
		}
	}
}

func dot(a, b []float64) float64 {
	var s float64
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

func axpy(y []float64, a float64, x []float64) {
	for i, v := range x {
		y[i] += a * v
	}
}

// addCombination adds w·Σ_k c[k]·dirs[k] to y, four directions per pass
// over y. The additions happen in the same order as successive axpy calls,
// so the result is bit-identical to them, only faster.
func addCombination(y []float64, w float64, c []float64, dirs [][]float64) {
	k := 0
	for ; k+4 <= len(dirs); k += 4 {
		a0, a1, a2, a3 := w*c[k], w*c[k+1], w*c[k+2], w*c[k+3]
		x0, x1, x2, x3 := dirs[k][:len(y)], dirs[k+1][:len(y)], dirs[k+2][:len(y)], dirs[k+3][:len(y)]
		for i := range y {
			y[i] = y[i] + a0*x0[i] + a1*x1[i] + a2*x2[i] + a3*x3[i]
		}
	}
	for ; k < len(dirs); k++ {
		axpy(y, w*c[k], dirs[k])
	}
}

func scale(v []float64, a float64) {
	for i := range v {
		v[i] *= a
	}
}
