package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/experiments"
	"github.com/mami-lab/mami/experiments/sweep"
	"github.com/mami-lab/mami/runs"
)

func init() { register(newSweepCmd) }

func newSweepCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sweep SWEEP.yaml",
		Short: "run a hyperparameter sweep (W&B sweep format) in local workers",
		Long: `Run every trial of a sweep file in W&B's format (method grid, random or bayes; metric; parameters named
by config keys such as train.lr; early_terminate hyperband; run_cap) on top of the base config, in parallel
local workers. Each trial is a full run recorded like ` + "`mami train`" + `, with run.id <sweep id>-t<K>,
run.sweep_id and run.group set.

The sweep id comes from the sweep file and the base config, so running the same command again resumes the
sweep: finished trials are kept, trials cut off are run again. State: <workdir>/sweeps/<id>/state.json.

--trial K runs only trial K of a grid or random sweep (the same parameters on every machine), and
--emit slurm prints an sbatch array script that runs each trial as one array task.`,
		Example: `  mami sweep configs/sweeps/fusion-lr.yaml
  mami sweep configs/sweeps/fusion-lr.yaml -c seed --parallel 2 --set train.epochs=3
  mami sweep configs/sweeps/fusion-lr.yaml --emit slurm > sweep.sbatch && sbatch sweep.sbatch
  mami sweep configs/sweeps/fusion-lr.yaml --trial 5`,
		Args: cobra.ExactArgs(1),
		RunE: runSweep,
	}
	addConfigFlags(cmd)
	cmd.Flags().Int("parallel", 0, "trials run at once (default: the number of CPUs)")
	cmd.Flags().Int("trial", -1, "run only trial K (0-based) of a grid or random sweep")
	cmd.Flags().String("emit", "", "print a job script instead of running: slurm")
	cmd.Flags().Bool("dry-run", false, "list the trials (run id and parameters) without running them")
	return cmd
}

func runSweep(cmd *cobra.Command, args []string) error {
	file := args[0]
	spec, err := sweep.Load(file)
	if err != nil {
		return err
	}
	base, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	id, err := sweep.ID(spec, base)
	if err != nil {
		return err
	}
	if emit, _ := cmd.Flags().GetString("emit"); emit != "" {
		if emit != "slurm" {
			return fmt.Errorf("--emit %q: the only job script format is slurm", emit)
		}
		cfgFile, _ := cmd.Flags().GetString("config")
		sets, _ := cmd.Flags().GetStringArray("set")
		return sweep.EmitSlurm(cmd.OutOrStdout(), spec, sweep.SlurmOptions{SweepFile: file, Config: cfgFile, Sets: sets})
	}
	if err := spec.Check(base); err != nil {
		return err
	}
	if dry, _ := cmd.Flags().GetBool("dry-run"); dry {
		k, _ := cmd.Flags().GetInt("trial")
		return listTrials(cmd, spec, id, k)
	}
	log, err := newLogger(cmd, os.Stderr)
	if err != nil {
		return err
	}
	dir := sweep.Dir(base.Workdir, id)
	trial := &sweepTrial{dir: dir, log: trialLogger(cmd)}
	if k, _ := cmd.Flags().GetInt("trial"); k >= 0 {
		return runOneTrial(cmd, spec, base, id, k, trial)
	}
	parallel, _ := cmd.Flags().GetInt("parallel")
	tty := term.IsTerminal(int(os.Stderr.Fd()))
	display := sweep.NewDisplay(os.Stderr, tty, spec)
	fmt.Fprintf(os.Stderr, "sweep %s (%s, %s, %d trials): state in %s\n", id, spec.Name, spec.Method, spec.TrialCount(), dir)
	r := &sweep.Runner{Spec: spec, Base: base, ID: id, Dir: dir, Parallel: parallel, Trial: trial.run, OnChange: display.Update}
	if !tty {
		r.Logger = log
	}
	st, runErr := r.Run(cmd.Context())
	display.Close()
	if st != nil {
		if err := sweep.WriteTable(cmd.OutOrStdout(), spec, st); err != nil {
			return errors.Join(runErr, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "sweep %s: %s\n", id, filepath.Join(dir, sweep.StateFile))
	}
	if runErr != nil && errors.Is(runErr, context.Canceled) {
		return exitError{code: 130, err: runErr}
	}
	return runErr
}

// listTrials prints the run id and parameters of trial k, or of every trial when k < 0.
func listTrials(cmd *cobra.Command, spec *sweep.Spec, id string, k int) error {
	w := cmd.OutOrStdout()
	if spec.Method == sweep.MethodBayes {
		return fmt.Errorf("sweep %s: bayes trials are proposed from earlier results; there is no list before running", spec.File)
	}
	first, last := 0, spec.TrialCount()-1
	if k >= 0 {
		first, last = k, k
	}
	for i := first; i <= last; i++ {
		params, err := spec.TrialParams(i)
		if err != nil {
			return fmt.Errorf("sweep %s: %w", spec.File, err)
		}
		fmt.Fprintf(w, "%s %s\n", sweep.TrialRunID(id, i), sweep.FormatParams(spec, params))
	}
	return nil
}

// runOneTrial runs trial k alone (a Slurm array task): no sweep state is written, since array tasks run at
// the same time; the run record is the result. Hyperband does not apply to isolated trials.
func runOneTrial(cmd *cobra.Command, spec *sweep.Spec, base *configs.Config, id string, k int, trial *sweepTrial) error {
	params, err := spec.TrialParams(k)
	if err != nil {
		return fmt.Errorf("sweep %s: %w", spec.File, err)
	}
	cfg, err := spec.TrialConfig(base, id, k, params)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "sweep %s trial %d/%d: %s\n", id, k, spec.TrialCount(), sweep.FormatParams(spec, params))
	res, err := trial.run(cmd.Context(), cfg, func(int, map[string]float64) {})
	fmt.Fprintf(w, "run %s %s: %s\n", cfg.Run.ID, res.State, res.RunDir)
	if m := sweep.MetricOf(res.Summary, spec.Metric.Name); spec.Metric.Name != "" && !math.IsNaN(m) {
		fmt.Fprintf(w, "  %s %.4f\n", spec.Metric.Name, m)
	}
	if err != nil {
		return err
	}
	if res.State == sweep.OutcomeStopped {
		return exitError{code: 130, err: fmt.Errorf("trial %d stopped before the end", k)}
	}
	return nil
}

