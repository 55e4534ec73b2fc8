package sweep_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/experiments/sweep"
)

// objective is a smooth stand-in for validation F1 over (lr, dropout): best near lr=2e-3, dropout=0.25,
// and learning rates above 0.03 diverge to chance.
func objective(lr, dropout float64) float64 {
	if lr > 0.03 {
		return 0.35
	}
	d := math.Log10(lr) + 2.7
	return 0.75 - 0.05*d*d - 0.3*(dropout-0.25)*(dropout-0.25)
}

// fakeTrainer is a TrialFunc that "trains" cfg.Train.Epochs epochs, reporting a learning curve that
// approaches objective(lr, dropout), and counts its calls per run id.
type fakeTrainer struct {
	mu    sync.Mutex
	calls map[string]int
	// fail, when set, decides whether an attempt fails (by run id and call number, 1-based)
	fail func(runID string, call int) bool
	// after, when set, runs after an attempt ends
	after func(runID string)
}

func (f *fakeTrainer) run(ctx context.Context, cfg *configs.Config, report func(int, map[string]float64)) (sweep.Result, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[cfg.Run.ID]++
	call := f.calls[cfg.Run.ID]
	f.mu.Unlock()
	if f.after != nil {
		defer f.after(cfg.Run.ID)
	}
	if cfg.Run.SweepID == "" || cfg.Run.Group == "" {
		return sweep.Result{State: sweep.OutcomeFailed}, errors.New("trial config without sweep id or group")
	}
	if f.fail != nil && f.fail(cfg.Run.ID, call) {
		return sweep.Result{State: sweep.OutcomeFailed}, fmt.Errorf("simulated crash of %s", cfg.Run.ID)
	}
	final := objective(cfg.Train.LR, cfg.Model.Dropout)
	var v float64
	for e := 1; e <= cfg.Train.Epochs; e++ {
		v = final - (final-0.3)*math.Exp(-float64(e)/2)
		if cfg.Train.LR > 0.03 {
			v = 0.35
		}
		report(e, map[string]float64{"val/f1_macro": v, "val/loss": 1 - v})
		if ctx.Err() != nil {
			return sweep.Result{State: sweep.OutcomeStopped, Summary: map[string]any{"val/f1_macro": v}}, nil
		}
	}
	return sweep.Result{State: sweep.OutcomeFinished, Summary: map[string]any{"val/f1_macro": v}, RunDir: "runs/" + cfg.Run.ID}, nil
}

const lrGrid = `name: lr-dropout
method: grid
metric: {name: val/f1_macro, goal: maximize}
parameters:
  train.lr: {values: [1.0e-5, 1.0e-4, 1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2, 1.0e-1]}
  model.dropout: {values: [0.0, 0.2, 0.4, 0.6]}
  train.epochs: {value: 4}
`

func newRunner(t *testing.T, spec *sweep.Spec, dir string, f *fakeTrainer, parallel int) *sweep.Runner {
	t.Helper()
	base := configs.Default()
	id, err := sweep.ID(spec, base)
	if err != nil {
		t.Fatal(err)
	}
	return &sweep.Runner{Spec: spec, Base: base, ID: id, Dir: sweep.Dir(dir, id), Parallel: parallel, Trial: f.run}
}

func TestRunnerGrid(t *testing.T) {
	spec := mustParse(t, lrGrid)
	f := &fakeTrainer{}
	r := newRunner(t, spec, t.TempDir(), f, 3)
	var lines bytes.Buffer
	d := sweep.NewDisplay(&lines, false, spec)
	r.OnChange = d.Update
	st, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Trials) != 28 {
		t.Fatalf("got %d trials, want 28", len(st.Trials))
	}
	for _, tr := range st.Trials {
		if tr.State != sweep.TrialFinished || f.calls[tr.RunID] != 1 || tr.RunID != fmt.Sprintf("%s-t%d", r.ID, tr.Index) {
			t.Errorf("trial %d: state %s, %d calls, run id %s", tr.Index, tr.State, f.calls[tr.RunID], tr.RunID)
		}
	}
	best := st.Best(spec.Metric)
	if best == nil || best.Params["train.lr"] != 3e-3 || best.Params["model.dropout"] != 0.2 {
		t.Errorf("best: got %+v, want lr 3e-3 dropout 0.2", best)
	}
	disk, err := sweep.LoadState(r.Dir)
	if err != nil || disk == nil {
		t.Fatalf("state.json: %v", err)
	}
	if done, running, left := disk.Counts(); done != 28 || running != 0 || left != 0 {
		t.Errorf("state.json counts %d/%d/%d, want 28 done", done, running, left)
	}
	if !strings.Contains(lines.String(), "28 done · 0 running · 0 left · best val/f1_macro") {
		t.Errorf("display never showed the end:\n%s", lines.String())
	}
	var table bytes.Buffer
	if err := sweep.WriteTable(&table, spec, st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), fmt.Sprintf("best: trial %d, val/f1_macro = ", best.Index)) || strings.Count(table.String(), "finished") != 28 {
		t.Errorf("table:\n%s", table.String())
	}
}

