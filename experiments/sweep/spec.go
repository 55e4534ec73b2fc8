package sweep

import (
	"fmt"
	"math"
)

// Search methods.
const (
	MethodGrid   = "grid"
	MethodRandom = "random"
	MethodBayes  = "bayes"
)

// Metric goals.
const (
	GoalMinimize = "minimize"
	GoalMaximize = "maximize"
)

// Distributions a parameter may name, as W&B spells them.
const (
	DistConstant            = "constant"
	DistCategorical         = "categorical"
	DistIntUniform          = "int_uniform"
	DistUniform             = "uniform"
	DistQUniform            = "q_uniform"
	DistLogUniform          = "log_uniform" // min and max are natural logarithms
	DistLogUniformValues    = "log_uniform_values"
	DistQLogUniform         = "q_log_uniform"
	DistQLogUniformValues   = "q_log_uniform_values"
	DistInvLogUniform       = "inv_log_uniform" // 1/X with ln X uniform on [min, max]
	DistInvLogUniformValues = "inv_log_uniform_values"
	DistNormal              = "normal"
	DistQNormal             = "q_normal"
	DistLogNormal           = "log_normal"
	DistQLogNormal          = "q_log_normal"
)

// Distributions lists every distribution name the parser accepts.
func Distributions() []string {
	return []string{DistConstant, DistCategorical, DistIntUniform, DistUniform, DistQUniform,
		DistLogUniform, DistLogUniformValues, DistQLogUniform, DistQLogUniformValues,
		DistInvLogUniform, DistInvLogUniformValues, DistNormal, DistQNormal, DistLogNormal, DistQLogNormal}
}

// Spec is a parsed sweep file.
type Spec struct {
	// File labels errors and the display; it is the path the spec was read from.
	File string
	// Name is the sweep's display name (the file's "name", else the file's base name); it becomes run.group.
	Name string
	// Method is grid, random or bayes.
	Method string
	// Metric is the value the search optimises, read from each trial's epoch-end rows and summary.
	Metric Metric
	// Params are the swept config keys, in file order (nested blocks flattened depth first).
	Params []*Param
	// EarlyTerminate is the hyperband configuration, nil when the file has none.
	EarlyTerminate *Hyperband
	// RunCap bounds the number of trials; 0 means no cap (a grid then runs every combination).
	RunCap int
	// Seed seeds random and bayes sampling (a mami extension; W&B ignores it). Default 0.
	Seed int64
	// Command and Program are kept for W&B agents; mami ignores them.
	Command []string
	Program string
	// Source is the file's content, from which the sweep id is derived.
	Source []byte
}

// Metric names the optimised value.
type Metric struct {
	Name string // history key, e.g. "val/f1_macro"
	Goal string // minimize or maximize
	// Target, when set, ends the sweep once a trial reaches it.
	Target    float64
	HasTarget bool
}

// Better reports whether a is strictly better than b under the goal; NaN is worse than anything.
func (m Metric) Better(a, b float64) bool {
	if math.IsNaN(a) {
		return false
	}
	if math.IsNaN(b) {
		return true
	}
	if m.Goal == GoalMinimize {
		return a < b
	}
	return a > b
}

// Score maps a metric value to a number where larger is better and NaN becomes -Inf.
func (m Metric) Score(v float64) float64 {
	if math.IsNaN(v) {
		return math.Inf(-1)
	}
	if m.Goal == GoalMinimize {
		return -v
	}
	return v
}

// Reached reports whether v meets the target.
func (m Metric) Reached(v float64) bool {
	if !m.HasTarget || math.IsNaN(v) {
		return false
	}
	if m.Goal == GoalMinimize {
		return v <= m.Target
	}
	return v >= m.Target
}

// Param is one swept config key.
type Param struct {
	Key          string    // config dot path, e.g. "train.lr"
	Line         int       // line of the parameter in the file
	Distribution string    // one of Distributions
	Values       []any     // constant (one value) and categorical
	Probs        []float64 // categorical probabilities, nil = uniform
	Min, Max     float64
	Mu, Sigma    float64
	Q            float64
	// Type is the config key's type: "number", "integer", "string", "boolean", "list of ...".
	Type string
}

// Hyperband configures early termination: rungs at MinIter·Eta^k epochs (or MaxIter/Eta^i, i=1..S).
type Hyperband struct {
	MinIter int
	MaxIter int
	S       int
	Eta     float64
}

// Rungs returns the epochs at which runs are compared, ascending, up to maxEpoch (inclusive).
func (h *Hyperband) Rungs(maxEpoch int) []int {
	var rungs []int
	if h.MaxIter > 0 {
		band := float64(h.MaxIter)
		for range h.S {
			band /= h.Eta
			if band < 1 {
				break
			}
			rungs = append([]int{int(band)}, rungs...)
		}
	} else {
		for band := float64(h.MinIter); int(band) <= maxEpoch; band *= h.Eta {
			if len(rungs) == 0 || int(band) != rungs[len(rungs)-1] {
				rungs = append(rungs, int(band))
			}
			if len(rungs) > 64 {
				break
			}
		}
	}
	out := rungs[:0]
	for _, r := range rungs {
		if r >= 1 && r <= maxEpoch {
			out = append(out, r)
		}
	}
	return out
}

// numeric reports whether the parameter draws numbers from a continuous or integer distribution.
func (p *Param) numeric() bool {
	return p.Distribution != DistConstant && p.Distribution != DistCategorical
}

// logScale reports whether the parameter is searched on a logarithmic scale.
func (p *Param) logScale() bool {
	switch p.Distribution {
	case DistLogUniform, DistLogUniformValues, DistQLogUniform, DistQLogUniformValues,
		DistInvLogUniform, DistInvLogUniformValues, DistLogNormal, DistQLogNormal:
		return true
	}
	return false
}

// String describes the parameter's search space in a short line.
func (p *Param) String() string {
	switch p.Distribution {
	case DistConstant:
		return fmt.Sprintf("%s = %v", p.Key, p.Values[0])
	case DistCategorical:
		return fmt.Sprintf("%s ∈ %v", p.Key, p.Values)
	case DistNormal, DistQNormal, DistLogNormal, DistQLogNormal:
		return fmt.Sprintf("%s ~ %s(mu=%g, sigma=%g)", p.Key, p.Distribution, p.Mu, p.Sigma)
	}
	return fmt.Sprintf("%s ~ %s[%g, %g]", p.Key, p.Distribution, p.Min, p.Max)
}
