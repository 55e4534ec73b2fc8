package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/plots"
	"github.com/mami-lab/mami/report"
	"github.com/mami-lab/mami/runs"
)

func init() { register(newReportCmd) }

func newReportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "turn a sweep or a set of runs into paper figures, a results table and a report",
		Long: `Gather the runs of a sweep (or the runs given by id), compare the fusions at their best learning
rates, score each fusion's best checkpoint on the test split with bootstrap confidence intervals, and write
into the output folder:

  figures/   loss, lr_sensitivity, heatmap, roc_pr, confusion, test_f1, reproduction — each as PDF, SVG, PNG,
             sized for one (3.3 in) or two (7 in) paper columns
  report.md, report.html   the figures with captions, the results table and each figure's provenance
  results.tex              the results table for LaTeX (booktabs)
  provenance.json          run ids, config paths, code version and machine behind every figure

The reproduction figure needs the study's model trained with its double-softmax head and with the correct
softmax_ce head. The report looks for such a pair among the selected runs and then every run of the work
directory; --repro trains the pair (the seed preset, adjusted by --repro-set) when it is not there yet.`,
		Example: `  mami report                                  # the latest sweep, into <workdir>/reports/<sweep id>
  mami report --sweep swb0a3304e --out paper/figs
  mami report --runs r1,r2,r3 --out /tmp/rep
  mami report --repro --repro-set train.epochs=3`,
		Args: cobra.NoArgs,
		RunE: runReport,
	}
	f := cmd.Flags()
	f.String("sweep", "", "sweep id (default: the latest sweep of the work directory)")
	f.StringSlice("runs", nil, "comma-separated run ids to report instead of a sweep")
	f.String("workdir", "", "work directory holding runs/ and sweeps/ (default: $MAMI_WORKDIR or .mami)")
	f.String("out", "", "output folder (default: <workdir>/reports/<sweep id>)")
	f.Bool("repro", false, "train the reproduction pair (seed preset with double_softmax and with softmax_ce) if it is missing")
	f.StringArray("repro-set", nil, "override a config key of the reproduction runs, e.g. train.epochs=3 (repeatable)")
	f.Int("resamples", report.DefaultResamples, "bootstrap resamples of the confidence intervals")
	f.Uint64("seed", 1, "seed of the bootstrap resampling")
	f.Int("dpi", plots.DefaultDPI, "resolution of the PNG figures")
	return cmd
}

func runReport(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	f := cmd.Flags()
	log, err := newLogger(cmd, os.Stderr)
	if err != nil {
		return err
	}
	workdir, _ := f.GetString("workdir")
	if workdir == "" {
		workdir = os.Getenv("MAMI_WORKDIR")
	}
	if workdir == "" {
		workdir = configs.Default().Workdir
	}
	opts := report.Options{Workdir: workdir, Logger: log}
	opts.SweepID, _ = f.GetString("sweep")
	opts.RunIDs, _ = f.GetStringSlice("runs")
	opts.Out, _ = f.GetString("out")
	opts.Resamples, _ = f.GetInt("resamples")
	opts.Seed, _ = f.GetUint64("seed")
	opts.DPI, _ = f.GetInt("dpi")
	if opts.Resamples < 1 {
		return fmt.Errorf("--resamples %d: want at least 1", opts.Resamples)
	}
	if repro, _ := f.GetBool("repro"); repro {
		sets, _ := f.GetStringArray("repro-set")
		ids, err := ensureRepro(cmd, log, workdir, sets)
		if err != nil {
			return err
		}
		opts.ReproRuns = ids
	}
	rep, err := report.Generate(ctx, opts)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "report of %s written to %s\n", rep.Selection, rep.Out)
	for _, fi := range rep.Figures {
		if fi.Skipped != "" {
			fmt.Fprintf(w, "  %-15s not drawn: %s\n", fi.Name, fi.Skipped)
		} else {
			fmt.Fprintf(w, "  %-15s %s.{pdf,svg,png}\n", fi.Name, filepath.Join(rep.Out, report.FiguresDir, fi.Name))
		}
	}
	for _, name := range []string{report.MarkdownFile, report.HTMLFile, report.TeXFile} {
		fmt.Fprintf(w, "  %s\n", filepath.Join(rep.Out, name))
	}
	return nil
}

// ensureRepro returns the ids of a finished reproduction pair for the seed
// preset (with sets applied), training whichever run of the pair is missing.
func ensureRepro(cmd *cobra.Command, log *slog.Logger, workdir string, sets []string) ([]string, error) {
	base := append([]string{"workdir=" + workdir}, sets...)
	load := func(head string) (*configs.Config, error) {
		cfg, err := configs.Load(configs.LoadOptions{File: "seed", Environ: os.Environ(), Sets: slices.Concat(base, []string{"model.head=" + head})})
		if err != nil {
			return nil, fmt.Errorf("reproduction config: %w", err)
		}
		return cfg, nil
	}
	faithful, err := load("double_softmax")
	if err != nil {
		return nil, err
	}
	if pair := report.FindReproFor(report.ReproCandidates(workdir), faithful); pair != nil {
		log.Info("reproduction runs found", "double_softmax", pair.Faithful.ID, "softmax_ce", pair.Correct.ID)
		return []string{pair.Faithful.ID, pair.Correct.ID}, nil
	}
	var ids []string
	for _, head := range []string{"double_softmax", "softmax_ce"} {
		cfg, err := load(head)
		if err != nil {
			return nil, err
		}
		cfg.Run.Name = "repro-" + head
		cfg.Run.Tags = append(cfg.Run.Tags, "repro")
		log.Info("training reproduction run", "head", head, "epochs", cfg.Train.Epochs)
		out, err := trainRun(cmd.Context(), cfg, trainOptions{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("reproduction run (%s head): %w", head, err)
		}
		if out.State != runs.StateFinished {
			return nil, fmt.Errorf("reproduction run %s (%s head) ended %s", out.RunID, head, out.State)
		}
		ids = append(ids, out.RunID)
	}
	return ids, nil
}
