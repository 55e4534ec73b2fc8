package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/experiments/sweep"
	"github.com/mami-lab/mami/runs/wandb"
)

func init() { register(newAgentCmd) }

func newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent SWEEP_ID | agent --create SWEEP.yaml [--join]",
		Short: "take sweep trials from a W&B-protocol sweep controller (mami serve, or W&B) and run them",
		Long: `Join sweep SWEEP_ID hosted by a server that speaks the W&B protocol (` + "`mami serve`" + `, or W&B's own
servers) and run the trials it hands out, one at a time, until the sweep is done: the same protocol as
` + "`wandb agent`" + ` (CreateAgent, then a Heartbeat every few seconds answering run, stop and exit commands).

Each trial is a full run like ` + "`mami train`" + `: the base config (-c, --set) with the trial's parameters set
by config key, run.id as the controller names it and run.sweep_id set, recorded under the work directory
and streamed to the same server, which reads its epoch metrics for hyperband. A stop command (hyperband)
stops the running trial; it ends as stopped.

The server is WANDB_BASE_URL (or tracking.base_url) with the key WANDB_API_KEY (or tracking.api_key, or
~/.netrc). --create SWEEP.yaml creates the sweep there (UpsertSweep, as ` + "`wandb sweep`" + ` does) and prints
its id; --join then also runs an agent for it. Start as many agents, on as many machines, as you like:
the server hands every trial to exactly one of them.`,
		Example: `  export WANDB_BASE_URL=http://gpu-box:8080 WANDB_API_KEY=...
  mami agent --create configs/sweeps/fusion-lr.yaml          # prints the sweep id, e.g. k3v9x2qa
  mami agent k3v9x2qa -c seed                                # on each machine
  mami agent k3v9x2qa --count 4 --set train.epochs=3`,
		Args: func(cmd *cobra.Command, args []string) error {
			create, _ := cmd.Flags().GetString("create")
			switch {
			case create == "" && len(args) != 1:
				return errors.New("want a sweep id (or --create SWEEP.yaml)")
			case create != "" && len(args) != 0:
				return errors.New("--create takes the sweep file; give no sweep id with it")
			}
			return nil
		},
		RunE: runAgent,
	}
	addConfigFlags(cmd)
	cmd.Flags().String("create", "", "create the sweep from this sweep file on the server and print its id")
	cmd.Flags().Bool("join", false, "with --create: also run an agent for the new sweep")
	cmd.Flags().Int("count", 0, "exit after this many trials (0: until the sweep is done)")
	cmd.Flags().Duration("interval", wandb.DefaultAgentInterval, "time between heartbeats")
	return cmd
}

func runAgent(cmd *cobra.Command, args []string) error {
	base, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	log, err := newLogger(cmd, os.Stderr)
	if err != nil {
		return err
	}
	s, err := agentSettings(base)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	var sweepID string
	if file, _ := cmd.Flags().GetString("create"); file != "" {
		if sweepID, err = createRemoteSweep(ctx, cmd, file, base, s, log); err != nil {
			return err
		}
		if join, _ := cmd.Flags().GetBool("join"); !join {
			return nil
		}
	} else {
		sweepID = args[0]
	}
	count, _ := cmd.Flags().GetInt("count")
	interval, _ := cmd.Flags().GetDuration("interval")
	trial := &agentTrial{base: base, sweepID: sweepID, settings: s, log: trialLogger(cmd), train: trainRun}
	ag := &wandb.Agent{
		Settings: s, SweepID: sweepID, Count: count, Interval: interval, Run: trial.run,
		Options: wandb.Options{Logger: log},
	}
	fmt.Fprintf(os.Stderr, "agent for sweep %s at %s (project %s)\n", sweepID, strings.TrimRight(s.BaseURL, "/"), s.Project)
	if err := ag.Serve(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			return exitError{code: 130, err: fmt.Errorf("agent for sweep %s interrupted", sweepID)}
		}
		return err
	}
	return nil
}

