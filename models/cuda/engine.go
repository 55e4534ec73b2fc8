package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/mami-lab/mami/models"
)

// mem is a backend allocation (an index into the backend's own table).
type mem int

// backend runs steps on some memory: the CUDA driver (device_cuda.go) or the Go reference (ref.go).
// Offsets and lengths are in 4-byte elements.
type backend interface {
	alloc(elems int) (mem, error)
	free(m mem) error
	write(m mem, off int, src []float32) error
	writeInt32(m mem, off int, src []int32) error
	read(m mem, off int, dst []float32) error
	readF64(m mem, off int) (float64, error)
	zero(m mem, off, n int) error
	// run launches s with its arenas at bases[arenaState], bases[arenaPlan], bases[arenaData].
	run(s *step, bases *[3]mem, scale float32, accumulate bool) error
	close() error
}

// RNG stream of models' dropout masks (models.Net seeds its mask RNG the same way, so both backends
// draw the same masks from the same seed).
const streamDropout = 0x6d616d6964726f70 // "mamidrop"

// fillMask draws a dropout mask exactly like models (two 32-bit draws per Uint64, kept entries 1/(1−p)).
func fillMask(rng *rand.Rand, buf []float32, p float64) {
	thr := uint32(p * (1 << 32))
	keep := float32(1 / (1 - p))
	pick := func(u uint32) float32 {
		if u >= thr {
			return keep
		}
		return 0
	}
	i := 0
	for ; i+1 < len(buf); i += 2 {
		u := rng.Uint64()
		buf[i], buf[i+1] = pick(uint32(u)), pick(uint32(u>>32))
	}
	if i < len(buf) {
		buf[i] = pick(uint32(rng.Uint64()))
	}
}

// engine is a model on a backend: the flat params, grads and optimizer state stay in the backend's
// memory; Grad/Predict copy a batch in and a loss (or probabilities) out.
type engine struct {
	be       backend
	l        *layout
	a        *arch
	st       *state
	stMem    mem
	plans    map[planKey]*planMem
	maskRNG  *rand.Rand
	maskBuf  []float32
	set      *deviceSetLayout
	setMem   mem
	hasSet   bool
	host     []*models.Param // host copies, filled by syncParams
	adamT    int
	idxBuf   []int32
	optimize optimizer
	// hostMasks draws dropout masks on the host from models' RNG stream (bit-identical with models.Net);
	// otherwise mami_mask draws them on the backend from seed and a per-mask stream number.
	hostMasks  bool
	seed       int64
	maskStream int
}

type planKey struct {
	train bool
	n     int
}

type planMem struct {
	p *plan
	m mem
}

// newEngine builds spec on be with the initial weights models.New(spec, seed) draws.
func newEngine(be backend, spec models.Spec, seed int64) (*engine, error) {
	l, a, err := newLayout(spec)
	if err != nil {
		return nil, err
	}
	cpu, err := models.New(spec, seed)
	if err != nil {
		return nil, err
	}
	if err := checkLayout(l, cpu.Params()); err != nil {
		return nil, err
	}
	e := &engine{be: be, l: l, a: a, st: newState(l), plans: map[planKey]*planMem{},
		maskRNG: rand.New(rand.NewPCG(uint64(seed), streamDropout)), host: cpu.Params(), seed: seed}
	if e.stMem, err = be.alloc(e.st.mem.size); err != nil {
		return nil, fmt.Errorf("cuda: allocate model state (%d floats): %w", e.st.mem.size, err)
	}
	if err := be.zero(e.stMem, 0, e.st.mem.size); err != nil {
		return nil, err
	}
	if err := e.loadParams(e.host); err != nil {
		return nil, err
	}
	return e, nil
}

