package server

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/mami-lab/mami/experiments/sweep"
	"github.com/mami-lab/mami/runs/server/store"
)

// hostedSweep is one sweep with its controller, its agents and which agent runs which trial.
type hostedSweep struct {
	id, entity, project, yaml, state string
	spec                             *sweep.Spec
	ctrl                             *sweep.Controller
	agents                           map[string]*sweepAgent
	assign                           map[string]*assignment // by run id
	handouts                         map[int]int            // trial index -> attempts handed out
}

// sweepAgent is one agent of a sweep.
type sweepAgent struct {
	ID        string    `json:"id"`
	Host      string    `json:"host"`
	Heartbeat time.Time `json:"heartbeat"`
	Lost      bool      `json:"lost,omitempty"` // timed out; its trials went back to the queue
	Stops     []string  `json:"stops,omitempty"`
}

// assignment is one attempt at a trial, handed to one agent under its own run id.
type assignment struct {
	RunID    string    `json:"run_id"`
	Trial    int       `json:"trial"`
	Agent    string    `json:"agent"`
	At       time.Time `json:"at"`
	Seen     bool      `json:"seen,omitempty"`      // the agent has listed it as running
	Line     int64     `json:"line"`                // history lines read
	Epochs   int       `json:"epochs"`              // epoch-end rows read
	StopSent bool      `json:"stop_sent,omitempty"` // hyperband asked for a stop
}

// agentCommand is one entry of the commands list a Heartbeat answers.
type agentCommand struct {
	Type    string         `json:"type"`
	RunID   string         `json:"run_id,omitempty"`
	Program string         `json:"program,omitempty"`
	Args    map[string]any `json:"args,omitempty"`
}

// sweepData is what the database keeps of a sweep besides its file.
type sweepData struct {
	State       *sweep.State           `json:"state"`
	Agents      map[string]*sweepAgent `json:"agents"`
	Assignments map[string]*assignment `json:"assignments"`
	Handouts    map[int]int            `json:"handouts"`
}

func (hs *hostedSweep) marshal() ([]byte, error) {
	return json.Marshal(sweepData{State: hs.ctrl.Snapshot(), Agents: hs.agents, Assignments: hs.assign, Handouts: hs.handouts})
}

// restoreSweep rebuilds a stored sweep. sweep.NewController puts the trials that were running back in the
// queue (right for a local sweep, whose workers died with it); here their agents may well be running them
// still, so they are taken out of the queue again for the agents that hold them, and their history is read
// again from the start to rebuild the hyperband curves. Agents get a full AgentTimeout from now to show up.
func restoreSweep(row store.Sweep, now time.Time) (*hostedSweep, error) {
	spec, err := sweep.Parse("sweep "+row.ID, []byte(row.Config))
	if err != nil {
		return nil, err
	}
	var d sweepData
	if err := json.Unmarshal(row.Data, &d); err != nil {
		return nil, fmt.Errorf("sweep %s state: %w", row.ID, err)
	}
	if d.Agents == nil {
		d.Agents = map[string]*sweepAgent{}
	}
	if d.Assignments == nil {
		d.Assignments = map[string]*assignment{}
	}
	if d.Handouts == nil {
		d.Handouts = map[int]int{}
	}
	want := map[int]bool{}
	for runID, a := range d.Assignments {
		if d.State == nil || a.Trial < 0 || a.Trial >= len(d.State.Trials) || d.State.Trials[a.Trial].State != sweep.TrialRunning {
			delete(d.Assignments, runID)
			continue
		}
		want[a.Trial] = true
		d.State.Trials[a.Trial].Attempts-- // taking it again below counts it again
		a.Line, a.Epochs = 0, 0
	}
	ctrl, err := sweep.NewController(spec, row.ID, d.State)
	if err != nil {
		return nil, err
	}
	hs := &hostedSweep{
		id: row.ID, entity: row.Entity, project: row.Project, yaml: row.Config, state: row.State, spec: spec,
		ctrl: ctrl, agents: d.Agents, assign: d.Assignments, handouts: d.Handouts,
	}
	for _, a := range hs.agents {
		a.Heartbeat = now
	}
	var others []int
	for len(want) > 0 {
		t, err := ctrl.Next()
		if err != nil {
			break
		}
		if want[t.Index] {
			delete(want, t.Index)
		} else {
			others = append(others, t.Index)
		}
	}
	for _, i := range others { // back to the queue, as they were
		ctrl.Finish(i, sweep.Outcome{State: sweep.OutcomeStopped, Metric: math.NaN()})
	}
	return hs, nil
}

