package plots

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/data"
	"github.com/mami-lab/mami/experiments"
	"github.com/mami-lab/mami/runs"
)

// Per-run figure names, written into a run's plots/ folder next to loss.png
// and loss.svg.
const (
	RunMetricsFigure   = "metrics"
	RunROCPRFigure     = "roc_pr"
	RunConfusionFigure = "confusion"
)

// DataLoader loads the splits of a data config; data.Load by default. A
// caller scoring many runs passes a caching loader.
type DataLoader func(ctx context.Context, cfg configs.DataConfig, seed int64) (*data.Splits, error)

// TestScores are a model's scores on its run's test split.
type TestScores struct {
	Labels []int
	Prob   []float32
	// Epoch is the epoch of the checkpoint scored.
	Epoch int
}

// ErrNoCheckpoint is returned when a run has no best checkpoint to score.
var ErrNoCheckpoint = errors.New("plots: run has no checkpoint")

// ScoreTest loads the best checkpoint of the run in runDir
// (checkpoints/best.*), loads the run's data with its seed through load
// (data.Load when nil) and scores the test split.
func ScoreTest(ctx context.Context, runDir string, load DataLoader) (*TestScores, error) {
	if load == nil {
		load = data.Load
	}
	ckpt := filepath.Join(runDir, "checkpoints")
	meta, err := experiments.ReadCheckpointMeta(ckpt)
	if err != nil {
		return nil, fmt.Errorf("score %s: %w: %w", runDir, ErrNoCheckpoint, err)
	}
	net, cfg, err := experiments.LoadCheckpoint(ckpt)
	if err != nil {
		return nil, fmt.Errorf("score %s: %w", runDir, err)
	}
	ds, err := load(ctx, cfg.Data, cfg.Run.Seed)
	if err != nil {
		return nil, fmt.Errorf("score %s: load data: %w", runDir, err)
	}
	if ds.Test == nil || ds.Test.Len() == 0 {
		return nil, fmt.Errorf("score %s: the data config has no test split", runDir)
	}
	preds, err := experiments.Predict(net, ds.Test)
	if err != nil {
		return nil, fmt.Errorf("score %s: %w", runDir, err)
	}
	s := &TestScores{Labels: ds.Test.Labels(), Prob: make([]float32, len(preds)), Epoch: meta.Epoch}
	for i, p := range preds {
		s.Prob[i] = p.Prob
	}
	return s, nil
}

// RunFigures draws the per-run figures of the finished run in runDir into
// its plots/ folder, each as PDF, SVG and PNG: metrics (validation
// accuracy, macro-F1 and AUROC per epoch), and, when the run saved a best
// checkpoint, roc_pr and confusion of that checkpoint on the test split.
// The loss figure is Loss's. It returns the paths written; a run without a
// checkpoint gets the metrics figure alone and no error.
func RunFigures(ctx context.Context, runDir string) ([]string, error) {
	return RunFiguresWith(ctx, runDir, RunFigureOptions{})
}

// RunFigureOptions configures RunFiguresWith; the zero value is what
// RunFigures uses.
type RunFigureOptions struct {
	// DPI of the PNGs; DefaultDPI when 0.
	DPI int
	// Load loads the run's data to score its test split; data.Load when nil.
	Load DataLoader
}

// RunFiguresWith is RunFigures with options.
func RunFiguresWith(ctx context.Context, runDir string, opts RunFigureOptions) ([]string, error) {
	run, err := runs.Open(runDir)
	if err != nil {
		return nil, err
	}
	hist, err := run.History()
	if err != nil {
		return nil, err
	}
	out := filepath.Join(runDir, "plots")
	var paths []string
	title := run.ID()
	if cfg, err := run.Config(); err == nil {
		title = fmt.Sprintf("%s · %s · lr %s", cfg.Model.Fusion, cfg.Model.Head, FormatLR(cfg.Train.LR))
	}
	if f, err := RunMetrics(RunMetricsFigure, title, hist); err == nil {
		ps, err := f.Save(out, opts.DPI)
		paths = append(paths, ps...)
		if err != nil {
			return paths, err
		}
	} else if !errors.Is(err, ErrEmpty) {
		return paths, err
	}
	scores, err := ScoreTest(ctx, runDir, opts.Load)
	if errors.Is(err, ErrNoCheckpoint) {
		return paths, nil
	}
	if err != nil {
		return paths, err
	}
	rp, err := NewROCPR(RunROCPRFigure, TwoColumn, 3.3*vg.Inch, []Scored{{Label: "test split", Key: "train", Labels: scores.Labels, Prob: scores.Prob}})
	if err != nil {
		return paths, err
	}
	cm, err := NewConfusion(RunConfusionFigure, fmt.Sprintf("test split, epoch %d checkpoint", scores.Epoch), OneColumn, 2.8*vg.Inch,
		experiments.NewConfusion(scores.Labels, experiments.PredictLabels(scores.Prob)))
	if err != nil {
		return paths, err
	}
	for _, f := range []*Figure{rp, cm} {
		ps, err := f.Save(out, opts.DPI)
		paths = append(paths, ps...)
		if err != nil {
			return paths, err
		}
	}
	return paths, nil
}

// RunMetrics is the validation metrics of one run per epoch: accuracy,
// macro-F1 and AUROC on one axis (all lie in [0, 1]).
func RunMetrics(name, title string, history []map[string]any) (*Figure, error) {
	var series []Series
	for _, m := range []struct{ key, label string }{
		{"val/acc", "accuracy"}, {"val/f1_macro", "macro-F1"}, {"val/auroc", "AUROC"},
	} {
		if xys := EpochMetric(history, m.key); len(xys) > 0 {
			series = append(series, Series{Label: "val " + m.label, Key: m.key, Runs: []plotter.XYs{xys}})
		}
	}
	if len(series) == 0 {
		return nil, fmt.Errorf("plots: figure %s: %w", name, ErrEmpty)
	}
	return Curves(name, OneColumn, 2.6*vg.Inch, []CurvePanel{{
		Title: title, XLabel: "epoch", YLabel: "validation score", Series: series, Epochs: true, Markers: true,
	}})
}
