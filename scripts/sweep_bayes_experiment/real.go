package main

import (
	"context"
	"fmt"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/data"
	"github.com/mami-lab/mami/experiments"
	"github.com/mami-lab/mami/experiments/sweep"
)

// realTrainer returns a TrialFunc that trains with experiments.Train on the synthetic dataset, loaded once.
// Runs are not recorded: the experiment measures the search, not the run record.
func realTrainer(ctx context.Context) (sweep.TrialFunc, error) {
	base := configs.Default()
	ds, err := data.Load(ctx, base.Data, base.Run.Seed)
	if err != nil {
		return nil, fmt.Errorf("load data: %w", err)
	}
	return func(ctx context.Context, cfg *configs.Config, report func(int, map[string]float64)) (sweep.Result, error) {
		if cfg.Data != base.Data || cfg.Run.Seed != base.Run.Seed {
			return sweep.Result{State: sweep.OutcomeFailed}, fmt.Errorf("the experiment sweeps no data or seed keys")
		}
		res, err := experiments.Train(ctx, cfg, ds, sweep.EpochReporter(report), experiments.Options{})
		if err != nil {
			return sweep.Result{State: sweep.OutcomeFailed}, err
		}
		state := sweep.OutcomeFinished
		if res.Stopped {
			state = sweep.OutcomeStopped
		}
		return sweep.Result{State: state, Summary: res.Summary}, nil
	}, nil
}