// heartbeat handles one Heartbeat of agent id, whose runs running are running (true) or have just ended
// (false): it requeues the trials of
// agents that went silent, feeds the controller what the sweep's runs streamed, ends finished attempts and
// answers the agent's commands.
func (hs *hostedSweep) heartbeat(ctx context.Context, srv *Server, id string, running map[string]bool, timeout time.Duration) ([]agentCommand, error) {
	now := srv.now()
	ag := hs.agents[id]
	ag.Heartbeat, ag.Lost = now, false
	for _, other := range hs.agents {
		if other.ID != id && !other.Lost && now.Sub(other.Heartbeat) > timeout {
			other.Lost = true
			for _, a := range hs.byAgent(other.ID) {
				srv.log.Warn("agent silent: trial requeued", "sweep", hs.id, "agent", other.ID, "trial", a.Trial, "run", a.RunID)
				hs.end(a, sweep.Outcome{State: sweep.OutcomeStopped, Metric: math.NaN()})
			}
		}
	}
	for runID, a := range hs.assign {
		if a.Agent == id && running[runID] {
			a.Seen = true
		}
	}
	endedHere := func(runID string) bool { r, ok := running[runID]; return ok && !r }
	if err := hs.poll(ctx, srv); err != nil {
		return nil, err
	}
	for _, a := range hs.byAgent(id) {
		if !running[a.RunID] && (a.Seen || endedHere(a.RunID) || now.Sub(a.At) > timeout) {
			srv.log.Warn("agent no longer runs its trial", "sweep", hs.id, "agent", id, "run", a.RunID)
			hs.end(a, sweep.Outcome{State: sweep.OutcomeFailed, Metric: math.NaN(),
				Err: fmt.Errorf("agent %s stopped running %s without the run reporting an end", id, a.RunID)})
		}
	}

	var cmds []agentCommand
	stops := map[string]bool{}
	for _, r := range ag.Stops {
		stops[r] = true
	}
	ag.Stops = nil
	for runID, r := range running {
		if !r {
			continue
		}
		if a, ok := hs.assign[runID]; !ok || a.Agent != id || hs.state == SweepCanceled {
			stops[runID] = true // not (or no longer) this agent's: requeued meanwhile, or the sweep was cancelled
		}
	}
	for _, r := range slices.Sorted(maps.Keys(stops)) {
		if running[r] {
			cmds = append(cmds, agentCommand{Type: "stop", RunID: r})
		}
	}
	busy := len(hs.byAgent(id)) > 0
	switch hs.state {
	case SweepCanceled, SweepFinished:
		if !busy {
			cmds = append(cmds, agentCommand{Type: "exit"})
		}
		return cmds, nil
	case SweepPaused:
		return cmds, nil
	}
	if busy || slices.Contains(slices.Collect(maps.Values(running)), true) {
		return cmds, nil
	}
	t, err := hs.ctrl.Next()
	switch {
	case err == nil:
		hs.handouts[t.Index]++
		runID := t.RunID
		if n := hs.handouts[t.Index]; n > 1 {
			runID = fmt.Sprintf("%s-r%d", t.RunID, n) // every attempt is a run of its own
		}
		hs.assign[runID] = &assignment{RunID: runID, Trial: t.Index, Agent: id, At: now}
		args := map[string]any{}
		for k, v := range t.Params {
			args[k] = map[string]any{"value": v}
		}
		program := hs.spec.Program
		if program == "" {
			program = "mami"
		}
		srv.log.Info("trial handed out", "sweep", hs.id, "agent", id, "trial", t.Index, "run", runID)
		cmds = append(cmds, agentCommand{Type: "run", RunID: runID, Program: program, Args: args})
	case len(hs.assign) == 0:
		// Nothing runs anywhere and nothing is left to start (or the sweep stopped itself): done.
		if _, _, left := hs.ctrl.Snapshot().Counts(); left == 0 {
			hs.state = SweepFinished
		}
		cmds = append(cmds, agentCommand{Type: "exit"})
	}
	return cmds, nil
}