// checkLayout verifies that the GPU layout has models' params, in models' order and shapes.
func checkLayout(l *layout, params []*models.Param) error {
	if len(params) != len(l.params) {
		return fmt.Errorf("cuda: %s has %d params in models, %d in the GPU plan", l.spec.Fusion, len(params), len(l.params))
	}
	for i, p := range params {
		if p.Name != l.params[i].name || !slices.Equal(p.Shape, l.params[i].shape) {
			return fmt.Errorf("cuda: param %d is %s%v in models, %s%v in the GPU plan", i, p.Name, p.Shape, l.params[i].name, l.params[i].shape)
		}
	}
	return nil
}

// loadParams copies params (in models' order) into the backend.
func (e *engine) loadParams(params []*models.Param) error {
	if err := checkLayout(e.l, params); err != nil {
		return err
	}
	for i, p := range params {
		if err := e.be.write(e.stMem, e.st.params.off+e.l.params[i].off, p.Value); err != nil {
			return fmt.Errorf("cuda: upload %s: %w", p.Name, err)
		}
	}
	return nil
}

// syncParams copies the params and grads back into the host copies and returns them.
func (e *engine) syncParams() ([]*models.Param, error) {
	for i, p := range e.host {
		off := e.l.params[i].off
		if err := e.be.read(e.stMem, e.st.params.off+off, p.Value); err != nil {
			return nil, err
		}
		if err := e.be.read(e.stMem, e.st.grads.off+off, p.Grad); err != nil {
			return nil, err
		}
	}
	return e.host, nil
}

func (e *engine) plan(train bool, n int) (*planMem, error) {
	k := planKey{train, n}
	if pm, ok := e.plans[k]; ok {
		return pm, nil
	}
	p, err := newPlan(e.l, e.a, e.st, n, train)
	if err != nil {
		return nil, err
	}
	m, err := e.be.alloc(p.mem.size)
	if err != nil {
		return nil, fmt.Errorf("cuda: allocate pass of batch %d (%d floats): %w", n, p.mem.size, err)
	}
	pm := &planMem{p: p, m: m}
	e.plans[k] = pm
	return pm, nil
}

func (e *engine) bases(pm *planMem) *[3]mem { return &[3]mem{e.stMem, pm.m, e.setMem} }

// exec fills the masks (training) and runs the pass, returning its mean loss.
func (e *engine) exec(pm *planMem, pre []step, scale float32, accumulate bool) (float64, error) {
	p := pm.p
	bases := e.bases(pm)
	for _, m := range p.masks {
		if !e.hostMasks {
			s := p.maskStep(m, e.seed, e.maskStream, e.l.spec.Dropout)
			e.maskStream++
			if err := e.be.run(&s, bases, 1, false); err != nil {
				return 0, fmt.Errorf("cuda: %s: %w", s.kind, err)
			}
			continue
		}
		e.maskBuf = slices.Grow(e.maskBuf[:0], m.n)[:m.n]
		fillMask(e.maskRNG, e.maskBuf, e.l.spec.Dropout)
		if err := e.be.write(pm.m, m.off, e.maskBuf); err != nil {
			return 0, err
		}
	}
	for _, steps := range [][]step{pre, p.steps} {
		for i := range steps {
			if err := e.be.run(&steps[i], bases, scale, accumulate); err != nil {
				return 0, fmt.Errorf("cuda: %s: %w", steps[i].kind, err)
			}
		}
	}
	sum, err := e.be.readF64(e.stMem, e.st.lossSum.off)
	if err != nil {
		return 0, err
	}
	return sum / float64(p.n), nil
}

func (e *engine) checkBatch(b models.Batch) error {
	s := e.l.spec
	switch {
	case b.N <= 0:
		return fmt.Errorf("cuda: batch N = %d: must be positive", b.N)
	case len(b.Image) != b.N*s.ImageDim || len(b.Text) != b.N*s.TextDim || len(b.Labels) != b.N:
		return fmt.Errorf("cuda: batch of %d has %d image, %d text values and %d labels; want N×%d, N×%d, N",
			b.N, len(b.Image), len(b.Text), len(b.Labels), s.ImageDim, s.TextDim)
	}
	for i, y := range b.Labels {
		if y != 0 && y != 1 {
			return fmt.Errorf("cuda: batch label %d = %v: must be 0 or 1", i, y)
		}
	}
	return nil
}

