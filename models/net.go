package models

import (
	"fmt"
	"math/rand/v2"

	_ "go4.org/unsafe/assume-no-moving-gc" // Gorgonia's unsafe code panics on new Go versions without it
)

// Batch is a batch of N memes: row-major embeddings (N×ImageDim, N×TextDim) and labels (0 or 1).
type Batch struct {
	N      int
	Image  []float32
	Text   []float32
	Labels []float32
}

// maxEvalRows is the largest batch Predict runs through one graph; larger batches are cut into chunks.
const maxEvalRows = 512

// RNG streams derived from the seed.
const (
	streamInit    = 0x6d616d69696e6974 // "mamiinit"
	streamDropout = 0x6d616d6964726f70 // "mamidrop"
)

// Net is a compiled model. Graphs are built lazily, one per (mode, batch size), and reused.
type Net struct {
	spec    Spec
	params  []*Param
	arch    architecture
	run     *runState
	maskRNG *rand.Rand
	train   map[int]*program
	eval    map[int]*program
}

// New builds the model described by spec, initialised deterministically from seed (which also seeds
// the dropout masks).
func New(spec Spec, seed int64) (*Net, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	ps := &paramSet{rng: rand.New(rand.NewPCG(uint64(seed), streamInit))}
	ctor := registry[spec.Fusion]
	net := &Net{
		spec:    spec,
		arch:    ctor(spec, ps),
		params:  ps.params,
		run:     &runState{scale: 1},
		maskRNG: rand.New(rand.NewPCG(uint64(seed), streamDropout)),
		train:   map[int]*program{},
		eval:    map[int]*program{},
	}
	// Build the graphs once now so that a spec Gorgonia cannot compile fails here, not mid-training.
	if _, err := net.program(true, 2); err != nil {
		return nil, fmt.Errorf("models: build %s/%s: %w", spec.Fusion, spec.Head, err)
	}
	if _, err := net.program(false, 2); err != nil {
		return nil, fmt.Errorf("models: build %s/%s: %w", spec.Fusion, spec.Head, err)
	}
	return net, nil
}

// Spec returns the spec the net was built from.
func (net *Net) Spec() Spec { return net.spec }

// Params returns the learnable tensors in a stable order with stable names ("fc1.weight", ...).
func (net *Net) Params() []*Param { return net.params }

// NumParams returns the number of learnable scalars.
func (net *Net) NumParams() int {
	total := 0
	for _, p := range net.params {
		total += len(p.Value)
	}
	return total
}

func (net *Net) program(train bool, n int) (*program, error) {
	cache := net.eval
	if train {
		cache = net.train
	}
	if p, ok := cache[n]; ok {
		return p, nil
	}
	p, err := net.build(train, n)
	if err != nil {
		return nil, err
	}
	cache[n] = p
	return p, nil
}

func (net *Net) checkBatch(b Batch) error {
	s := net.spec
	switch {
	case b.N <= 0:
		return fmt.Errorf("models: batch N = %d: must be positive", b.N)
	case len(b.Image) != b.N*s.ImageDim:
		return fmt.Errorf("models: batch image has %d values, want N×dim = %d×%d", len(b.Image), b.N, s.ImageDim)
	case len(b.Text) != b.N*s.TextDim:
		return fmt.Errorf("models: batch text has %d values, want N×dim = %d×%d", len(b.Text), b.N, s.TextDim)
	case len(b.Labels) != b.N:
		return fmt.Errorf("models: batch has %d labels, want N = %d", len(b.Labels), b.N)
	}
	for i, y := range b.Labels {
		if y != 0 && y != 1 {
			return fmt.Errorf("models: batch label %d = %v: must be 0 or 1", i, y)
		}
	}
	return nil
}

// Grad runs a training step's forward and backward pass (dropout on) on b and returns the mean loss
// over the batch. It writes scale·∂loss/∂param into every Param.Grad, adding to what is there when
// accumulate is true.
func (net *Net) Grad(b Batch, scale float32, accumulate bool) (loss float64, err error) {
	if err := net.checkBatch(b); err != nil {
		return 0, err
	}
	prog, err := net.program(true, b.N)
	if err != nil {
		return 0, fmt.Errorf("models: build training graph for batch %d: %w", b.N, err)
	}
	net.run.scale, net.run.accumulate = scale, accumulate
	if err := prog.exec(b, net.maskRNG); err != nil {
		return 0, fmt.Errorf("models: training step: %w", err)
	}
	return prog.loss.last, nil
}

// Predict runs the model in eval mode (no dropout) and returns P(misogynous) per sample and the head's
// mean loss on b's labels.
func (net *Net) Predict(b Batch) (prob []float32, loss float64, err error) {
	if err := net.checkBatch(b); err != nil {
		return nil, 0, err
	}
	s := net.spec
	prob = make([]float32, b.N)
	var sum float64
	for lo := 0; lo < b.N; lo += maxEvalRows {
		hi := min(lo+maxEvalRows, b.N)
		chunk := Batch{
			N:      hi - lo,
			Image:  b.Image[lo*s.ImageDim : hi*s.ImageDim],
			Text:   b.Text[lo*s.TextDim : hi*s.TextDim],
			Labels: b.Labels[lo:hi],
		}
		prog, err := net.program(false, chunk.N)
		if err != nil {
			return nil, 0, fmt.Errorf("models: build eval graph for batch %d: %w", chunk.N, err)
		}
		if err := prog.exec(chunk, nil); err != nil {
			return nil, 0, fmt.Errorf("models: predict: %w", err)
		}
		copy(prob[lo:hi], prog.prob.buf)
		sum += prog.loss.last * float64(chunk.N)
	}
	return prob, sum / float64(b.N), nil
}
