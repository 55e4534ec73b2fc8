package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/data"
	"github.com/mami-lab/mami/experiments"
	"github.com/mami-lab/mami/plots"
	"github.com/mami-lab/mami/runs"
	"github.com/mami-lab/mami/runs/wandb"
)

// trainOptions configures trainRun.
type trainOptions struct {
	// Logger receives the run's log lines (they are also written to the run's output.log).
	Logger *slog.Logger
	// Quiet turns the per-epoch progress display off (sweep trials).
	Quiet bool
	// ExtraSinks receive every history row and summary after the local record has them.
	ExtraSinks []experiments.Sink
}

// trainOutcome is what one training run left behind.
type trainOutcome struct {
	RunDir  string
	RunID   string
	Summary map[string]any
	State   string // runs.StateFinished, runs.StateFailed or runs.StateStopped
}

// dataCache keeps loaded datasets for the life of the process, so the trials of a sweep share them.
var dataCache struct {
	sync.Mutex
	sets map[string]*data.Splits
}

func loadData(ctx context.Context, cfg *configs.Config) (*data.Splits, error) {
	key := fmt.Sprintf("%+v/%d", cfg.Data, cfg.Run.Seed)
	dataCache.Lock()
	defer dataCache.Unlock()
	if ds, ok := dataCache.sets[key]; ok {
		return ds, nil
	}
	ds, err := data.Load(ctx, cfg.Data, cfg.Run.Seed)
	if err != nil {
		return nil, err
	}
	if dataCache.sets == nil {
		dataCache.sets = map[string]*data.Splits{}
	}
	dataCache.sets[key] = ds
	return ds, nil
}

// trainRun trains the run cfg describes and records it under cfg.Workdir: what `mami train` does, and what
// every sweep trial does. Errors before the run record exists are returned as they are; once it exists the
// run is always finished with a state, and its directory is returned even when training failed.
func trainRun(ctx context.Context, cfg *configs.Config, opts trainOptions) (*trainOutcome, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	newBackend, err := resolveDevice(cfg, log)
	if err != nil {
		return nil, err
	}
	track, upload, err := trackingSettings(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if cfg.Run.ID == "" {
		cfg.Run.ID = configs.NewRunID(time.Now(), nil)
	}
	ds, err := loadData(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("load data: %w", err)
	}
	rec, err := runs.Create(ctx, cfg.Workdir, cfg)
	if err != nil {
		return nil, err
	}
	out := &trainOutcome{RunDir: rec.Dir(), RunID: rec.ID()}
	log = slog.New(teeHandler{log.Handler(), slog.NewTextHandler(rec.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})})
	log.Info("run started", "dir", rec.Dir(), "fusion", cfg.Model.Fusion, "head", cfg.Model.Head, "lr", cfg.Train.LR,
		"train", ds.Train.Len(), "val", ds.Val.Len(), "test", ds.Test.Len())

	sinks := []runs.Sink{rec}
	trainCtx, cancelTrain := context.WithCancel(ctx)
	defer cancelTrain()
	var stream *wandb.Stream
	if track != nil {
		if track.RunID == "" {
			track.RunID = rec.ID()
		}
		if stream, err = startStream(ctx, rec.Dir(), track, upload, log); err != nil {
			_ = rec.Finish(context.WithoutCancel(ctx), runs.StateFailed, 1)
			return out, err
		}
		sinks = append(sinks, stream)
		go func() {
			select {
			case <-stream.Stopped():
				log.Warn("the tracking server asked to stop this run; stopping after the current step")
				cancelTrain()
			case <-trainCtx.Done():
			}
		}()
	}
	for _, s := range opts.ExtraSinks {
		sinks = append(sinks, s)
	}
	var prog experiments.Progress
	if !opts.Quiet {
		prog = newProgress(cfg.Train.Epochs)
	}
	res, trainErr := experiments.Train(trainCtx, cfg, ds, runs.MultiSink(sinks...), experiments.Options{
		Logger:        log,
		Progress:      prog,
		CheckpointDir: rec.CheckpointDir(),
		NewBackend:    newBackend,
	})
	state, code := runs.StateFinished, 0
	switch {
	case trainErr != nil:
		state, code = runs.StateFailed, 1
		log.Error("training failed", "err", trainErr)
	case res.Stopped:
		state, code = runs.StateStopped, 130
		log.Warn("training stopped before the end; what was done is recorded")
	}
	if res != nil {
		out.Summary = res.Summary
	}
	if figs, err := renderRunPlots(ctx, rec, cfg); err != nil {
		log.Warn("run plots not written", "err", err)
	} else {
		log.Info("run plots written", "files", figs)
	}
	out.State = state
	var errs []error
	if err := rec.Finish(context.WithoutCancel(ctx), state, code); err != nil {
		errs = append(errs, fmt.Errorf("finish run record: %w", err))
	}
	if stream != nil {
		if terminated.Load() {
			stream.Preempting()
		}
		if err := stream.Finish(context.WithoutCancel(ctx), code); err != nil {
			// The run is complete on disk; what did not reach the server is not lost.
			log.Warn("tracking: not everything reached the server; send the rest with `mami sync "+rec.Dir()+"`", "err", err)
		}
	}
	return out, errors.Join(append([]error{trainErr}, errs...)...)
}

// renderRunPlots draws the run's figures into its plots directory: the loss curves, and ROC/PR curves and
// the confusion matrix of its best checkpoint on the test split when it has one.
func renderRunPlots(ctx context.Context, rec *runs.Recorder, cfg *configs.Config) ([]string, error) {
	run, err := runs.Open(rec.Dir())
	if err != nil {
		return nil, err
	}
	hist, err := run.History()
	if err != nil {
		return nil, err
	}
	opts := plots.LossOptions{Title: fmt.Sprintf("%s · %s · lr %g", cfg.Model.Fusion, cfg.Model.Head, cfg.Train.LR)}
	if cfg.Model.Head == "double_softmax" {
		// The study's faithful head: draw what the study reported beside the run's own curve.
		ref := plots.SeedStudy
		opts.Reference = &ref
	}
	figs, err := plots.Loss(rec.PlotDir(), hist, opts)
	if err != nil {
		return nil, err
	}
	more, err := plots.RunFigures(context.WithoutCancel(ctx), rec.Dir())
	return append(figs, more...), err
}

// resolveDevice checks cfg.Device against what this binary can do, settles "auto" and returns the
// trainer's backend constructor (nil: the CPU backend).
func resolveDevice(cfg *configs.Config, log *slog.Logger) (experiments.NewBackendFunc, error) {
	return selectDevice(cfg, log) // device_cuda.go or device_nocuda.go, by build tag
}

// teeHandler sends each record to two handlers.
type teeHandler struct{ a, b slog.Handler }

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.a.Enabled(ctx, l) || t.b.Enabled(ctx, l)
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errA, errB error
	if t.a.Enabled(ctx, r.Level) {
		errA = t.a.Handle(ctx, r.Clone())
	}
	if t.b.Enabled(ctx, r.Level) {
		errB = t.b.Handle(ctx, r)
	}
	return errors.Join(errA, errB)
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{t.a.WithAttrs(as), t.b.WithAttrs(as)}
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{t.a.WithGroup(name), t.b.WithGroup(name)}
}