// agentSettings resolves the server the agent talks to: the base config's tracking.* and run.project
// under the WANDB_* variables, always online.
func agentSettings(base *configs.Config) (wandb.Settings, error) {
	cfg := base.Clone()
	cfg.Tracking.Mode = "online"
	b, err := cfg.Marshal()
	if err != nil {
		return wandb.Settings{}, err
	}
	fromConfig, _, err := wandb.ConfigSettings(b)
	if err != nil {
		return wandb.Settings{}, err
	}
	fromConfig.APIKey = base.Tracking.APIKey
	environ := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "WANDB_MODE=") })
	s, err := wandb.SettingsFrom(environ, "", fromConfig)
	if err != nil {
		return wandb.Settings{}, fmt.Errorf("agent: %w", err)
	}
	return s, nil
}

// createRemoteSweep checks the sweep file here (errors name the file and line) and creates it on the
// server; it prints the sweep id on stdout.
func createRemoteSweep(ctx context.Context, cmd *cobra.Command, file string, base *configs.Config, s wandb.Settings, log *slog.Logger) (string, error) {
	spec, err := sweep.Load(file)
	if err != nil {
		return "", err
	}
	if err := spec.Check(base); err != nil {
		return "", err
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	info, err := wandb.UpsertSweep(cctx, s, string(spec.Source), wandb.Options{Logger: log,
		Retry: wandb.RetryPolicy{MaxAttempts: 3}})
	if err != nil {
		return "", fmt.Errorf("create sweep %s on %s: %w", file, s.BaseURL, err)
	}
	for _, w := range info.Warnings {
		log.Warn("sweep config warning", "file", file, "warning", w)
	}
	fmt.Fprintln(cmd.OutOrStdout(), info.ID)
	fmt.Fprintf(os.Stderr, "sweep %s created in %s/%s (%s, %d trials); join with: mami agent %s\n",
		info.ID, info.Entity, info.Project, spec.Method, spec.TrialCount(), info.ID)
	return info.ID, nil
}

// agentTrial runs the trials an agent is handed.
type agentTrial struct {
	base     *configs.Config
	sweepID  string
	settings wandb.Settings
	log      *slog.Logger
	train    func(ctx context.Context, cfg *configs.Config, opts trainOptions) (*trainOutcome, error)
}

// config is the trial's run config: the base with each argument set by its config key, the controller's
// run id, the sweep id, and tracking to the agent's server.
func (t *agentTrial) config(cmd wandb.AgentCommand) (*configs.Config, error) {
	cfg := t.base.Clone()
	for _, k := range slices.Sorted(maps.Keys(cmd.Args)) {
		if err := cfg.Set(k, cmd.Args[k]); err != nil {
			return nil, fmt.Errorf("sweep %s run %s: parameter %s=%v: %w", t.sweepID, cmd.RunID, k, cmd.Args[k], err)
		}
	}
	cfg.Run.ID = cmd.RunID
	cfg.Run.SweepID = t.sweepID
	if cfg.Run.Group == "" {
		cfg.Run.Group = t.sweepID
	}
	cfg.Tracking.Mode = "online"
	cfg.Tracking.BaseURL = t.settings.BaseURL
	if cfg.Tracking.APIKey == "" {
		cfg.Tracking.APIKey = t.settings.APIKey
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sweep %s run %s: %w", t.sweepID, cmd.RunID, err)
	}
	return cfg, nil
}

func (t *agentTrial) run(ctx context.Context, cmd wandb.AgentCommand) error {
	cfg, err := t.config(cmd)
	if err != nil {
		return err
	}
	out, err := t.train(ctx, cfg, trainOptions{Logger: t.log, Quiet: true})
	if out != nil {
		fmt.Fprintf(os.Stderr, "run %s %s: %s\n", cfg.Run.ID, out.State, out.RunDir)
	}
	return err
}