func (e *engine) upload(pm *planMem, b models.Batch) error {
	p := pm.p
	for _, c := range []struct {
		at  bufRef
		src []float32
	}{{p.image, b.Image}, {p.text, b.Text}, {p.labels, b.Labels}} {
		if err := e.be.write(pm.m, c.at.off, c.src); err != nil {
			return fmt.Errorf("cuda: upload batch: %w", err)
		}
	}
	return nil
}

// grad is models.Net.Grad on the backend.
func (e *engine) grad(b models.Batch, scale float32, accumulate bool) (float64, error) {
	if err := e.checkBatch(b); err != nil {
		return 0, err
	}
	pm, err := e.plan(true, b.N)
	if err != nil {
		return 0, err
	}
	if err := e.upload(pm, b); err != nil {
		return 0, err
	}
	return e.exec(pm, nil, scale, accumulate)
}

// setData uploads a data set once, for gradRows.
func (e *engine) setData(image, text, labels []float32) error {
	s := e.l.spec
	rows := len(labels)
	if rows == 0 || len(image) != rows*s.ImageDim || len(text) != rows*s.TextDim {
		return fmt.Errorf("cuda: data set of %d labels has %d image and %d text values; want rows×%d and rows×%d",
			rows, len(image), len(text), s.ImageDim, s.TextDim)
	}
	if e.hasSet {
		if err := e.be.free(e.setMem); err != nil {
			return err
		}
		e.hasSet = false
	}
	ds := newDeviceSetLayout(rows, s.ImageDim, s.TextDim)
	m, err := e.be.alloc(ds.mem.size)
	if err != nil {
		return fmt.Errorf("cuda: allocate data set (%d floats): %w", ds.mem.size, err)
	}
	for _, c := range []struct {
		at  bufRef
		src []float32
	}{{ds.image, image}, {ds.text, text}, {ds.labels, labels}} {
		if err := e.be.write(m, c.at.off, c.src); err != nil {
			return fmt.Errorf("cuda: upload data set: %w", err)
		}
	}
	e.set, e.setMem, e.hasSet = ds, m, true
	return nil
}

// gradRows is grad on rows idx of the uploaded data set (only the indices travel).
func (e *engine) gradRows(idx []int, scale float32, accumulate bool) (float64, error) {
	if !e.hasSet {
		return 0, fmt.Errorf("cuda: no data set uploaded")
	}
	if len(idx) == 0 {
		return 0, fmt.Errorf("cuda: empty batch")
	}
	pm, err := e.plan(true, len(idx))
	if err != nil {
		return 0, err
	}
	e.idxBuf = e.idxBuf[:0]
	for _, r := range idx {
		if r < 0 || r >= e.set.rows {
			return 0, fmt.Errorf("cuda: batch row %d outside the data set's %d rows", r, e.set.rows)
		}
		e.idxBuf = append(e.idxBuf, int32(r))
	}
	if err := e.be.writeInt32(pm.m, pm.p.idx.off, e.idxBuf); err != nil {
		return 0, err
	}
	return e.exec(pm, pm.p.gatherSteps(e.set), scale, accumulate)
}

// maxEvalRows matches models: Predict runs at most this many rows per pass.
const maxEvalRows = 512

