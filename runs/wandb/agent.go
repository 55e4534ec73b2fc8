package wandb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"time"
)

// The sweep operations, in the shapes the official Python client sends (WANDB-PROTOCOL.md, Sweeps and
// agents).
const (
	upsertSweepQuery = `mutation UpsertSweep($id: ID, $config: String, $description: String, $entityName: String, $projectName: String, $state: String, $displayName: String) {
	upsertSweep(input: {id: $id, config: $config, description: $description, entityName: $entityName, projectName: $projectName, state: $state, displayName: $displayName}) {
		sweep { name project { id name entity { id name } } }
		configValidationWarnings
	}
}`
	createAgentQuery = `mutation CreateAgent($host: String!, $projectName: String, $entityName: String, $sweep: String!) {
	createAgent(input: {host: $host, projectName: $projectName, entityName: $entityName, sweep: $sweep}) {
		agent { id }
	}
}`
	heartbeatQuery = `mutation Heartbeat($id: ID!, $metrics: JSONString, $runState: JSONString) {
	agentHeartbeat(input: {id: $id, metrics: $metrics, runState: $runState}) {
		agent { id }
		commands
	}
}`
)

// DefaultAgentInterval is how often an agent sends a heartbeat, as the W&B CLI agent does.
const DefaultAgentInterval = 5 * time.Second

// Agent command types a Heartbeat answer may carry.
const (
	CommandRun  = "run"
	CommandStop = "stop"
	CommandExit = "exit"
)

// AgentCommand is one command of a sweep controller's Heartbeat answer.
type AgentCommand struct {
	Type    string         // CommandRun, CommandStop or CommandExit
	RunID   string         // the run to start or stop
	Program string         // the sweep's program (informational)
	Args    map[string]any // run parameters by name (config dot paths for mami sweeps), values unwrapped
}

// RunFunc runs one trial an agent was handed: cmd.RunID is the run's id and cmd.Args its parameters. It must
// stream the run with sweep id set (so the controller sees its metrics and its end) and return when the run
// has ended; a cancelled ctx (a "stop" command) must end the run as stopped.
type RunFunc func(ctx context.Context, cmd AgentCommand) error

// SweepInfo is what UpsertSweep answered.
type SweepInfo struct {
	ID       string // the sweep id (the sweep's name in W&B's schema)
	Entity   string
	Project  string
	Warnings []string
}

// UpsertSweep creates a sweep from a sweep file's YAML in s.Entity/s.Project on the server s names and
// returns its id, as `wandb sweep` does.
func UpsertSweep(ctx context.Context, s Settings, configYAML string, opts Options) (SweepInfo, error) {
	opts = opts.withDefaults()
	c := newClient(opts.HTTPClient, s, opts.Retry, opts.Logger)
	var d struct {
		UpsertSweep *struct {
			Sweep *struct {
				Name    string `json:"name"`
				Project *struct {
					Name   string `json:"name"`
					Entity *struct {
						Name string `json:"name"`
					} `json:"entity"`
				} `json:"project"`
			} `json:"sweep"`
			Warnings []string `json:"configValidationWarnings"`
		} `json:"upsertSweep"`
	}
	vars := map[string]any{"config": configYAML, "entityName": nullable(s.Entity), "projectName": nullable(s.Project)}
	if err := c.graphql(ctx, "UpsertSweep", upsertSweepQuery, vars, &d); err != nil {
		return SweepInfo{}, err
	}
	if d.UpsertSweep == nil || d.UpsertSweep.Sweep == nil || d.UpsertSweep.Sweep.Name == "" {
		return SweepInfo{}, errors.New("graphql UpsertSweep: answer names no sweep")
	}
	info := SweepInfo{ID: d.UpsertSweep.Sweep.Name, Warnings: d.UpsertSweep.Warnings}
	if p := d.UpsertSweep.Sweep.Project; p != nil {
		info.Project = p.Name
		if p.Entity != nil {
			info.Entity = p.Entity.Name
		}
	}
	return info, nil
}

// Agent takes trials of one sweep from a W&B-protocol sweep controller (`mami serve`, or W&B's own
// servers) and runs them one at a time: CreateAgent, then a Heartbeat every Interval that reports the
// running run and receives run, stop and exit commands.
type Agent struct {
	Settings Settings // server, key, entity and project
	SweepID  string
	Run      RunFunc
	// Count, when positive, is the number of runs after which the agent exits.
	Count int
	// Interval is the time between heartbeats; zero means DefaultAgentInterval.
	Interval time.Duration
	// Host names the agent's machine to the controller; empty means os.Hostname.
	Host    string
	Options Options // HTTP client, logger and retry policy
}

