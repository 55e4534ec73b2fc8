package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/data"
	"github.com/mami-lab/mami/experiments"
	"github.com/mami-lab/mami/models"
)

func init() { register(newEvalCmd) }

func newEvalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval RUN",
		Short: "score a run's best checkpoint on a split (loss, accuracy, macro-F1, AUROC, confusion matrix)",
		Long: `Score the best checkpoint of RUN (a run directory, or a run id under the work directory) on a split of
the data it was trained on: train, val, test (the held-out part of the training file) or official (the
dataset's own test set, which needs labels). Prints the metrics as JSON.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			split, _ := cmd.Flags().GetString("split")
			net, cfg, set, err := loadRunSplit(cmd, args[0], split)
			if err != nil {
				return err
			}
			m, err := experiments.Evaluate(net, set)
			if err != nil {
				return fmt.Errorf("evaluate %s on %s: %w", cfg.Run.ID, split, err)
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]any{"run": cfg.Run.ID, "split": split, "n": set.Len(), "metrics": m})
		},
	}
	cmd.Flags().String("split", "test", "split to score: train, val, test or official")
	cmd.Flags().String("workdir", "", "work directory holding runs/ (default: $MAMI_WORKDIR or .mami)")
	return cmd
}

// runDir resolves a run argument: an existing directory, or a run id under the work directory.
func runDir(cmd *cobra.Command, arg string) (string, error) {
	if st, err := os.Stat(arg); err == nil && st.IsDir() {
		return arg, nil
	}
	workdir, _ := cmd.Flags().GetString("workdir")
	if workdir == "" {
		workdir = os.Getenv("MAMI_WORKDIR")
	}
	if workdir == "" {
		workdir = configs.Default().Workdir
	}
	dir := filepath.Join(workdir, "runs", arg)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("run %q: not a directory and not a run id under %s", arg, filepath.Join(workdir, "runs"))
	}
	return dir, nil
}

// loadRunSplit loads the best checkpoint of a run and the named split of the data it was trained on.
func loadRunSplit(cmd *cobra.Command, arg, split string) (*models.Net, *configs.Config, *data.Set, error) {
	dir, err := runDir(cmd, arg)
	if err != nil {
		return nil, nil, nil, err
	}
	net, cfg, err := experiments.LoadCheckpoint(filepath.Join(dir, "checkpoints"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("run %s: %w", dir, err)
	}
	ds, err := loadData(cmd.Context(), cfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load data: %w", err)
	}
	var set *data.Set
	switch split {
	case "train":
		set = ds.Train
	case "val":
		set = ds.Val
	case "test":
		set = ds.Test
	case "official":
		set = ds.Official
	default:
		return nil, nil, nil, fmt.Errorf("--split %q: want train, val, test or official", split)
	}
	if set == nil || set.Len() == 0 {
		return nil, nil, nil, fmt.Errorf("--split %s: the dataset %s has no such split", split, cfg.Data.Dataset)
	}
	return net, cfg, set, nil
}
