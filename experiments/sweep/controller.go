package sweep

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"
)

// Trial states recorded in the sweep state.
const (
	TrialPending         = "pending"          // proposed, waiting to run (again)
	TrialRunning         = "running"          // handed to a worker or agent
	TrialFinished        = "finished"         // ran to the end
	TrialEarlyTerminated = "early_terminated" // stopped by hyperband; a result, not a failure
	TrialFailed          = "failed"           // crashed more than MaxRetries times
)

// Run end states an Outcome may carry (the run record's words).
const (
	OutcomeFinished = "finished"
	OutcomeFailed   = "failed"
	OutcomeStopped  = "stopped" // cancelled: by hyperband when the controller asked for it, else interrupted
)

const (
	// MaxRetries is how many times a crashed trial is run again before it is marked failed.
	MaxRetries = 2
	// MaxConsecutiveFailures stops the sweep: that many failed attempts in a row mean something is broken.
	MaxConsecutiveFailures = 3
)

// Errors Next returns.
var (
	// ErrNoTrial means the search has no trial to hand out now: every trial is assigned (wait for running
	// ones, whose failure may put a trial back), or the metric target was reached.
	ErrNoTrial = errors.New("sweep: no trial to run")
	// ErrTooManyFailures means MaxConsecutiveFailures attempts failed in a row; the sweep is stopped.
	ErrTooManyFailures = errors.New("sweep: too many failures in a row")
)

// Trial is one configuration handed to a worker: run it with Params applied to the base config under run id
// RunID (Spec.TrialConfig does both).
type Trial struct {
	Index  int
	RunID  string
	Params map[string]any
}

// Outcome is how one attempt at a trial ended.
type Outcome struct {
	State  string  // OutcomeFinished, OutcomeFailed or OutcomeStopped
	Metric float64 // the sweep metric from the run's summary; NaN when absent
	RunDir string  // the run record, when there is one
	Err    error   // why a failed attempt failed
}

// Scheduler is the seam between the search and whatever runs trials: local workers (Runner), or the
// W&B-protocol server handing trials to agents. Each Next call hands out one trial; the executor reports
// epoch-end metric values with Report (which says when hyperband wants the trial stopped, for the executor
// to cancel it or send the agent a "stop" command) and the end of each attempt with Finish. Implementations
// must be safe for concurrent use.
type Scheduler interface {
	Next() (Trial, error)
	Report(index, epoch int, value float64) (stop bool)
	Finish(index int, o Outcome)
	Snapshot() *State
}

// Controller is the Scheduler of one sweep: it proposes trials (grid order, seeded random draws, or bayes
// proposals), applies hyperband, retries crashed trials and keeps the sweep state. It is safe for
// concurrent use.
type Controller struct {
	mu    sync.Mutex
	spec  *Spec
	st    *State
	now   func() time.Time
	rungs []int
}

// NewController returns the controller of spec with sweep id id, continuing st when it is not nil (a
// resumed sweep): trials recorded as running were cut off and run again.
func NewController(spec *Spec, id string, st *State) (*Controller, error) {
	if st == nil {
		st = &State{Version: StateVersion, ID: id, Name: spec.Name, File: spec.File, Method: spec.Method,
			Metric: spec.Metric.Name, Goal: spec.Metric.Goal, Total: spec.TrialCount()}
	} else {
		if st.ID != id {
			return nil, fmt.Errorf("sweep state is for sweep %s, not %s", st.ID, id)
		}
		st = st.clone()
		for _, t := range st.Trials {
			if t.State == TrialRunning {
				t.State = TrialPending
			}
		}
		st.StoppedReason = ""
		st.ConsecutiveFailures = 0
	}
	c := &Controller{spec: spec, st: st, now: time.Now}
	if spec.EarlyTerminate != nil {
		c.rungs = spec.EarlyTerminate.Rungs(1 << 20)
	}
	return c, nil
}

// Spec is the sweep the controller serves.
func (c *Controller) Spec() *Spec { return c.spec }

// Next hands out the next trial: a pending one (a retry or a trial cut off earlier) first, else a new
// proposal. It returns ErrNoTrial when nothing is left to start now and ErrTooManyFailures once the sweep
// is stopped.
func (c *Controller) Next() (Trial, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st.StoppedReason != "" {
		return Trial{}, fmt.Errorf("%w: %s", ErrTooManyFailures, c.st.StoppedReason)
	}
	if c.targetReached() {
		return Trial{}, ErrNoTrial
	}
	for _, t := range c.st.Trials {
		if t.State == TrialPending {
			return c.start(t), nil
		}
	}
	k := len(c.st.Trials)
	if c.st.Total > 0 && k >= c.st.Total {
		return Trial{}, ErrNoTrial
	}
	var params map[string]any
	switch c.spec.Method {
	case MethodGrid, MethodRandom:
		p, err := c.spec.TrialParams(k)
		if err != nil {
			return Trial{}, err
		}
		params = p
	default:
		params = c.spec.bayesSuggest(c.spec.trialRNG(k, 1), c.observations(), c.runningParams())
	}
	t := &TrialRecord{Index: k, RunID: TrialRunID(c.st.ID, k), Params: params}
	c.st.Trials = append(c.st.Trials, t)
	return c.start(t), nil
}