func (hs *hostedSweep) byAgent(id string) []*assignment {
	var out []*assignment
	for _, a := range hs.assign {
		if a.Agent == id {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b *assignment) int { return a.Trial - b.Trial })
	return out
}

// end records the end of an attempt.
func (hs *hostedSweep) end(a *assignment, o sweep.Outcome) {
	hs.ctrl.Finish(a.Trial, o)
	delete(hs.assign, a.RunID)
}

// poll reads what the sweep's runs streamed since the last look: epoch-end metric values go to the
// controller (a hyperband stop is queued for the agent and requested from the run), and a run that ended
// ends its attempt.
func (hs *hostedSweep) poll(ctx context.Context, srv *Server) error {
	if len(hs.assign) == 0 {
		return nil
	}
	runs, err := srv.store.SweepRuns(ctx, hs.id)
	if err != nil {
		return err
	}
	for _, run := range runs {
		a, ok := hs.assign[run.Name]
		if !ok {
			continue
		}
		if run.HistoryLines > a.Line {
			rows, err := srv.store.HistoryRows(ctx, run.ID, a.Line, 0)
			if err != nil {
				return err
			}
			for _, raw := range rows {
				a.Line++
				hs.report(ctx, srv, a, run, raw)
			}
		}
		switch run.State {
		case store.StateFinished:
			var summary map[string]any
			_ = json.Unmarshal(run.Summary, &summary)
			hs.end(a, sweep.Outcome{State: sweep.OutcomeFinished, Metric: sweep.MetricOf(summary, hs.spec.Metric.Name)})
		case store.StateStopped:
			hs.end(a, sweep.Outcome{State: sweep.OutcomeStopped, Metric: math.NaN()})
		case store.StateFailed:
			if run.ExitCode != nil && *run.ExitCode == 130 && !a.StopSent {
				// Interrupted on the agent's machine (Ctrl-C): not the trial's fault, run it again.
				hs.end(a, sweep.Outcome{State: sweep.OutcomeStopped, Metric: math.NaN()})
				continue
			}
			code := -1
			if run.ExitCode != nil {
				code = *run.ExitCode
			}
			hs.end(a, sweep.Outcome{State: sweep.OutcomeFailed, Metric: math.NaN(),
				Err: fmt.Errorf("run %s failed with exit code %d", run.Name, code)})
		}
	}
	return nil
}

// report feeds one history row to the controller when it carries the sweep metric.
func (hs *hostedSweep) report(ctx context.Context, srv *Server, a *assignment, run *store.Run, raw json.RawMessage) {
	var row map[string]any
	if json.Unmarshal(raw, &row) != nil {
		return
	}
	v, ok := row[hs.spec.Metric.Name].(float64)
	if !ok {
		return
	}
	a.Epochs++
	epoch := a.Epochs
	if e, ok := row["epoch"].(float64); ok && e >= 1 && e == math.Trunc(e) {
		epoch = int(e)
	}
	if !hs.ctrl.Report(a.Trial, epoch, v) || a.StopSent {
		return
	}
	a.StopSent = true
	srv.log.Info("hyperband stops trial", "sweep", hs.id, "trial", a.Trial, "run", a.RunID, "epoch", epoch)
	if ag := hs.agents[a.Agent]; ag != nil {
		ag.Stops = append(ag.Stops, a.RunID)
	}
	if err := srv.store.RequestStop(ctx, store.RunKey{Entity: run.Entity, Project: run.Project, Name: run.Name}); err != nil {
		srv.log.Warn("request stop", "run", run.Name, "err", err)
	}
}
