package models

import (
	"fmt"
	"math"
	"sync"
)

// Optimizer updates the params it was made for from their Param.Grad. Step allocates nothing and
// spreads large models across cores.
type Optimizer interface {
	Step(lr float64)
}

// Optimizer names accepted by NewOptimizer.
const (
	OptAdamW = "adamw"
	OptAdam  = "adam"
	OptSGD   = "sgd"
)

// NewOptimizer returns the named optimizer over params:
//   - adamw: like torch.optim.AdamW — decoupled decay p −= lr·wd·p, then Adam with bias correction;
//   - adam: like torch.optim.Adam — L2 decay added to the gradient (g += wd·p), then Adam;
//   - sgd: plain SGD, p −= lr·(g + wd·p) (beta1, beta2 and eps unused).
func NewOptimizer(name string, params []*Param, beta1, beta2, eps, weightDecay float64) (Optimizer, error) {
	if weightDecay < 0 {
		return nil, fmt.Errorf("models: optimizer weight decay %v: must not be negative", weightDecay)
	}
	f := newFlat(params)
	switch name {
	case OptAdamW, OptAdam:
		if !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) {
			return nil, fmt.Errorf("models: optimizer %s betas (%v, %v): must be in [0, 1)", name, beta1, beta2)
		}
		if !(eps > 0) {
			return nil, fmt.Errorf("models: optimizer %s eps %v: must be positive", name, eps)
		}
		a := &adam{flat: f, decoupled: name == OptAdamW, beta1: beta1, beta2: beta2, eps: eps, wd: weightDecay}
		a.m, a.v = make([][]float32, len(params)), make([][]float32, len(params))
		for i, p := range params {
			a.m[i], a.v[i] = make([]float32, len(p.Value)), make([]float32, len(p.Value))
		}
		return a, nil
	case OptSGD:
		return &sgd{flat: f, wd: weightDecay}, nil
	}
	return nil, fmt.Errorf("models: optimizer %q: must be one of adamw, adam, sgd", name)
}

// flat views the params as one index space [0, total) for splitting work.
type flat struct {
	params []*Param
	offs   []int // offs[i] is the flat index of params[i][0]; offs[len] = total
}

func newFlat(params []*Param) flat {
	f := flat{params: params, offs: make([]int, len(params)+1)}
	for i, p := range params {
		f.offs[i+1] = f.offs[i] + len(p.Value)
	}
	return f
}

func (f *flat) total() int { return f.offs[len(f.params)] }

// each calls fn(i, lo, hi) for every param i overlapping the flat range [lo, hi), with lo/hi local to it.
func (f *flat) each(lo, hi int, fn func(i, lo, hi int)) {
	for i := range f.params {
		a, b := max(lo, f.offs[i]), min(hi, f.offs[i+1])
		if a < b {
			fn(i, a-f.offs[i], b-f.offs[i])
		}
	}
}

// adam implements Adam and AdamW.
type adam struct {
	flat
	decoupled             bool
	beta1, beta2, eps, wd float64
	m, v                  [][]float32
	wg                    sync.WaitGroup
	t                     int
	consts                adamConsts
	noAsm                 bool // tests: use the portable kernel only
	segment               func(i, lo, hi int)
}

func (a *adam) Step(lr float64) {
	a.t++
	bc1 := 1 - math.Pow(a.beta1, float64(a.t))
	bc2 := 1 - math.Pow(a.beta2, float64(a.t))
	a.consts = adamConsts{
		decay: 1, b1: float32(a.beta1), c1: float32(1 - a.beta1), b2: float32(a.beta2), c2: float32(1 - a.beta2),
		step: float32(lr / bc1), invBC2: float32(1 / math.Sqrt(bc2)), eps: float32(a.eps),
	}
	if a.decoupled {
		a.consts.decay = float32(1 - lr*a.wd)
	} else {
		a.consts.wd = float32(a.wd)
	}
	if a.segment == nil {
		a.segment = a.update
	}
	parallelFor(a, a.total(), &a.wg)
}