func (c *Controller) start(t *TrialRecord) Trial {
	t.State = TrialRunning
	t.StopRequested = false
	t.Curve = nil
	t.Attempts++
	now := c.now()
	t.StartedAt, t.EndedAt = &now, nil
	return Trial{Index: t.Index, RunID: t.RunID, Params: maps.Clone(t.Params)}
}

func (c *Controller) targetReached() bool {
	for _, t := range c.st.Trials {
		if t.State == TrialFinished && t.Metric != nil && c.spec.Metric.Reached(float64(*t.Metric)) {
			return true
		}
	}
	return false
}

func (c *Controller) observations() []observation {
	var obs []observation
	for _, t := range c.st.Trials {
		if (t.State == TrialFinished || t.State == TrialEarlyTerminated) && t.Metric != nil {
			obs = append(obs, observation{params: t.Params, score: c.spec.Metric.Score(float64(*t.Metric))})
		}
	}
	return obs
}

func (c *Controller) runningParams() []map[string]any {
	var ps []map[string]any
	for _, t := range c.st.Trials {
		if t.State == TrialRunning || t.State == TrialPending {
			ps = append(ps, t.Params)
		}
	}
	return ps
}

// Report records the sweep metric of a running trial at the end of epoch (1-based) and returns true when
// hyperband wants the trial stopped: epoch is a rung and the value is worse than the 1/eta quantile of the
// values at that rung of every trial that reached it (this one included, as W&B computes it). Once it has
// returned true for a trial it keeps doing so.
func (c *Controller) Report(index, epoch int, value float64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if index < 0 || index >= len(c.st.Trials) || epoch < 1 {
		return false
	}
	t := c.st.Trials[index]
	if t.State != TrialRunning {
		return false
	}
	if t.StopRequested {
		return true
	}
	for len(t.Curve) < epoch {
		t.Curve = append(t.Curve, Value(math.NaN()))
	}
	t.Curve[epoch-1] = Value(value)
	if !slices.Contains(c.rungs, epoch) {
		return false
	}
	var scores []float64
	for _, o := range c.st.Trials {
		if len(o.Curve) >= epoch {
			scores = append(scores, c.spec.Metric.Score(float64(o.Curve[epoch-1])))
		}
	}
	slices.SortFunc(scores, cmpDesc)
	threshold := scores[int(float64(len(scores))/c.spec.EarlyTerminate.Eta)]
	if c.spec.Metric.Score(value) < threshold {
		t.StopRequested = true
		t.StoppedAt = epoch
		return true
	}
	return false
}

// Finish records the end of one attempt at a trial. A stopped attempt the controller asked for is
// early_terminated; one it did not ask for (the user interrupted the sweep) goes back to pending. A failed
// attempt is retried up to MaxRetries times; MaxConsecutiveFailures failed attempts in a row stop the sweep.
func (c *Controller) Finish(index int, o Outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if index < 0 || index >= len(c.st.Trials) {
		return
	}
	t := c.st.Trials[index]
	now := c.now()
	t.EndedAt = &now
	t.RunDir = o.RunDir
	t.Error = ""
	metric := o.Metric
	if math.IsNaN(metric) && len(t.Curve) > 0 {
		metric = float64(t.Curve[len(t.Curve)-1])
	}
	setMetric := func() {
		if !math.IsNaN(metric) {
			v := Value(metric)
			t.Metric = &v
		}
	}
	switch {
	case o.State == OutcomeFinished:
		t.State = TrialFinished
		setMetric()
		c.st.ConsecutiveFailures = 0
	case o.State == OutcomeStopped && t.StopRequested:
		t.State = TrialEarlyTerminated
		setMetric()
		c.st.ConsecutiveFailures = 0
	case o.State == OutcomeStopped:
		t.State = TrialPending
		t.Attempts-- // an interrupted attempt does not count
	default:
		t.Failures++
		if o.Err != nil {
			t.Error = o.Err.Error()
		}
		t.State = TrialPending
		if t.Failures > MaxRetries {
			t.State = TrialFailed
		}
		c.st.ConsecutiveFailures++
		if c.st.ConsecutiveFailures >= MaxConsecutiveFailures {
			c.st.StoppedReason = fmt.Sprintf("%d trial attempts failed in a row; last: trial %d: %s",
				c.st.ConsecutiveFailures, t.Index, t.Error)
		}
	}
}

// Snapshot returns a deep copy of the sweep state.
func (c *Controller) Snapshot() *State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.clone()
}

// Value is a float64 that encodes NaN and ±Inf as JSON null (and decodes null as NaN).
type Value float64

// MarshalJSON writes the number, or null when it is not finite.
func (v Value) MarshalJSON() ([]byte, error) {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// UnmarshalJSON reads a number, or null as NaN.
func (v *Value) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*v = Value(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*v = Value(f)
	return nil
}
