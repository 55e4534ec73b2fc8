package sweep

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Bayes search settings.
const (
	// BayesInitial is the number of completed trials below which bayes proposes random points.
	BayesInitial          = 3
	bayesRandomCandidates = 1500
	bayesLocalCandidates  = 500
	bayesXi               = 0.01
)

// observation is a completed trial for the bayes model: its parameters and a score where larger is better.
type observation struct {
	params map[string]any
	score  float64
}

// encode maps params to the GP's input space: numeric parameters to [0,1] (log scale for log
// distributions), categoricals one-hot; constants are left out.
func (s *Spec) encode(params map[string]any) []float64 {
	var x []float64
	for _, p := range s.Params {
		switch d := p.dims(); {
		case d == 0:
		case p.Distribution == DistCategorical:
			hot := slices.IndexFunc(p.Values, func(v any) bool { return sameValue(v, params[p.Key]) })
			for i := range d {
				x = append(x, b2f(i == hot))
			}
		default:
			x = append(x, p.toUnit(params[p.Key]))
		}
	}
	return x
}

// decode maps a point of the GP's input space back to parameters.
func (s *Spec) decode(x []float64) map[string]any {
	out := map[string]any{}
	i := 0
	for _, p := range s.Params {
		d := p.dims()
		switch {
		case p.Distribution == DistConstant || (p.Distribution == DistCategorical && d == 0):
			out[p.Key] = p.Values[0]
		case p.Distribution == DistCategorical:
			best := 0
			for j := 1; j < d; j++ {
				if x[i+j] > x[i+best] {
					best = j
				}
			}
			out[p.Key] = p.Values[best]
		default:
			out[p.Key] = p.fromUnit(x[i])
		}
		i += d
	}
	return out
}

// groups gives each coordinate of the input space its length-scale index: one per parameter.
func (s *Spec) groups() []int {
	var g []int
	k := 0
	for _, p := range s.Params {
		d := p.dims()
		if d == 0 {
			continue
		}
		for range d {
			g = append(g, k)
		}
		k++
	}
	return g
}

// bayesSuggest proposes parameters for the next trial: expected improvement of a GP fitted to done,
// maximised over random and local candidates, with running trials entered at their predicted mean.
func (s *Spec) bayesSuggest(rng *rand.Rand, done []observation, running []map[string]any) map[string]any {
	groups := s.groups()
	if len(done) < BayesInitial || len(groups) == 0 {
		return s.randomParams(rng)
	}
	x := make([][]float64, len(done))
	y := make([]float64, len(done))
	worst := math.Inf(1)
	for _, o := range done {
		if !math.IsInf(o.score, 0) && !math.IsNaN(o.score) {
			worst = min(worst, o.score)
		}
	}
	if math.IsInf(worst, 1) {
		return s.randomParams(rng)
	}
	for i, o := range done {
		x[i] = s.encode(o.params)
		y[i] = o.score
		if math.IsInf(o.score, 0) || math.IsNaN(o.score) {
			y[i] = worst // a run without a metric counts as the worst seen
		}
	}
	winsorize(y)
	model := newGP(groups)
	model.setData(x, y)
	model.fit()
	best := slices.Max(model.y)
	for _, r := range running {
		model.addBeliever(s.encode(r))
	}

	// candidates: random points, and perturbations of the best observations
	order := make([]int, len(done))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmpDesc(y[a], y[b]) })
	top := order[:min(5, len(order))]
	var bestX []float64
	bestEI := math.Inf(-1)
	try := func(params map[string]any) {
		cx := s.encode(params)
		mu, sd := model.predict(cx)
		if ei := expectedImprovement(mu, sd, best, bayesXi); ei > bestEI {
			bestEI, bestX = ei, cx
		}
	}
	for range bayesRandomCandidates {
		try(s.randomParams(rng))
	}
	for c := range bayesLocalCandidates {
		base := x[top[c%len(top)]]
		try(s.perturb(rng, base))
	}
	return s.decode(bestX)
}

// randomParams draws every parameter uniformly in the search space (categoricals ignore probabilities).
func (s *Spec) randomParams(rng *rand.Rand) map[string]any {
	out := map[string]any{}
	for _, p := range s.Params {
		out[p.Key] = p.sample(rng)
	}
	return out
}

// perturb moves a point of the input space a little: Gaussian steps on numeric coordinates, and with
// probability 0.2 another category.
func (s *Spec) perturb(rng *rand.Rand, x []float64) map[string]any {
	y := slices.Clone(x)
	i := 0
	for _, p := range s.Params {
		d := p.dims()
		switch {
		case d == 0:
		case p.Distribution == DistCategorical:
			if rng.Float64() < 0.2 {
				for j := range d {
					y[i+j] = 0
				}
				y[i+rng.IntN(d)] = 1
			}
		default:
			y[i] = reflect(y[i] + 0.08*rng.NormFloat64())
		}
		i += d
	}
	return s.decode(y)
}

func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// sameValue compares parameter values as YAML and JSON decoders produce them (ints and floats compare by value).
func sameValue(a, b any) bool {
	fa, oka := toFloat(a)
	fb, okb := toFloat(b)
	if oka && okb {
		return fa == fb
	}
	return formatValue(a) == formatValue(b)
}

// winsorize raises scores below Q1 − 1.5·IQR to that bound, so that a few diverged trials do not stretch
// the standardised scale and flatten the model where the good trials are. Their order is kept at the
// bottom, which is all the search needs to know about them.
func winsorize(y []float64) {
	if len(y) < 4 {
		return
	}
	s := slices.Clone(y)
	slices.Sort(s)
	q := func(p float64) float64 {
		f := p * float64(len(s)-1)
		i := int(f)
		if i+1 >= len(s) {
			return s[len(s)-1]
		}
		return s[i] + (f-float64(i))*(s[i+1]-s[i])
	}
	q1, q3 := q(0.25), q(0.75)
	lo := q1 - 1.5*(q3-q1)
	for i := range y {
		y[i] = max(y[i], lo)
	}
}

// reflect folds v back into [0,1] at the edges (clamping would pile candidates up on the boundary).
func reflect(v float64) float64 {
	for v < 0 || v > 1 {
		if v < 0 {
			v = -v
		}
		if v > 1 {
			v = 2 - v
		}
	}
	return v
}
