package report

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/mami-lab/mami/plots"
)

// FigureInfo describes one figure of the report.
type FigureInfo struct {
	// Name is the file name without extension; Title the heading.
	Name, Title, Caption string
	// Files are the paths written, relative to the report folder.
	Files []string
	// Runs are the ids of the runs drawn.
	Runs []string
	// Skipped says why the figure was not drawn (empty when it was).
	Skipped string
	fig     *plots.Figure
}

func armLabel(a *Arm) string { return fmt.Sprintf("%s (lr %s)", a.Name, plots.FormatLR(a.BestLR)) }

func armKey(a *Arm, an *Analysis) string {
	for _, b := range an.Arms {
		if b != a && b.Fusion == a.Fusion {
			return a.Name // several heads of one fusion: keep their styles apart
		}
	}
	return a.Fusion
}

// buildFigures makes every figure the analysis allows; a figure that
// cannot be drawn is listed with the reason.
func buildFigures(an *Analysis, repro *Repro) []*FigureInfo {
	var out []*FigureInfo
	add := func(info *FigureInfo, f *plots.Figure, err error) {
		if err != nil {
			info.Skipped = err.Error()
		}
		info.fig = f
		out = append(out, info)
	}

	// Loss curves at each arm's best learning rate.
	{
		info := &FigureInfo{Name: "loss", Title: "Loss curves at each fusion's best learning rate"}
		var train, val []plots.Series
		seeds := 0
		for _, a := range an.Arms {
			c := a.BestCell()
			st := plots.Series{Label: armLabel(a), Key: armKey(a, an)}
			sv := st
			for _, r := range c.Runs {
				st.Runs = append(st.Runs, plots.EpochMetric(r.History, "train/epoch_loss"))
				sv.Runs = append(sv.Runs, plots.EpochMetric(r.History, "val/loss"))
				info.Runs = append(info.Runs, r.ID)
			}
			seeds = max(seeds, len(c.Runs))
			train, val = append(train, st), append(val, sv)
		}
		band := ""
		if seeds > 1 {
			band = " Lines are the mean over seeds; bands span the lowest to the highest seed."
		}
		info.Caption = "Training loss (mean over each epoch's steps) and validation loss per epoch of every fusion, each at the learning rate with the best final validation macro-F1." + band
		f, err := plots.Curves(info.Name, plots.TwoColumn, 2.7*vg.Inch, []plots.CurvePanel{
			{Title: "(a) training loss", XLabel: "epoch", YLabel: "loss (epoch mean)", Series: train, Epochs: true},
			{Title: "(b) validation loss", XLabel: "epoch", YLabel: "loss", Series: val, Epochs: true},
		})
		add(info, f, err)
	}

	// Learning-rate sensitivity.
	{
		info := &FigureInfo{Name: "lr_sensitivity", Title: "Learning-rate sensitivity"}
		var series []plots.Series
		seeds := 0
		for _, a := range an.Arms {
			bySeed := map[int64]plotter.XYs{}
			for _, lr := range a.LRs {
				for _, r := range a.Cells[lr].Runs {
					if !math.IsNaN(r.FinalVal) {
						bySeed[r.Config.Run.Seed] = append(bySeed[r.Config.Run.Seed], plotter.XY{X: lr, Y: r.FinalVal})
					}
					info.Runs = append(info.Runs, r.ID)
				}
			}
			s := plots.Series{Label: a.Name, Key: armKey(a, an)}
			for _, seed := range sortedKeys(bySeed) {
				s.Runs = append(s.Runs, bySeed[seed])
			}
			seeds = max(seeds, len(s.Runs))
			series = append(series, s)
		}
		info.Caption = "Validation macro-F1 after the last epoch against the learning rate (log scale), one line per fusion."
		if seeds > 1 {
			info.Caption += " Lines are the mean over seeds; bands span the lowest to the highest seed."
		}
		h := 2.6*vg.Inch + legendHeight(len(series))
		f, err := plots.Curves(info.Name, plots.OneColumn, h, []plots.CurvePanel{{
			XLabel: "learning rate", YLabel: "final validation macro-F1", Series: series, LogX: true, Markers: true,
		}})
		add(info, f, err)
	}

	// Fusion × learning-rate heatmap.
	{
		info := &FigureInfo{Name: "heatmap", Title: "Validation macro-F1 by fusion and learning rate"}
		h := plots.Heatmap{XLabel: "learning rate", YLabel: "fusion"}
		for _, lr := range an.LRs {
			h.Cols = append(h.Cols, plots.FormatLR(lr))
		}
		for _, a := range an.Arms {
			h.Rows = append(h.Rows, a.Name)
			row := make([]float64, len(an.LRs))
			for j, lr := range an.LRs {
				row[j] = math.NaN()
				if c := a.Cells[lr]; c != nil {
					row[j] = c.Mean
					for _, r := range c.Runs {
						info.Runs = append(info.Runs, r.ID)
					}
				}
			}
			h.Values = append(h.Values, row)
		}
		info.Caption = "Final validation macro-F1 (mean over seeds) of every fusion at every learning rate; the colour runs from the lowest value (dark) to the highest (yellow); – marks a combination not run."
		width := plots.OneColumn
		if len(an.LRs) > 5 {
			width = plots.TwoColumn
		}
		f, err := plots.NewHeatmap(info.Name, width, 0.9*vg.Inch+vg.Length(len(h.Rows))*0.32*vg.Inch, h)
		add(info, f, err)
	}

	// ROC and PR on the test split.
	var scored []plots.Scored
	var scoredRuns []string
	for _, a := range an.Arms {
		if a.Test != nil && a.Test.Scores != nil {
			scored = append(scored, plots.Scored{Label: armLabel(a), Key: armKey(a, an), Labels: a.Test.Scores.Labels, Prob: a.Test.Scores.Prob})
			scoredRuns = append(scoredRuns, a.Best.ID)
		}
	}
	{
		info := &FigureInfo{Name: "roc_pr", Title: "ROC and precision–recall curves on the test split", Runs: scoredRuns,
			Caption: "ROC (a) and precision–recall (b) curves of each fusion's best model (best learning rate, best seed by validation macro-F1, best-epoch checkpoint) on the held-out test split. Grey dashes: chance."}
		var f *plots.Figure
		var err error
		if len(scored) == 0 {
			err = fmt.Errorf("no best model has a checkpoint to score")
		} else {
			f, err = plots.NewROCPR(info.Name, plots.TwoColumn, 3*vg.Inch+legendHeight(len(scored)+1), scored)
		}
		add(info, f, err)
	}

	// Confusion matrix of the winner.
	{
		info := &FigureInfo{Name: "confusion", Title: "Confusion matrix of the best model"}
		var f *plots.Figure
		var err error
		w := an.Winner
		switch {
		case w == nil:
			err = fmt.Errorf("no arm has a validation score")
		case w.Test == nil || w.Test.Scores == nil:
			err = fmt.Errorf("the best model (%s) has no checkpoint to score", w.Name)
		default:
			info.Runs = []string{w.Best.ID}
			info.Caption = fmt.Sprintf("Test-split confusion matrix of %s at lr %s (run %s, the highest validation macro-F1), threshold 0.5. Each cell gives the count and its share of the true class; the colour encodes that share.",
				w.Name, plots.FormatLR(w.BestLR), w.Best.ID)
			f, err = plots.NewConfusion(info.Name, fmt.Sprintf("%s, lr %s, test split", w.Name, plots.FormatLR(w.BestLR)), plots.OneColumn, 2.8*vg.Inch, w.Test.Confusion)
		}
		add(info, f, err)
	}

	// Test macro-F1 with bootstrap intervals.
	{
		info := &FigureInfo{Name: "test_f1", Title: "Test macro-F1 with 95% bootstrap confidence intervals"}
		var items []plots.Interval
		resamples := 0
		for _, a := range an.Arms {
			if a.Test == nil {
				continue
			}
			items = append(items, plots.Interval{Label: armLabel(a), Key: armKey(a, an), Value: a.Test.F1.Value, Lo: a.Test.F1.Lo, Hi: a.Test.F1.Hi})
			info.Runs = append(info.Runs, a.Best.ID)
			if a.Test.Scores != nil {
				resamples = max(resamples, a.Test.F1.Resamples)
			}
		}
		xlabel := "test macro-F1"
		info.Caption = "Macro-F1 of each fusion's best model on the test split."
		if resamples > 0 {
			xlabel += " (95% bootstrap CI)"
			info.Caption += fmt.Sprintf(" Whiskers are 95%% percentile bootstrap intervals (%d resamples of the test split, seeded); a model without a checkpoint has its recorded score and no whisker.", resamples)
		}
		f, err := plots.NewIntervals(info.Name, "", xlabel, plots.OneColumn, 0.75*vg.Inch+vg.Length(len(items))*0.3*vg.Inch, items)
		add(info, f, err)
	}

	// Reproduction.
	{
		info := &FigureInfo{Name: "reproduction", Title: "Reproduction: the study's double-softmax head against the correct head"}
		var f *plots.Figure
		var err error
		if repro == nil {
			err = fmt.Errorf("no pair of finished runs differing only in the head (double_softmax, softmax_ce) was found; `mami report --repro` trains them")
		} else {
			info.Runs = []string{repro.Faithful.ID, repro.Correct.ID}
			cfg := repro.Faithful.Config
			info.Caption = fmt.Sprintf("(a) The study's model (%s fusion, hidden %v, %s at lr %s, effective batch %d, %d epochs, seed %d) with its faithful double-softmax head (cross-entropy applied to softmax probabilities), against the training loss the study reported (0.69 at the start, 0.483 after epoch 10). (b) The same model and seed with the correct softmax cross-entropy head. (c) Validation macro-F1 of both per epoch. The double softmax cannot fall below ln(1+1/e) ≈ 0.313 and shrinks the gradient reaching the logits, which is why the study's loss stayed high; (c) shows what it costs in accuracy.",
				cfg.Model.Fusion, cfg.Model.Hidden, cfg.Train.Optimizer, plots.FormatLR(cfg.Train.LR), cfg.EffectiveBatch(), cfg.Train.Epochs, cfg.Run.Seed)
			f, err = plots.NewReproduction(info.Name, plots.TwoColumn, 2.9*vg.Inch,
				plots.ReproRun{Head: repro.Faithful.Config.Model.Head, History: repro.Faithful.History},
				plots.ReproRun{Head: repro.Correct.Config.Model.Head, History: repro.Correct.History}, plots.SeedStudy)
		}
		add(info, f, err)
	}
	for _, info := range out {
		slices.Sort(info.Runs)
		info.Runs = slices.Compact(info.Runs)
	}
	return out
}

// legendHeight is the room a legend of n entries needs at one-column width
// (two entries a row).
func legendHeight(n int) vg.Length {
	return vg.Length((n+1)/2) * 0.14 * vg.Inch
}

func sortedKeys[V any](m map[int64]V) []int64 {
	ks := make([]int64, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// shortList writes ids, eliding the middle of long lists.
func shortList(ids []string, max int) string {
	if len(ids) <= max {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:max-1], ", ") + fmt.Sprintf(", … (%d runs)", len(ids))
}
