package sweep_test

import (
	"errors"
	"math"
	"testing"

	"github.com/mami-lab/mami/experiments/sweep"
)

const hyperbandSweep = `method: grid
metric: {name: val/f1_macro, goal: maximize}
early_terminate: {type: hyperband, min_iter: 1, eta: 3}
parameters:
  train.lr: {values: [0.1, 0.2, 0.3, 0.4]}
`

func next(t *testing.T, c sweep.Scheduler) sweep.Trial {
	t.Helper()
	tr, err := c.Next()
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestHyperbandStops(t *testing.T) {
	c, err := sweep.NewController(mustParse(t, hyperbandSweep), "sw1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t0, t1, t2 := next(t, c), next(t, c), next(t, c)
	steps := []struct {
		trial, epoch int
		value        float64
		want         bool
	}{
		{t0.Index, 1, 0.5, false}, // alone at the rung
		{t1.Index, 1, 0.4, true},  // of [0.5 0.4] the top 1/3 is 0.5
		{t1.Index, 2, 0.9, true},  // once stopped, stays stopped
		{t2.Index, 1, 0.6, false}, // of [0.6 0.5 0.4] the threshold is 0.5
		{t0.Index, 2, 0.55, false},
		{t0.Index, 3, 0.60, false},
		{t2.Index, 2, math.NaN(), false}, // not a rung
		{t2.Index, 3, 0.58, true},        // of [0.60 0.58] the threshold is 0.60
	}
	for i, s := range steps {
		if got := c.Report(s.trial, s.epoch, s.value); got != s.want {
			t.Errorf("step %d (trial %d epoch %d value %g): stop %v, want %v", i, s.trial, s.epoch, s.value, got, s.want)
		}
	}
	c.Finish(t1.Index, sweep.Outcome{State: sweep.OutcomeStopped, Metric: math.NaN()})
	c.Finish(t2.Index, sweep.Outcome{State: sweep.OutcomeStopped, Metric: math.NaN()})
	c.Finish(t0.Index, sweep.Outcome{State: sweep.OutcomeFinished, Metric: 0.7})
	st := c.Snapshot()
	wantStates := []string{sweep.TrialFinished, sweep.TrialEarlyTerminated, sweep.TrialEarlyTerminated}
	for i, w := range wantStates {
		if st.Trials[i].State != w {
			t.Errorf("trial %d: state %s, want %s", i, st.Trials[i].State, w)
		}
	}
	if m := st.Trials[2].Metric; m == nil || float64(*m) != 0.58 || st.Trials[2].StoppedAt != 3 {
		t.Errorf("early-terminated trial 2: metric %v stopped at %d, want its last value 0.58 at rung 3", m, st.Trials[2].StoppedAt)
	}
	if b := st.Best(mustParse(t, hyperbandSweep).Metric); b == nil || b.Index != 0 {
		t.Errorf("best: got %+v, want trial 0", b)
	}
}

func TestControllerInterruptedTrialRunsAgain(t *testing.T) {
	c, _ := sweep.NewController(mustParse(t, hyperbandSweep), "sw1", nil)
	a := next(t, c)
	c.Report(a.Index, 1, 0.5)
	c.Finish(a.Index, sweep.Outcome{State: sweep.OutcomeStopped, Metric: math.NaN()}) // Ctrl-C, not hyperband
	again := next(t, c)
	if again.Index != a.Index || again.RunID != "sw1-t0" {
		t.Fatalf("got trial %d (%s), want the interrupted trial 0 again", again.Index, again.RunID)
	}
	if st := c.Snapshot(); st.Trials[0].Attempts != 1 || st.Trials[0].Failures != 0 {
		t.Errorf("interrupted attempt counted: attempts %d failures %d", st.Trials[0].Attempts, st.Trials[0].Failures)
	}
}

func TestControllerRetriesAndGivesUp(t *testing.T) {
	spec := mustParse(t, hyperbandSweep)
	c, _ := sweep.NewController(spec, "sw1", nil)
	boom := errors.New("boom")
	// trial 0 fails twice, then succeeds: retried, and the streak of failures resets
	for range 2 {
		tr := next(t, c)
		if tr.Index != 0 {
			t.Fatalf("got trial %d, want the retry of trial 0", tr.Index)
		}
		c.Finish(0, sweep.Outcome{State: sweep.OutcomeFailed, Err: boom, Metric: math.NaN()})
	}
	next(t, c)
	c.Finish(0, sweep.Outcome{State: sweep.OutcomeFinished, Metric: 0.5})
	st := c.Snapshot()
	if tr := st.Trials[0]; tr.State != sweep.TrialFinished || tr.Attempts != 3 || tr.Failures != 2 || tr.Error != "" {
		t.Errorf("trial 0: %+v, want finished after 3 attempts", tr)
	}
	// trial 1 fails every time: given up after MaxRetries retries, which also stops the sweep
	for range sweep.MaxRetries + 1 {
		tr := next(t, c)
		c.Finish(tr.Index, sweep.Outcome{State: sweep.OutcomeFailed, Err: boom, Metric: math.NaN()})
	}
	st = c.Snapshot()
	if st.Trials[1].State != sweep.TrialFailed {
		t.Errorf("trial 1: state %s, want failed", st.Trials[1].State)
	}
	_, err := c.Next()
	if !errors.Is(err, sweep.ErrTooManyFailures) {
		t.Fatalf("got %v, want ErrTooManyFailures", err)
	}
	want := "3 trial attempts failed in a row; last: trial 1: boom"
	if st.StoppedReason != want {
		t.Errorf("reason: got %q, want %q", st.StoppedReason, want)
	}
	// a resumed sweep starts with a clean streak
	c2, err := sweep.NewController(spec, "sw1", st)
	if err != nil {
		t.Fatal(err)
	}
	if tr := next(t, c2); tr.Index != 2 {
		t.Errorf("resumed: got trial %d, want 2", tr.Index)
	}
	if _, err := sweep.NewController(spec, "other", st); err == nil {
		t.Error("a state of another sweep was accepted")
	}
}

func TestControllerResumesRunningAsPending(t *testing.T) {
	spec := mustParse(t, hyperbandSweep)
	c, _ := sweep.NewController(spec, "sw1", nil)
	a, b := next(t, c), next(t, c)
	c.Finish(b.Index, sweep.Outcome{State: sweep.OutcomeFinished, Metric: 0.3})
	// the process dies with trial a running
	c2, _ := sweep.NewController(spec, "sw1", c.Snapshot())
	got := []int{next(t, c2).Index, next(t, c2).Index, next(t, c2).Index}
	want := []int{a.Index, 2, 3}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("resumed order: got %v, want %v", got, want)
		}
	}
	if _, err := c2.Next(); !errors.Is(err, sweep.ErrNoTrial) {
		t.Errorf("after the last trial: got %v, want ErrNoTrial", err)
	}
	done, running, left := c2.Snapshot().Counts()
	if done != 1 || running != 3 || left != 0 {
		t.Errorf("counts: got %d/%d/%d, want 1 done 3 running 0 left", done, running, left)
	}
}

func TestTargetEndsSweep(t *testing.T) {
	spec := mustParse(t, "method: grid\nmetric: {name: m, goal: maximize, target: 0.8}\nparameters:\n  train.lr: {values: [0.1, 0.2, 0.3]}\n")
	c, _ := sweep.NewController(spec, "sw1", nil)
	a := next(t, c)
	c.Finish(a.Index, sweep.Outcome{State: sweep.OutcomeFinished, Metric: 0.85})
	if _, err := c.Next(); !errors.Is(err, sweep.ErrNoTrial) {
		t.Errorf("after reaching the target: got %v, want ErrNoTrial", err)
	}
}
