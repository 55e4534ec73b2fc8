package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mami-lab/mami/experiments"
)

func init() { register(newPredictCmd) }

func newPredictCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "predict RUN",
		Short: "write MAMI's submission file (answer.txt) from a run's best checkpoint",
		Long: `Predict Sub-task A labels with the best checkpoint of RUN (a run directory, or a run id under the work
directory) and write them in MAMI's submission format: one "file_name<TAB>label" line per meme, no header.
By default it predicts the dataset's official test set and writes answer.txt into the run directory.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			split, _ := cmd.Flags().GetString("split")
			out, _ := cmd.Flags().GetString("out")
			net, _, set, err := loadRunSplit(cmd, args[0], split)
			if err != nil {
				return err
			}
			if out == "" {
				dir, _ := runDir(cmd, args[0])
				out = filepath.Join(dir, "answer.txt")
			}
			f, err := os.Create(out)
			if err != nil {
				return fmt.Errorf("write predictions: %w", err)
			}
			defer func() { err = errors.Join(err, f.Close()) }()
			w := bufio.NewWriter(f)
			preds, err := experiments.Predict(net, set)
			if err != nil {
				return fmt.Errorf("predict: %w", err)
			}
			if err := experiments.WriteAnswer(w, preds); err != nil {
				return fmt.Errorf("write predictions %s: %w", out, err)
			}
			if err := w.Flush(); err != nil {
				return fmt.Errorf("write predictions %s: %w", out, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d predictions to %s\n", set.Len(), out)
			return nil
		},
	}
	cmd.Flags().String("split", "official", "split to predict: train, val, test or official")
	cmd.Flags().String("out", "", "output file (default: answer.txt in the run directory)")
	cmd.Flags().String("workdir", "", "work directory holding runs/ (default: $MAMI_WORKDIR or .mami)")
	return cmd
}
