// Package experiments trains and scores the fusion classifiers: the
// trainer behind `mami train` and every sweep trial, the metrics (MAMI
// Sub-task A's macro-F1, accuracy, AUROC, confusion matrix, ROC and PR
// curves), checkpoints, and the Evaluate / Predict helpers behind `mami
// eval` and `mami predict`.
//
// # Training
//
// Train builds models.New(models.SpecFrom(cfg.Model, dim), run.seed) and
// the optimizer cfg.Train names, then runs cfg.Train.Epochs epochs. Each
// epoch draws a fresh permutation of the training split from one generator
// seeded with run.seed (data.NewRand, data.Batches) and cuts it into
// effective batches of batch_size × accumulate samples; each effective
// batch is one optimizer step:
//
//  1. the gradient of the mean loss over the effective batch: one Grad call
//     when it has at most MaxFusedBatch samples, otherwise micro-batches of
//     batch_size accumulated with weights n_i/N (the same gradient);
//  2. gradient-norm clipping to train.clip_norm (0 = off);
//  3. an optimizer step at the learning rate of LearningRate.
//
// At the end of each epoch the validation split is scored, the epoch's
// metrics are added to its last step's row, the best epoch (by
// train.early_stop.metric, or val/f1_macro when that is empty) is kept in
// memory and saved as a checkpoint, and early stopping is checked. At the
// end the best weights are restored and the test split scored.
//
// # Records
//
// The trainer writes to a Sink: one history row per optimizer step and
// the whole summary at every epoch end; the keys are specified in
// docs/format/run-record.md. It never prints: the CLI passes a
// *slog.Logger (one line per epoch) and a Progress for its progress bar.
// The same config and seed give the same history, bit for bit, apart from
// _runtime, _timestamp and perf/*.
//
// # Stopping
//
// Cancelling the context (Ctrl-C) stops training after the current
// optimizer step; the step's row and the summary so far are recorded and
// Train returns a Result with Stopped set and a nil error.
package experiments