// Serve runs the agent until the controller says exit, Count runs have ended or ctx ends (which stops the
// running trial and waits for it). It returns nil after an exit command or Count runs; a controller that
// refuses the agent (an unknown sweep, a rejected key) is an error.
func (a *Agent) Serve(ctx context.Context) error {
	if a.Run == nil {
		return errors.New("agent: no RunFunc")
	}
	opts := a.Options.withDefaults()
	log := opts.Logger
	c := newClient(opts.HTTPClient, a.Settings, opts.Retry, log)
	interval := a.Interval
	if interval <= 0 {
		interval = DefaultAgentInterval
	}
	host := a.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	id, err := createAgent(ctx, c, a.Settings, a.SweepID, host)
	if err != nil {
		return fmt.Errorf("agent for sweep %s: %w", a.SweepID, err)
	}
	log.Info("agent started", "sweep", a.SweepID, "agent", id)

	var (
		mu      sync.Mutex
		running = map[string]context.CancelFunc{}
		ended   = map[string]bool{} // runs that ended since the last heartbeat
		wg      sync.WaitGroup
		started int
	)
	wake := make(chan string, 1)
	stopAll := func() {
		mu.Lock()
		for _, cancel := range running {
			cancel()
		}
		mu.Unlock()
		wg.Wait()
	}
	defer stopAll()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		case <-wake:
		}
		mu.Lock()
		state := map[string]bool{}
		for r := range running {
			state[r] = true
		}
		for r := range ended {
			if !state[r] {
				state[r] = false // reported once, so the controller settles a run that never reached it
			}
		}
		clear(ended)
		mu.Unlock()
		if a.Count > 0 && started >= a.Count && !slices.Contains(slices.Collect(maps.Values(state)), true) {
			log.Info("agent done", "sweep", a.SweepID, "runs", started)
			return nil
		}
		cmds, err := heartbeat(ctx, c, id, state)
		if err != nil {
			if IsPermanent(err) || ctx.Err() != nil {
				return fmt.Errorf("agent %s: %w", id, err)
			}
			log.Warn("agent heartbeat failed; retrying", "agent", id, "err", err)
		}
		for _, cmd := range cmds {
			switch cmd.Type {
			case CommandExit:
				log.Info("controller says exit", "agent", id)
				return nil
			case CommandStop:
				mu.Lock()
				if cancel, ok := running[cmd.RunID]; ok {
					log.Info("controller stops run", "run", cmd.RunID)
					cancel()
				}
				mu.Unlock()
			case CommandRun:
				mu.Lock()
				_, dup := running[cmd.RunID]
				full := a.Count > 0 && started >= a.Count
				if dup || full || cmd.RunID == "" {
					mu.Unlock()
					continue
				}
				rctx, cancel := context.WithCancel(ctx)
				running[cmd.RunID] = cancel
				started++
				mu.Unlock()
				log.Info("run started", "run", cmd.RunID, "args", cmd.Args)
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := a.Run(rctx, cmd)
					cancel()
					mu.Lock()
					delete(running, cmd.RunID)
					ended[cmd.RunID] = true
					mu.Unlock()
					if err != nil {
						log.Warn("run ended with an error", "run", cmd.RunID, "err", err)
					} else {
						log.Info("run ended", "run", cmd.RunID)
					}
					select {
					case wake <- cmd.RunID:
					default:
					}
				}()
			default:
				log.Warn("unknown agent command", "type", cmd.Type)
			}
		}
		timer.Reset(interval)
	}
}

func createAgent(ctx context.Context, c *client, s Settings, sweepID, host string) (string, error) {
	var d struct {
		CreateAgent *struct {
			Agent *struct {
				ID string `json:"id"`
			} `json:"agent"`
		} `json:"createAgent"`
	}
	vars := map[string]any{"host": host, "sweep": sweepID, "entityName": nullable(s.Entity), "projectName": nullable(s.Project)}
	if err := c.graphql(ctx, "CreateAgent", createAgentQuery, vars, &d); err != nil {
		return "", err
	}
	if d.CreateAgent == nil || d.CreateAgent.Agent == nil || d.CreateAgent.Agent.ID == "" {
		return "", &permanentError{errors.New("graphql CreateAgent: answer names no agent")}
	}
	return d.CreateAgent.Agent.ID, nil
}

func heartbeat(ctx context.Context, c *client, id string, running map[string]bool) ([]AgentCommand, error) {
	rs, _ := json.Marshal(running)
	var d struct {
		AgentHeartbeat *struct {
			Commands *string `json:"commands"`
		} `json:"agentHeartbeat"`
	}
	vars := map[string]any{"id": id, "metrics": "{}", "runState": string(rs)}
	if err := c.graphql(ctx, "Heartbeat", heartbeatQuery, vars, &d); err != nil {
		return nil, err
	}
	if d.AgentHeartbeat == nil || d.AgentHeartbeat.Commands == nil {
		return nil, nil
	}
	return ParseAgentCommands(*d.AgentHeartbeat.Commands)
}

// ParseAgentCommands decodes the commands string of a Heartbeat answer: a JSON list of objects such as
// {"type": "run", "run_id": "...", "program": "...", "args": {"train.lr": {"value": 0.001}}} (a single
// object is accepted too). Parameter values are unwrapped from their {"value": v} objects.
func ParseAgentCommands(s string) ([]AgentCommand, error) {
	type wire struct {
		Type    string         `json:"type"`
		RunID   string         `json:"run_id"`
		Program string         `json:"program"`
		Args    map[string]any `json:"args"`
	}
	var list []wire
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		var one wire
		if err2 := json.Unmarshal([]byte(s), &one); err2 != nil {
			return nil, &permanentError{fmt.Errorf("heartbeat commands %q: %w", truncate(s, 200), err)}
		}
		list = []wire{one}
	}
	out := make([]AgentCommand, 0, len(list))
	for i, w := range list {
		if w.Type == "" {
			return nil, &permanentError{fmt.Errorf("heartbeat commands[%d]: no type", i)}
		}
		cmd := AgentCommand{Type: w.Type, RunID: w.RunID, Program: w.Program}
		if w.Args != nil {
			cmd.Args = make(map[string]any, len(w.Args))
			for _, k := range slices.Sorted(maps.Keys(w.Args)) {
				v := w.Args[k]
				if m, ok := v.(map[string]any); ok {
					if inner, ok := m["value"]; ok {
						v = inner
					}
				}
				cmd.Args[k] = v
			}
		}
		out = append(out, cmd)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