func (a *adam) runRange(_, lo, hi int) { a.each(lo, hi, a.segment) }

// adamConsts are one step's constants, laid out for the assembly kernel. Per element:
//
//	g' = g + wd·p;  p' = decay·p;  m = β1·m + (1−β1)·g';  v = β2·v + (1−β2)·g'²
//	p = p' − step·m / (√v·invBC2 + eps)
//
// with wd = 0 for AdamW and decay = 1 for Adam, step = lr/(1−β1^t), invBC2 = 1/√(1−β2^t), all in float32
// like PyTorch (1−β in float64 first).
type adamConsts struct {
	wd, decay, b1, c1, b2, c2, step, invBC2, eps float32
}

// update applies one step to params[i][lo:hi].
func (a *adam) update(i, lo, hi int) {
	p := a.params[i].Value[lo:hi]
	g, m, v := a.params[i].Grad[lo:hi], a.m[i][lo:hi], a.v[i][lo:hi]
	c := &a.consts
	done := 0
	if hasAdamAsm && !a.noAsm {
		done = adamAsm(p, g, m, v, c)
	}
	adamGo(p[done:], g[done:], m[done:], v[done:], c)
}

// adamGo is the portable form of the kernel.
func adamGo(p, g, m, v []float32, c *adamConsts) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for j := range p {
		gj := g[j] + c.wd*p[j]
		pj := c.decay * p[j]
		mj := c.b1*m[j] + c.c1*gj
		vj := c.b2*v[j] + c.c2*gj*gj
		m[j], v[j] = mj, vj
		p[j] = pj - c.step*mj/(float32(math.Sqrt(float64(vj)))*c.invBC2+c.eps)
	}
}

// sgd implements plain SGD with L2 weight decay.
type sgd struct {
	flat
	wd, lr  float64
	segment func(i, lo, hi int)
	wg      sync.WaitGroup
}

func (s *sgd) Step(lr float64) {
	s.lr = lr
	if s.segment == nil {
		s.segment = s.update
	}
	parallelFor(s, s.total(), &s.wg)
}

func (s *sgd) runRange(_, lo, hi int) { s.each(lo, hi, s.segment) }

func (s *sgd) update(i, lo, hi int) {
	p, g := s.params[i].Value[lo:hi], s.params[i].Grad[lo:hi]
	lr, wd := float32(s.lr), float32(s.wd)
	for j := range p {
		p[j] -= lr * (g[j] + wd*p[j])
	}
}

// ClipGradNorm scales all gradients down so that their total L2 norm is at most max, like
// torch.nn.utils.clip_grad_norm_ (scale max/(norm+1e-6) when norm > max), and returns the norm before
// clipping. max <= 0 only measures.
func ClipGradNorm(params []*Param, max float64) (norm float64) {
	c := &clipper{flat: newFlat(params)}
	n := c.total()
	parallelFor(c, n, &c.wg)
	var sum float64
	for _, s := range c.sums[:numParts(n)] {
		sum += s
	}
	norm = math.Sqrt(sum)
	if max > 0 && norm > max {
		c.coef = float32(max / (norm + 1e-6))
		parallelFor(c, n, &c.wg)
	}
	return norm
}

// clipper sums squares per part (coef == 0) or scales by coef.
type clipper struct {
	flat
	sums [maxParts]float64
	coef float32
	wg   sync.WaitGroup
}

func (c *clipper) runRange(part, lo, hi int) {
	var sum float64
	for i := range c.params {
		a, b := max(lo, c.offs[i]), min(hi, c.offs[i+1])
		if a >= b {
			continue
		}
		g := c.params[i].Grad[a-c.offs[i] : b-c.offs[i]]
		if c.coef != 0 {
			for j := range g {
				g[j] *= c.coef
			}
			continue
		}
		for len(g) > 0 { // float32 within blocks, float64 across them
			blk := g[:min(len(g), 1024)]
			var s float32
			for _, v := range blk {
				s += v * v
			}
			sum += float64(s)
			g = g[len(blk):]
		}
	}
	if c.coef == 0 {
		c.sums[part] = sum
	}
}