// predict is models.Net.Predict on the backend.
func (e *engine) predict(b models.Batch) ([]float32, float64, error) {
	if err := e.checkBatch(b); err != nil {
		return nil, 0, err
	}
	s := e.l.spec
	prob := make([]float32, b.N)
	var sum float64
	for lo := 0; lo < b.N; lo += maxEvalRows {
		hi := min(lo+maxEvalRows, b.N)
		chunk := models.Batch{N: hi - lo, Image: b.Image[lo*s.ImageDim : hi*s.ImageDim], Text: b.Text[lo*s.TextDim : hi*s.TextDim], Labels: b.Labels[lo:hi]}
		pm, err := e.plan(false, chunk.N)
		if err != nil {
			return nil, 0, err
		}
		if err := e.upload(pm, chunk); err != nil {
			return nil, 0, err
		}
		loss, err := e.exec(pm, nil, 1, false)
		if err != nil {
			return nil, 0, err
		}
		if err := e.be.read(pm.m, pm.p.prob.off, prob[lo:hi]); err != nil {
			return nil, 0, err
		}
		sum += loss * float64(chunk.N)
	}
	return prob, sum / float64(b.N), nil
}

// clipGradNorm is models.ClipGradNorm over the backend's grads; it returns the norm before clipping.
func (e *engine) clipGradNorm(maxNorm float64) (float64, error) {
	n := e.l.total
	if err := e.be.zero(e.stMem, e.st.sumsq.off, 2); err != nil {
		return 0, err
	}
	bases := &[3]mem{e.stMem, e.stMem, e.setMem}
	s := step{kind: opSumsq, i: []int{n}, b: []bufRef{e.st.grads, e.st.sumsq}}
	if err := e.be.run(&s, bases, 1, false); err != nil {
		return 0, err
	}
	if maxNorm > 0 {
		c := step{kind: opClip, i: []int{n}, b: []bufRef{e.st.grads, e.st.sumsq}, f: []float32{float32(maxNorm)}}
		if err := e.be.run(&c, bases, 1, false); err != nil {
			return 0, err
		}
	}
	ss, err := e.be.readF64(e.stMem, e.st.sumsq.off)
	if err != nil {
		return 0, err
	}
	return math.Sqrt(ss), nil
}

// optimizer is the update rule of step: models' names and hyper-parameters.
type optimizer struct {
	name                  string
	beta1, beta2, eps, wd float64
}

// newOptimizer validates like models.NewOptimizer.
func newOptimizer(name string, beta1, beta2, eps, wd float64) (optimizer, error) {
	if _, err := models.NewOptimizer(name, nil, beta1, beta2, eps, wd); err != nil {
		return optimizer{}, err
	}
	return optimizer{name: name, beta1: beta1, beta2: beta2, eps: eps, wd: wd}, nil
}

// step applies one optimizer update with learning rate lr to all params, like models' optimizers.
func (e *engine) step(lr float64) error {
	o := e.optimize
	n := e.l.total
	var s step
	switch o.name {
	case models.OptAdamW, models.OptAdam:
		e.adamT++
		bc1 := 1 - math.Pow(o.beta1, float64(e.adamT))
		bc2 := 1 - math.Pow(o.beta2, float64(e.adamT))
		wd, decay := float32(o.wd), float32(1)
		if o.name == models.OptAdamW {
			wd, decay = 0, float32(1-lr*o.wd)
		}
		s = step{kind: opAdam, i: []int{n}, b: []bufRef{e.st.params, e.st.grads, e.st.m, e.st.v},
			f: []float32{wd, decay, float32(o.beta1), float32(1 - o.beta1), float32(o.beta2), float32(1 - o.beta2),
				float32(lr / bc1), float32(1 / math.Sqrt(bc2)), float32(o.eps)}}
	case models.OptSGD:
		s = step{kind: opSGD, i: []int{n}, b: []bufRef{e.st.params, e.st.grads}, f: []float32{float32(lr), float32(o.wd)}}
	default:
		return fmt.Errorf("cuda: no optimizer set")
	}
	return e.be.run(&s, &[3]mem{e.stMem, e.stMem, e.setMem}, 1, false)
}

func (e *engine) close() error { return e.be.close() }
