package sweep

import "context"

// epochEndKey is the history key the trainer writes only on the last row of each epoch.
const epochEndKey = "train/epoch_loss"

// EpochReporter is a trainer sink (it has the method set of experiments.Sink) that hands the numeric
// metrics of each epoch-end history row to a trial's report function, which is how hyperband sees a
// running trial's curve.
type EpochReporter func(epoch int, metrics map[string]float64)

// Log reports rows that end an epoch; other rows are ignored.
func (r EpochReporter) Log(_ context.Context, row map[string]any) error {
	if _, ok := row[epochEndKey]; !ok {
		return nil
	}
	epoch, ok := toFloat(row["epoch"])
	if !ok || epoch < 1 {
		return nil
	}
	metrics := make(map[string]float64, len(row))
	for k, v := range row {
		if f, ok := toFloat(v); ok {
			metrics[k] = f
		}
	}
	r(int(epoch), metrics)
	return nil
}

// Summary ignores summaries: the sweep reads the final one from the trial's outcome.
func (r EpochReporter) Summary(context.Context, map[string]any) error { return nil }
