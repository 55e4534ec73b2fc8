package sweep

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/mami-lab/mami/configs"
)

// GridSize returns the number of points of the full grid (every combination of grid values).
func (s *Spec) GridSize() int {
	n := 1
	for _, p := range s.Params {
		vs, err := p.gridValues()
		if err != nil {
			return 0
		}
		n *= len(vs)
	}
	return n
}

// TrialCount returns the number of trials the sweep runs: for a grid, its size capped by run_cap; for random
// and bayes, run_cap (0 means unbounded, which only a long-lived controller can serve).
func (s *Spec) TrialCount() int {
	if s.Method == MethodGrid {
		n := s.GridSize()
		if s.RunCap > 0 {
			n = min(n, s.RunCap)
		}
		return n
	}
	return s.RunCap
}

// TrialParams returns the parameters of trial k (0-based) of a grid or random sweep. They depend only on
// the file (and, for random, its seed), so any machine computes the same trial k: this is what
// `mami sweep --trial K` and Slurm array jobs rely on. Bayes trials depend on earlier results and have no
// fixed parameters.
func (s *Spec) TrialParams(k int) (map[string]any, error) {
	if k < 0 || (s.TrialCount() > 0 && k >= s.TrialCount()) {
		return nil, fmt.Errorf("trial %d out of range: the sweep has %d trials (0 to %d)", k, s.TrialCount(), s.TrialCount()-1)
	}
	switch s.Method {
	case MethodGrid:
		return s.gridPoint(k), nil
	case MethodRandom:
		return s.randomPoint(k), nil
	}
	return nil, fmt.Errorf("trial %d: %s trials depend on earlier results; only grid and random sweeps have fixed trials", k, s.Method)
}

// gridPoint decodes k in mixed radix, the first parameter varying slowest.
func (s *Spec) gridPoint(k int) map[string]any {
	out := make(map[string]any, len(s.Params))
	for i := len(s.Params) - 1; i >= 0; i-- {
		vs, _ := s.Params[i].gridValues()
		out[s.Params[i].Key] = vs[k%len(vs)]
		k /= len(vs)
	}
	return out
}

func (s *Spec) randomPoint(k int) map[string]any {
	rng := s.trialRNG(k, 0)
	out := make(map[string]any, len(s.Params))
	for _, p := range s.Params {
		out[p.Key] = p.sample(rng)
	}
	return out
}

// trialRNG is the random source of trial k, stream selecting independent uses.
func (s *Spec) trialRNG(k int, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(s.Seed)^0x5eed5eed5eed5eed, uint64(k)*0x9e3779b97f4a7c15+stream))
}

// Apply returns a copy of base with params set (in the order of s.Params) and validated; errors name the key.
func (s *Spec) Apply(base *configs.Config, params map[string]any) (*configs.Config, error) {
	cfg := base.Clone()
	for _, p := range s.Params {
		v, ok := params[p.Key]
		if !ok {
			continue
		}
		if err := cfg.Set(p.Key, v); err != nil {
			return nil, fmt.Errorf("sweep %s: parameter %s=%v: %w", s.File, p.Key, v, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sweep %s: trial config %s: %w", s.File, FormatParams(s, params), err)
	}
	return cfg, nil
}

// Check applies every trial of a grid or random sweep (up to 10,000) to base and returns the first
// configuration the config validator refuses, so a bad combination fails before any training.
func (s *Spec) Check(base *configs.Config) error {
	if s.Method == MethodBayes {
		return nil
	}
	for k := range min(s.TrialCount(), 10000) {
		p, err := s.TrialParams(k)
		if err != nil {
			return err
		}
		if _, err := s.Apply(base, p); err != nil {
			return fmt.Errorf("trial %d: %w", k, err)
		}
	}
	return nil
}

// TrialConfig is Apply plus the bookkeeping keys: run.sweep_id, run.id = "<sweep id>-t<k>", run.group = the
// sweep name (unless the base config names a group).
func (s *Spec) TrialConfig(base *configs.Config, sweepID string, k int, params map[string]any) (*configs.Config, error) {
	cfg, err := s.Apply(base, params)
	if err != nil {
		return nil, err
	}
	cfg.Run.SweepID = sweepID
	cfg.Run.ID = TrialRunID(sweepID, k)
	if cfg.Run.Group == "" {
		cfg.Run.Group = s.Name
	}
	if cfg.Run.Name == "" {
		cfg.Run.Name = fmt.Sprintf("%s-t%d", s.Name, k)
	}
	return cfg, nil
}

// TrialRunID is the run id of trial k: "<sweep id>-t<k>".
func TrialRunID(sweepID string, k int) string { return fmt.Sprintf("%s-t%d", sweepID, k) }

// ParseTrialRunID splits a trial's run id "<sweep id>-t<k>" into the sweep id and k; ok is false for any
// other run id. A server hosting a Controller uses it to route a run's metrics to Report.
func ParseTrialRunID(runID string) (sweepID string, k int, ok bool) {
	i := strings.LastIndex(runID, "-t")
	if i <= 0 || i+2 >= len(runID) {
		return "", 0, false
	}
	n, err := strconv.Atoi(runID[i+2:])
	if err != nil || n < 0 || strconv.Itoa(n) != runID[i+2:] {
		return "", 0, false
	}
	return runID[:i], n, true
}

// ID derives the sweep id from the sweep file's content and the base config, so that running the same
// command again resumes the same sweep. The run identity keys, the work directory and the tracking keys of
// base do not enter the id.
func ID(spec *Spec, base *configs.Config) (string, error) {
	c := base.Clone()
	c.Run.ID, c.Run.Name, c.Run.SweepID, c.Workdir = "", "", "", ""
	c.Tracking = configs.Default().Tracking
	y, err := c.Marshal()
	if err != nil {
		return "", fmt.Errorf("sweep id: %w", err)
	}
	h := sha256.New()
	h.Write(spec.Source)
	h.Write([]byte{0})
	h.Write(y)
	return "sw" + hex.EncodeToString(h.Sum(nil))[:8], nil
}

// FormatParams writes params as "k=v k=v" in the order of s.Params, with the short key (last dot segment)
// when it is unambiguous.
func FormatParams(s *Spec, params map[string]any) string {
	var parts []string
	for _, p := range s.Params {
		if p.Distribution == DistConstant {
			continue
		}
		if v, ok := params[p.Key]; ok {
			parts = append(parts, fmt.Sprintf("%s=%s", p.Key, formatValue(v)))
		}
	}
	return joinSpace(parts)
}

func joinSpace(parts []string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += " "
		}
		out += p
	}
	return out
}

func formatValue(v any) string {
	switch x := v.(type) {
	case float64:
		return fmt.Sprintf("%.4g", x)
	case []any:
		return fmt.Sprint(x)
	}
	return fmt.Sprint(v)
}

// swept returns the parameters that vary (not constant).
func (s *Spec) swept() []*Param {
	return slices.DeleteFunc(slices.Clone(s.Params), func(p *Param) bool { return p.Distribution == DistConstant })
}
