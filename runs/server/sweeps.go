package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/mami-lab/mami/experiments/sweep"
	"github.com/mami-lab/mami/runs/server/store"
)

// DefaultAgentTimeout is how long an agent may go without a heartbeat before its trials are handed to
// other agents.
const DefaultAgentTimeout = time.Minute

// Sweep states, as W&B spells them (UpsertSweep's state).
const (
	SweepRunning  = "RUNNING"
	SweepPaused   = "PAUSED"
	SweepCanceled = "CANCELED"
	SweepFinished = "FINISHED"
)

// SweepOptions configures EnableSweeps. The zero value is usable.
type SweepOptions struct {
	// AgentTimeout is how long an agent may stay silent before its running trials go back to the queue;
	// it is also how long an agent may take to confirm a run it was handed. Zero means DefaultAgentTimeout.
	AgentTimeout time.Duration
}

// Sweeps is the sweep controller a Server hosts for W&B agents (`wandb agent`, `mami agent`): it answers
// UpsertSweep, CreateAgent and Heartbeat, hands each trial of a sweep to exactly one agent, applies
// hyperband to the epoch metrics the trials' runs stream, and keeps every sweep's state in the server's
// database so that a restarted server neither loses nor reruns trials. Its methods are safe for concurrent
// use.
//
// A trial's run is found by the sweep id its UpsertBucket carries; its epoch-end rows (history rows holding
// the sweep metric, at the epoch their "epoch" key names, else counted) feed the controller, and its final
// state ends the attempt. A hyperband stop reaches the agent as a "stop" command and the run itself as
// {"stopped": true} on its next file_stream answer.
type Sweeps struct {
	srv     *Server
	timeout time.Duration

	mu     sync.Mutex // guards everything below and serialises every sweep decision with its write
	sweeps map[string]*hostedSweep
	agents map[string]string // agent id -> sweep id
}

// EnableSweeps loads the stored sweeps and adds the upsertSweep, createAgent and agentHeartbeat GraphQL
// mutations to s. Call it after Open.
func (s *Server) EnableSweeps(ctx context.Context, opts SweepOptions) (*Sweeps, error) {
	if s.store == nil {
		return nil, errors.New("enable sweeps: server is not open")
	}
	h := &Sweeps{srv: s, timeout: opts.AgentTimeout, sweeps: map[string]*hostedSweep{}, agents: map[string]string{}}
	if h.timeout <= 0 {
		h.timeout = DefaultAgentTimeout
	}
	stored, err := s.store.Sweeps(ctx)
	if err != nil {
		return nil, fmt.Errorf("enable sweeps: %w", err)
	}
	now := s.now()
	for _, row := range stored {
		hs, err := restoreSweep(row, now)
		if err != nil {
			s.log.Warn("sweep not restored", "sweep", row.ID, "err", err)
			continue
		}
		h.sweeps[hs.id] = hs
		for id := range hs.agents {
			h.agents[id] = hs.id
		}
	}
	s.HandleGraphQL("upsertSweep", h.resolveUpsertSweep)
	s.HandleGraphQL("createAgent", h.resolveCreateAgent)
	s.HandleGraphQL("agentHeartbeat", h.resolveHeartbeat)
	return h, nil
}

// State returns a copy of the controller state of sweep id.
func (h *Sweeps) State(id string) (*sweep.State, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hs, ok := h.sweeps[id]
	if !ok {
		return nil, false
	}
	return hs.ctrl.Snapshot(), true
}

var sweepIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (h *Sweeps) resolveUpsertSweep(ctx context.Context, r *http.Request, args map[string]any) (any, error) {
	in, _ := args["input"].(map[string]any)
	if in == nil {
		return nil, errors.New("missing input")
	}
	entity := orDefault(str(in, "entityName"), h.srv.cfg.Entity)
	project := orDefault(str(in, "projectName"), "uncategorized")
	id := orDefault(str(in, "id"), "")
	state := strings.ToUpper(orDefault(str(in, "state"), ""))
	switch state {
	case "", SweepRunning, SweepPaused, SweepCanceled, SweepFinished:
	default:
		return nil, fmt.Errorf("state %q: want one of RUNNING, PAUSED, CANCELED, FINISHED", state)
	}
	if id != "" && !sweepIDPattern.MatchString(id) {
		return nil, fmt.Errorf("id %q: want 1 to 64 of [A-Za-z0-9_-]", id)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ctx = context.WithoutCancel(ctx) // a decision once taken is stored
	if hs, ok := h.sweeps[id]; ok {
		if state != "" {
			hs.state = state
		}
		if err := h.save(ctx, hs); err != nil {
			return nil, err
		}
		return h.sweepValue(hs), nil
	}
	yaml := orDefault(str(in, "config"), "")
	if yaml == "" {
		return nil, errors.New("config: the sweep file is empty")
	}
	if id == "" {
		id = randomRunID()
	}
	spec, err := sweep.Parse("sweep "+id, []byte(yaml))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	ctrl, err := sweep.NewController(spec, id, nil)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if state == "" {
		state = SweepRunning
	}
	hs := &hostedSweep{
		id: id, entity: entity, project: project, yaml: yaml, state: state, spec: spec, ctrl: ctrl,
		agents: map[string]*sweepAgent{}, assign: map[string]*assignment{}, handouts: map[int]int{},
	}
	if err := h.save(ctx, hs); err != nil {
		return nil, err
	}
	h.sweeps[id] = hs
	h.srv.log.Info("sweep created", "sweep", id, "method", spec.Method, "trials", spec.TrialCount())
	return h.sweepValue(hs), nil
}

func (h *Sweeps) sweepValue(hs *hostedSweep) map[string]any {
	return map[string]any{
		"sweep": map[string]any{
			"id": gid("Sweep", hs.id), "name": hs.id, "state": hs.state, "config": hs.yaml,
			"project": map[string]any{
				"id": gid("Project", hs.entity+"/"+hs.project), "name": hs.project,
				"entity": map[string]any{"id": gid("Entity", hs.entity), "name": hs.entity},
			},
		},
		"configValidationWarnings": []any{},
	}
}

func (h *Sweeps) resolveCreateAgent(ctx context.Context, r *http.Request, args map[string]any) (any, error) {
	in, _ := args["input"].(map[string]any)
	if in == nil {
		return nil, errors.New("missing input")
	}
	id := orDefault(str(in, "sweep"), "")
	h.mu.Lock()
	defer h.mu.Unlock()
	hs, ok := h.sweeps[id]
	if !ok {
		return nil, fmt.Errorf("sweep %q: not found", id)
	}
	a := &sweepAgent{ID: "agent-" + randomRunID(), Host: orDefault(str(in, "host"), ""), Heartbeat: h.srv.now()}
	hs.agents[a.ID] = a
	if err := h.save(context.WithoutCancel(ctx), hs); err != nil {
		delete(hs.agents, a.ID)
		return nil, err
	}
	h.agents[a.ID] = hs.id
	h.srv.log.Info("agent joined", "sweep", hs.id, "agent", a.ID, "host", a.Host)
	return map[string]any{"agent": map[string]any{"id": a.ID, "name": a.ID, "sweepName": hs.id}}, nil
}

func (h *Sweeps) resolveHeartbeat(ctx context.Context, r *http.Request, args map[string]any) (any, error) {
	in, _ := args["input"].(map[string]any)
	if in == nil {
		return nil, errors.New("missing input")
	}
	id := orDefault(str(in, "id"), "")
	// runState: {"<run id>": true} for each running run (mami's agent also sends false, once, for a run
	// that has just ended, so that a run that died before reaching the server is settled at once).
	running := map[string]bool{}
	if rs := orDefault(str(in, "runState"), ""); rs != "" && rs != "null" {
		var m map[string]any
		if err := json.Unmarshal([]byte(rs), &m); err != nil {
			return nil, fmt.Errorf("runState: %w", err)
		}
		for k, v := range m {
			b, ok := v.(bool)
			running[k] = !ok || b
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	hs, ok := h.sweeps[h.agents[id]]
	if !ok {
		return nil, fmt.Errorf("agent %q: not found", id)
	}
	ctx = context.WithoutCancel(ctx)
	cmds, err := hs.heartbeat(ctx, h.srv, id, running, h.timeout)
	if err != nil {
		return nil, err
	}
	if err := h.save(ctx, hs); err != nil {
		return nil, err
	}
	b, _ := json.Marshal(cmds)
	return map[string]any{"agent": map[string]any{"id": id}, "commands": string(b)}, nil
}

// save writes hs to the database; the caller holds h.mu.
func (h *Sweeps) save(ctx context.Context, hs *hostedSweep) error {
	data, err := hs.marshal()
	if err != nil {
		return fmt.Errorf("save sweep %s: %w", hs.id, err)
	}
	return h.srv.store.PutSweep(ctx, store.Sweep{
		ID: hs.id, Entity: hs.entity, Project: hs.project, Config: hs.yaml, State: hs.state, Data: data,
	})
}