func TestRunnerResumesOnlyMissingTrials(t *testing.T) {
	spec := mustParse(t, lrGrid)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	ended := 0
	var mu sync.Mutex
	f := &fakeTrainer{after: func(string) {
		mu.Lock()
		defer mu.Unlock()
		if ended++; ended == 10 {
			cancel() // Ctrl-C after ten trials
		}
	}}
	_, err := newRunner(t, spec, dir, f, 2).Run(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "run the same command again to resume") {
		t.Fatalf("got %v, want an interruption that says how to resume", err)
	}
	first := map[string]int{}
	for k, v := range f.calls {
		first[k] = v
	}
	st, err := newRunner(t, spec, dir, f, 2).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range st.Trials {
		if tr.State != sweep.TrialFinished {
			t.Errorf("trial %d: %s after resuming", tr.Index, tr.State)
		}
		if first[tr.RunID] > 0 && f.calls[tr.RunID] != first[tr.RunID] && tr.Attempts != 1 {
			t.Errorf("trial %d ran again although it had finished", tr.Index)
		}
	}
	total := 0
	for _, n := range f.calls {
		total += n
	}
	// every trial once, plus at most the two that were cut off by the interruption
	if total < 28 || total > 30 {
		t.Errorf("%d trial runs in all, want 28 to 30", total)
	}
}

func TestRunnerRetriesCrashes(t *testing.T) {
	spec := mustParse(t, lrGrid)
	f := &fakeTrainer{fail: func(id string, call int) bool { return strings.HasSuffix(id, "-t5") && call <= 2 }}
	st, err := newRunner(t, spec, t.TempDir(), f, 1).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tr := st.Trials[5]; tr.State != sweep.TrialFinished || tr.Attempts != 3 || tr.Failures != 2 {
		t.Errorf("trial 5: state %s attempts %d failures %d, want finished at the third attempt", tr.State, tr.Attempts, tr.Failures)
	}
}

func TestRunnerStopsAfterThreeFailures(t *testing.T) {
	spec := mustParse(t, lrGrid)
	f := &fakeTrainer{fail: func(string, int) bool { return true }}
	st, err := newRunner(t, spec, t.TempDir(), f, 1).Run(context.Background())
	if !errors.Is(err, sweep.ErrTooManyFailures) || !strings.Contains(err.Error(), "3 trial attempts failed in a row") ||
		!strings.Contains(err.Error(), "simulated crash") {
		t.Fatalf("got %v, want a clear too-many-failures error", err)
	}
	total := 0
	for _, n := range f.calls {
		total += n
	}
	if total != 3 || st.StoppedReason == "" {
		t.Errorf("%d attempts, reason %q; want 3 attempts and a recorded reason", total, st.StoppedReason)
	}
}

func TestRunnerHyperband(t *testing.T) {
	spec := mustParse(t, `method: grid
metric: {name: val/f1_macro, goal: maximize}
early_terminate: {type: hyperband, min_iter: 1, eta: 2}
parameters:
  train.lr: {values: [3.0e-3, 1.0e-3, 1.0e-1, 3.0e-2, 1.0e-2, 1.0e-4, 3.0e-1, 1.0e-5]}
  train.epochs: {value: 8}
`)
	f := &fakeTrainer{}
	st, err := newRunner(t, spec, t.TempDir(), f, 1).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stopped := 0
	for _, tr := range st.Trials {
		if tr.State == sweep.TrialEarlyTerminated {
			stopped++
		}
	}
	best := st.Best(spec.Metric)
	if stopped < 3 || best.Params["train.lr"] != 3e-3 || best.State != sweep.TrialFinished {
		t.Errorf("%d of 8 stopped, best %v (%s); want ≥3 stopped and lr 3e-3 finished", stopped, best.Params, best.State)
	}
}

// TestBayesBeatsHalfTheGrid is the acceptance experiment on the stand-in objective: bayes over continuous
// lr (log-uniform) and dropout reaches within 1% of the best of a 28-point grid in at most 14 trials.
func TestBayesBeatsHalfTheGrid(t *testing.T) {
	grid, err := newRunner(t, mustParse(t, lrGrid), t.TempDir(), &fakeTrainer{}, 2).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	gridBest := float64(*grid.Best(mustParse(t, lrGrid).Metric).Metric)
	for seed := range 3 {
		spec := mustParse(t, fmt.Sprintf(`method: bayes
seed: %d
run_cap: 14
metric: {name: val/f1_macro, goal: maximize}
parameters:
  train.lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-1}
  model.dropout: {distribution: uniform, min: 0.0, max: 0.6}
  train.epochs: {value: 4}
`, seed))
		st, err := newRunner(t, spec, t.TempDir(), &fakeTrainer{}, 2).Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := float64(*st.Best(spec.Metric).Metric)
		if got < 0.99*gridBest {
			t.Errorf("seed %d: bayes best %.4f after 14 trials, grid best %.4f", seed, got, gridBest)
		}
	}
}

func TestRunnerRefusesConcurrentRun(t *testing.T) {
	spec := mustParse(t, lrGrid)
	dir := t.TempDir()
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	f := &fakeTrainer{}
	r1 := newRunner(t, spec, dir, f, 1)
	r1.Trial = func(ctx context.Context, cfg *configs.Config, report func(int, map[string]float64)) (sweep.Result, error) {
		once.Do(func() { close(started) })
		<-release
		return f.run(ctx, cfg, report)
	}
	errc := make(chan error, 1)
	go func() { _, err := r1.Run(context.Background()); errc <- err }()
	<-started
	_, err := newRunner(t, spec, dir, f, 1).Run(context.Background())
	close(release)
	if !errors.Is(err, sweep.ErrLocked) {
		t.Errorf("second runner: got %v, want ErrLocked", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// the lock is gone afterwards
	if _, err := newRunner(t, spec, dir, f, 1).Run(context.Background()); err != nil {
		t.Errorf("after the first finished: %v", err)
	}
}
