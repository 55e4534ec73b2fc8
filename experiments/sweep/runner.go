package sweep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"

	"github.com/mami-lab/mami/configs"
)

// TrialFunc runs one trial: it trains with cfg (which carries run.id, run.sweep_id and run.group), calls
// report at every epoch end with that epoch's metrics (1-based epoch; keys like "val/f1_macro"), and returns
// when the run ends. A cancelled ctx must stop the run and give State OutcomeStopped. A TrialFunc is called
// from several goroutines at once.
type TrialFunc func(ctx context.Context, cfg *configs.Config, report func(epoch int, metrics map[string]float64)) (Result, error)

// Result is how a trial's run ended.
type Result struct {
	State   string         // OutcomeFinished, OutcomeFailed or OutcomeStopped
	Summary map[string]any // the run's summary; the sweep metric is read from it
	RunDir  string
}

// Runner runs a sweep's trials in local workers and keeps its state in Dir/state.json, so that running it
// again after an interruption runs only what is missing.
type Runner struct {
	Spec *Spec
	Base *configs.Config
	// ID is the sweep id (see ID); Dir is where state.json lives (see Dir).
	ID  string
	Dir string
	// Parallel is the number of trials run at once; 0 means runtime.NumCPU().
	Parallel int
	// Trial runs one trial.
	Trial TrialFunc
	// Logger receives one line per trial start and end; nil discards.
	Logger *slog.Logger
	// OnChange, when set, is called with a snapshot after every change of the state (from one goroutine
	// at a time), e.g. to redraw a live display.
	OnChange func(*State)
}

type trialEnd struct {
	index int
	out   Outcome
}

// Run runs every missing trial and returns the final state. It returns an error wrapping
// ErrTooManyFailures when the sweep stopped itself, and ctx.Err() when interrupted; the state on disk is
// current in every case.
func (r *Runner) Run(ctx context.Context) (*State, error) {
	log := r.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if r.Spec.TrialCount() == 0 {
		return nil, fmt.Errorf("sweep %s: a %s sweep needs run_cap to run locally (W&B runs it until stopped)", r.Spec.File, r.Spec.Method)
	}
	unlock, err := lock(r.Dir)
	if err != nil {
		return nil, fmt.Errorf("sweep %s: %w", r.ID, err)
	}
	defer unlock()
	prev, err := LoadState(r.Dir)
	if err != nil {
		return nil, err
	}
	ctrl, err := NewController(r.Spec, r.ID, prev)
	if err != nil {
		return nil, err
	}
	parallel := r.Parallel
	if parallel <= 0 {
		parallel = runtime.NumCPU()
	}
	ends := make(chan trialEnd)
	running := 0
	var stopErr error
	publish := func() error {
		st := ctrl.Snapshot()
		if r.OnChange != nil {
			r.OnChange(st)
		}
		return SaveState(r.Dir, st)
	}
	if err := publish(); err != nil {
		return nil, err
	}
	for {
		for running < parallel && stopErr == nil && ctx.Err() == nil {
			t, err := ctrl.Next()
			if errors.Is(err, ErrNoTrial) {
				break
			}
			if err != nil {
				stopErr = err
				break
			}
			running++
			log.Info("trial start", "trial", t.Index, "run_id", t.RunID, "params", FormatParams(r.Spec, t.Params))
			go func() { ends <- trialEnd{t.Index, r.runTrial(ctx, ctrl, t)} }()
		}
		if err := publish(); err != nil {
			return nil, err
		}
		if running == 0 {
			break
		}
		end := <-ends
		running--
		ctrl.Finish(end.index, end.out)
		attrs := []any{"trial", end.index, "state", end.out.State, "metric", end.out.Metric}
		if end.out.Err != nil {
			attrs = append(attrs, "err", end.out.Err)
		}
		log.Info("trial end", attrs...)
	}
	st := ctrl.Snapshot()
	switch {
	case stopErr != nil:
		return st, fmt.Errorf("sweep %s stopped: %w", r.ID, stopErr)
	case ctx.Err() != nil:
		_, _, left := st.Counts()
		return st, fmt.Errorf("sweep %s interrupted with %d trials left; run the same command again to resume: %w", r.ID, left, ctx.Err())
	}
	return st, nil
}

// runTrial runs one attempt; a panic of the TrialFunc is a failed attempt.
func (r *Runner) runTrial(ctx context.Context, ctrl *Controller, t Trial) (out Outcome) {
	defer func() {
		if p := recover(); p != nil {
			out = Outcome{State: OutcomeFailed, Metric: math.NaN(), Err: fmt.Errorf("trial %d panicked: %v", t.Index, p)}
		}
	}()
	cfg, err := r.Spec.TrialConfig(r.Base, r.ID, t.Index, t.Params)
	if err != nil {
		return Outcome{State: OutcomeFailed, Metric: math.NaN(), Err: err}
	}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	name := r.Spec.Metric.Name
	report := func(epoch int, metrics map[string]float64) {
		v, ok := metrics[name]
		if !ok {
			v = math.NaN()
		}
		if ctrl.Report(t.Index, epoch, v) {
			cancel()
		}
	}
	res, err := r.Trial(tctx, cfg, report)
	out = Outcome{State: res.State, Metric: MetricOf(res.Summary, name), RunDir: res.RunDir, Err: err}
	switch {
	case ctx.Err() != nil && res.State != OutcomeFinished:
		out.State = OutcomeStopped
	case tctx.Err() != nil && res.State != OutcomeFinished:
		out.State = OutcomeStopped // stopped by hyperband
	case err != nil || res.State == "":
		out.State = OutcomeFailed
		if err == nil {
			out.Err = errors.New("trial returned no state")
		}
	}
	return out
}

// MetricOf reads the metric name from a run summary as a float64; NaN when absent or not a number.
func MetricOf(summary map[string]any, name string) float64 {
	if v, ok := toFloat(summary[name]); ok {
		return v
	}
	return math.NaN()
}
