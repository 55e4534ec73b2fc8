package sweep

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"
)

// bounds returns the value-space range of a bounded distribution.
func (p *Param) bounds() (lo, hi float64) {
	switch p.Distribution {
	case DistLogUniform, DistQLogUniform:
		return math.Exp(p.Min), math.Exp(p.Max)
	case DistInvLogUniform:
		return math.Exp(-p.Max), math.Exp(-p.Min)
	}
	return p.Min, p.Max
}

// convert turns a drawn number into the config key's Go type.
func convert(p *Param, x float64) any {
	if p.Type == "integer" {
		return int(math.Round(x))
	}
	return x
}

// dims is the number of coordinates the parameter takes in the bayes search space.
func (p *Param) dims() int {
	switch p.Distribution {
	case DistConstant:
		return 0
	case DistCategorical:
		if len(p.Values) < 2 {
			return 0
		}
		return len(p.Values)
	}
	return 1
}

// fromUnit maps u in [0,1] to a value of a numeric parameter: uniform u gives a draw from the distribution.
func (p *Param) fromUnit(u float64) any {
	u = min(max(u, 0), 1)
	var x float64
	switch p.Distribution {
	case DistIntUniform:
		n := p.Max - p.Min + 1
		x = p.Min + math.Min(math.Floor(u*n), n-1)
	case DistNormal, DistQNormal, DistLogNormal, DistQLogNormal:
		u = min(max(u, 1e-9), 1-1e-9)
		x = p.Mu + p.Sigma*distuv.UnitNormal.Quantile(u)
		if p.logScale() {
			x = math.Exp(x)
		}
	default:
		lo, hi := p.bounds()
		if p.logScale() {
			x = math.Exp(math.Log(lo) + u*(math.Log(hi)-math.Log(lo)))
		} else {
			x = lo + u*(hi-lo)
		}
		x = min(max(x, lo), hi)
	}
	if p.Q > 0 && p.Distribution != DistIntUniform {
		x = math.Round(x/p.Q) * p.Q
	}
	return convert(p, x)
}

// toUnit maps a value of a numeric parameter back to [0,1], the inverse of fromUnit.
func (p *Param) toUnit(v any) float64 {
	x, ok := toFloat(v)
	if !ok {
		return 0.5
	}
	var u float64
	switch p.Distribution {
	case DistIntUniform:
		u = (x - p.Min + 0.5) / (p.Max - p.Min + 1)
	case DistNormal, DistQNormal, DistLogNormal, DistQLogNormal:
		if p.logScale() {
			if x <= 0 {
				return 0
			}
			x = math.Log(x)
		}
		u = distuv.UnitNormal.CDF((x - p.Mu) / p.Sigma)
	default:
		lo, hi := p.bounds()
		if p.logScale() {
			if x <= 0 {
				return 0
			}
			u = (math.Log(x) - math.Log(lo)) / (math.Log(hi) - math.Log(lo))
		} else {
			u = (x - lo) / (hi - lo)
		}
	}
	return min(max(u, 0), 1)
}

// sample draws one value from the parameter's distribution.
func (p *Param) sample(rng *rand.Rand) any {
	switch p.Distribution {
	case DistConstant:
		return p.Values[0]
	case DistCategorical:
		return p.Values[p.drawIndex(rng)]
	}
	return p.fromUnit(rng.Float64())
}

func (p *Param) drawIndex(rng *rand.Rand) int {
	if p.Probs == nil {
		return rng.IntN(len(p.Values))
	}
	r := rng.Float64()
	for i, pr := range p.Probs {
		if r < pr {
			return i
		}
		r -= pr
	}
	return len(p.Values) - 1
}

// gridValues lists the values a grid search takes for the parameter.
func (p *Param) gridValues() ([]any, error) {
	switch p.Distribution {
	case DistConstant, DistCategorical:
		return p.Values, nil
	case DistIntUniform:
		if p.Max-p.Min >= maxGrid {
			return nil, fmt.Errorf("int_uniform range of %g values is too large for a grid", p.Max-p.Min+1)
		}
		var vs []any
		for x := p.Min; x <= p.Max; x++ {
			vs = append(vs, convert(p, x))
		}
		return vs, nil
	case DistQUniform:
		if (p.Max-p.Min)/p.Q >= maxGrid {
			return nil, fmt.Errorf("q_uniform range of %g steps is too large for a grid", (p.Max-p.Min)/p.Q)
		}
		var vs []any
		for k := math.Ceil(p.Min/p.Q - 1e-9); k*p.Q <= p.Max+1e-9*math.Abs(p.Max); k++ {
			vs = append(vs, convert(p, roundTo(k*p.Q, p.Q)))
		}
		if len(vs) == 0 {
			return nil, fmt.Errorf("q_uniform has no multiple of q=%g in [%g, %g]", p.Q, p.Min, p.Max)
		}
		return vs, nil
	}
	return nil, fmt.Errorf("grid search needs values, a value, int_uniform or q_uniform, not %s", p.Distribution)
}

// maxGrid bounds the number of grid points of one sweep.
const maxGrid = 100000

// roundTo removes the float noise of k*q by rounding to q's decimal precision.
func roundTo(x, q float64) float64 {
	digits := max(0, int(math.Ceil(-math.Log10(q)))+2)
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}