// trialLogger is the logger trials get: warnings and errors only unless --log-level is debug (every line
// also goes to the run's output.log).
func trialLogger(cmd *cobra.Command) *slog.Logger {
	name, _ := cmd.Flags().GetString("log-level")
	level := slog.LevelWarn
	if strings.EqualFold(name, "debug") {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// sweepTrial runs one trial as a recorded run.
type sweepTrial struct {
	dir string // the sweep directory; earlier attempts of a trial are moved under it
	log *slog.Logger
}

// run trains cfg like `mami train`, feeding epoch-end rows to report. A trial whose run record already says
// finished (the process died before the sweep state caught up) is not trained again; a record left by an
// unfinished attempt is moved to <sweep dir>/attempts/ so the trial can reuse its run id.
func (t *sweepTrial) run(ctx context.Context, cfg *configs.Config, report func(int, map[string]float64)) (sweep.Result, error) {
	runDir := filepath.Join(cfg.Workdir, "runs", cfg.Run.ID)
	if prev, err := runs.Open(runDir); err == nil {
		if prev.Meta().State == runs.StateFinished {
			sum, err := prev.Summary()
			if err == nil {
				replayEpochs(prev, report)
				return sweep.Result{State: sweep.OutcomeFinished, Summary: sum, RunDir: runDir}, nil
			}
		}
	}
	if err := moveAside(runDir, filepath.Join(t.dir, "attempts")); err != nil {
		return sweep.Result{State: sweep.OutcomeFailed}, err
	}
	out, err := trainRun(ctx, cfg, trainOptions{Logger: t.log, Quiet: true, ExtraSinks: []experiments.Sink{sweep.EpochReporter(report)}})
	if out == nil {
		return sweep.Result{State: sweep.OutcomeFailed}, err
	}
	res := sweep.Result{Summary: out.Summary, RunDir: out.RunDir}
	switch out.State {
	case runs.StateFinished:
		res.State = sweep.OutcomeFinished
	case runs.StateStopped:
		res.State = sweep.OutcomeStopped
	default:
		res.State = sweep.OutcomeFailed
	}
	return res, err
}

// moveAside renames an existing run directory to dest/<name>.<n> with the first free n.
func moveAside(runDir, dest string) error {
	if _, err := os.Stat(runDir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("move earlier attempt aside: %w", err)
	}
	for n := 1; ; n++ {
		target := filepath.Join(dest, fmt.Sprintf("%s.%d", filepath.Base(runDir), n))
		if _, err := os.Stat(target); errors.Is(err, fs.ErrNotExist) {
			if err := os.Rename(runDir, target); err != nil {
				return fmt.Errorf("move earlier attempt aside: %w", err)
			}
			return nil
		}
	}
}

// replayEpochs feeds the epoch-end rows of a recorded run to report, so hyperband sees the trial's curve.
func replayEpochs(r *runs.Run, report func(int, map[string]float64)) {
	hist, err := r.History()
	if err != nil {
		return
	}
	w := sweep.EpochReporter(report)
	for _, row := range hist {
		_ = w.Log(context.Background(), row)
	}
}
