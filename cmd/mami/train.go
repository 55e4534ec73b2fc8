package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mami-lab/mami/runs"
)

func init() { register(newTrainCmd) }

func newTrainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "train",
		Short: "train a fusion classifier and record the run under the work directory",
		Long: `Train a fusion classifier on CLIP features and record the run: config.yaml, history.jsonl,
summary.json, output.log, the best checkpoint and the loss figure, under <workdir>/runs/<run.id>/.

Config precedence: defaults < -c FILE < MAMI_* environment < --set key=value.`,
		Example: `  mami train -c configs/seed.yaml
  mami train -c seed --set model.head=softmax_ce --set train.lr=3e-4
  MAMI_WORKDIR=/tmp/w mami train --set model.fusion=gmu`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			log, err := newLogger(cmd, os.Stderr)
			if err != nil {
				return err
			}
			out, err := trainRun(cmd.Context(), cfg, trainOptions{Logger: log})
			if out != nil {
				printRunResult(cmd, out)
			}
			if err != nil {
				return err
			}
			if out.State == runs.StateStopped {
				return exitError{code: 130, err: fmt.Errorf("run %s stopped before the end; what was done is in %s", out.RunID, out.RunDir)}
			}
			return nil
		},
	}
	addConfigFlags(cmd)
	return cmd
}

// printRunResult prints where a run is and its headline numbers.
func printRunResult(cmd *cobra.Command, out *trainOutcome) {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "run %s %s: %s\n", out.RunID, out.State, out.RunDir)
	keys := make([]string, 0, len(out.Summary))
	for k := range out.Summary {
		if strings.HasPrefix(k, "test/") || strings.HasPrefix(k, "best/") || k == "train/epoch_loss" || k == "perf/train_samples_per_s" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if f, ok := out.Summary[k].(float64); ok {
			fmt.Fprintf(w, "  %-26s %.4f\n", k, f)
		} else {
			fmt.Fprintf(w, "  %-26s %v\n", k, out.Summary[k])
		}
	}
	fmt.Fprintf(w, "  loss figure: %s\n", filepath.Join(out.RunDir, "plots", "loss.png"))
}

// exitError is an error with a process exit status.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }
func (e exitError) ExitCode() int { return e.code }
