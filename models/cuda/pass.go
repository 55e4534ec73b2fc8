package cuda

import (
	"fmt"
)

// arenaData holds a data set uploaded once (DeviceSet).
const arenaData = 2

// state is the layout of what lives as long as a Net: flat params, grads, Adam moments and two float64
// scalars (a pass's loss sum and the squared gradient norm).
type state struct {
	mem     *arena
	params  bufRef
	grads   bufRef
	m, v    bufRef
	lossSum bufRef // float64
	sumsq   bufRef // float64
}

func newState(l *layout) *state {
	a := &arena{id: arenaState}
	return &state{
		mem:     a,
		params:  a.add("params", l.total),
		grads:   a.add("grads", l.total),
		m:       a.add("adam.m", l.total),
		v:       a.add("adam.v", l.total),
		lossSum: a.add("loss_sum", 2),
		sumsq:   a.add("grad_sumsq", 2),
	}
}

// plan is one pass at batch size n: training (forward, loss, backward into the grads) or evaluation
// (forward, loss, probabilities).
type plan struct {
	n      int
	train  bool
	mem    *arena
	image  bufRef
	text   bufRef
	labels bufRef
	idx    bufRef // int32 row indices for gathering a batch from a DeviceSet
	loss   bufRef // per-sample losses
	prob   bufRef // eval only
	masks  []bufRef
	steps  []step
}

// newPlan builds the pass of spec (laid out in l, run by a) at batch size n.
func newPlan(l *layout, a *arch, st *state, n int, train bool) (*plan, error) {
	if n <= 0 {
		return nil, fmt.Errorf("cuda: plan batch size %d: must be positive", n)
	}
	s := l.spec
	mem := &arena{id: arenaPlan}
	b := &builder{n: n, train: train, dropP: s.Dropout, params: st.params, grads: st.grads, mem: mem}
	p := &plan{n: n, train: train, mem: mem}
	p.idx = mem.add("batch.idx", n)
	image := *b.newNode("image", s.ImageDim, true)
	text := *b.newNode("text", s.TextDim, true)
	p.image, p.text = image.val, text.val
	p.labels = mem.add("labels", n)
	logits := a.forward(b, image, text)
	if b.err != nil {
		return nil, b.err
	}
	k := outDim(s)
	if logits.dim != k {
		return nil, fmt.Errorf("cuda: plan: logits have %d columns, head %s needs %d", logits.dim, s.Head, k)
	}
	p.loss = mem.add("loss", n)
	dz := none
	if train {
		dz = logits.grad
	}
	b.emit(step{kind: opLoss, i: []int{headID(s.Head), n, k}, b: []bufRef{logits.val, p.labels, p.loss, dz}})
	b.emit(step{kind: opSum, i: []int{n}, b: []bufRef{p.loss, st.lossSum}})
	if train {
		for i := len(b.bwd) - 1; i >= 0; i-- {
			b.bwd[i]()
		}
	} else {
		p.prob = mem.add("prob", n)
		b.emit(step{kind: opProb, i: []int{n, k}, b: []bufRef{logits.val, p.prob}})
	}
	p.masks = b.masks
	p.steps = append(b.fwd, b.bwdOut...)
	return p, nil
}

// gatherSteps are the steps that fill the plan's inputs from rows p.idx of a DeviceSet.
func (p *plan) gatherSteps(ds *deviceSetLayout) []step {
	return []step{
		{kind: opGather, i: []int{p.n, ds.imageDim}, b: []bufRef{p.idx, ds.image, p.image}},
		{kind: opGather, i: []int{p.n, ds.textDim}, b: []bufRef{p.idx, ds.text, p.text}},
		{kind: opGather, i: []int{p.n, 1}, b: []bufRef{p.idx, ds.labels, p.labels}},
	}
}

// deviceSetLayout is a data set resident on the backend: all rows of both modalities and the labels.
type deviceSetLayout struct {
	mem                 *arena
	rows                int
	imageDim, textDim   int
	image, text, labels bufRef
}

func newDeviceSetLayout(rows, imageDim, textDim int) *deviceSetLayout {
	a := &arena{id: arenaData}
	return &deviceSetLayout{
		mem: a, rows: rows, imageDim: imageDim, textDim: textDim,
		image:  a.add("set.image", rows*imageDim),
		text:   a.add("set.text", rows*textDim),
		labels: a.add("set.labels", rows),
	}
}

// maskStep draws dropout mask m on the backend (mami_mask): stream numbers the masks of a Net.
func (p *plan) maskStep(m bufRef, seed int64, stream int, dropP float64) step {
	return step{kind: opMask, i: []int{m.n, int(int32(uint32(uint64(seed)))), int(int32(uint32(stream)))}, b: []bufRef{m},
		f: []float32{float32(dropP), float32(1 / (1 - dropP))}}
}
