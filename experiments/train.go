package experiments

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/data"
	"github.com/mami-lab/mami/models"
)

// Sink receives a run's history and summary. runs.Recorder (the local run
// record) and runs/wandb implement it. Sinks must not modify or keep the
// maps they are given after the call returns: the trainer reuses nothing,
// but a fan-out hands the same map to every sink.
type Sink interface {
	// Log records one history row (it has _step, _runtime, _timestamp).
	Log(ctx context.Context, row map[string]any) error
	// Summary replaces the run's summary with summary.
	Summary(ctx context.Context, summary map[string]any) error
}

// Progress is told where training is, for a progress bar. Calls come from
// the goroutine running Train.
type Progress interface {
	// Start begins epoch (1-based) of total optimizer steps.
	Start(epoch, total int)
	// Step reports that done steps of the epoch are finished; loss is the
	// last step's loss.
	Step(done int, loss float64)
	// Done ends the epoch (after validation).
	Done()
}

// Options are the trainer's collaborators; the zero value trains silently
// without checkpoints.
type Options struct {
	// Logger receives one line per epoch; nil discards.
	Logger *slog.Logger
	// Progress, when set, follows the steps of each epoch.
	Progress Progress
	// CheckpointDir, when set, receives the best epoch's checkpoint
	// (best.safetensors, best.yaml, best.json).
	CheckpointDir string
	// Clock gives _runtime and _timestamp; nil means time.Now. The perf/*
	// timings always use the real clock.
	Clock func() time.Time
	// NewBackend, when set, builds the compute backend the model trains on
	// (e.g. models/cuda's GPU Net); nil trains on the CPU backend
	// (models.Net). The summary's "device" is cfg.Device either way.
	NewBackend NewBackendFunc
}

// Result is what Train returns.
type Result struct {
	// Summary is the summary last sent to the sink.
	Summary map[string]any
	// BestEpoch is the epoch whose weights were kept (0 when no epoch
	// finished or there is no validation set).
	BestEpoch int
	// Stopped is true when ctx was cancelled and training stopped early.
	Stopped bool
	// Net is the trained model with the best epoch's weights loaded (the
	// last weights when there was no best epoch), on the CPU whatever the
	// backend trained it.
	Net *models.Net
}

// MaxFusedBatch is the largest effective batch (batch_size × accumulate)
// computed as one Grad call. A mean loss over N samples has the gradient
// Σ (n_i/N) ∇mean_i over any split into micro-batches, so one call over the
// whole effective batch gives the gradient that accumulation would, up to
// float rounding, in fewer, larger matrix products. Only the dropout masks
// differ (they are drawn per call). Beyond MaxFusedBatch the effective batch
// is accumulated in micro-batches of batch_size with scale n_i/N, bounding
// the graph's memory.
const MaxFusedBatch = 4096

// maxFusedBatch is MaxFusedBatch; tests lower it to compare both paths.
var maxFusedBatch = MaxFusedBatch

// DefaultSelectMetric picks the best epoch when train.early_stop.metric is
// empty.
const DefaultSelectMetric = "val/f1_macro"

// Train trains the model cfg describes on ds.Train, validating on ds.Val at
// every epoch end and, when cfg.Train.EvalTest, scoring ds.Test with the
// best epoch's weights at the end. It sends one history row per optimizer
// step to sink (nil discards) and the summary at every epoch end and at the
// end.
//
// Cancelling ctx stops training after the current step: the step's row and
// the summary so far are recorded (with ctx's values but without its
// cancellation) and Train returns Result.Stopped with a nil error. A sink
// error stops training and is returned together with the partial Result.
func Train(ctx context.Context, cfg *configs.Config, ds *data.Splits, sink Sink, opts Options) (*Result, error) {
	t, err := newTrainer(cfg, ds, sink, opts)
	if err != nil {
		return nil, err
	}
	res, err := t.run(ctx)
	if cerr := t.closeBackend(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return res, err
}

type trainer struct {
	cfg   *configs.Config
	ds    *data.Splits
	sink  Sink
	opts  Options
	log   *slog.Logger
	clock func() time.Time

	be     Backend     // what trains: the CPU backend or Options.NewBackend's
	rows   RowBackend  // be when it holds the training split, else nil
	cpu    bool        // be is the CPU backend, whose params are net's
	net    *models.Net // the CPU backend's net, or a host copy of be's params
	device string
	labels []float32 // ds.Train labels as 0/1 floats
	batch  models.Batch
	buf    batchBuf

	start      time.Time // by opts.Clock
	trainTime  time.Duration
	trainN     int
	step       int
	totalSteps int

	summary    map[string]any
	selectKey  string // "val/f1_macro"
	lowerBest  bool
	bestEpoch  int
	bestValue  float64
	bestVals   map[string]any
	bestParams [][]float32
}

func newTrainer(cfg *configs.Config, ds *data.Splits, sink Sink, opts Options) (*trainer, error) {
	if cfg == nil {
		return nil, errors.New("train: nil config")
	}
	if ds == nil || ds.Train.Len() == 0 {
		return nil, errors.New("train: no training data")
	}
	tc := cfg.Train
	if tc.Epochs < 1 || tc.BatchSize < 1 || tc.Accumulate < 1 {
		return nil, fmt.Errorf("train: epochs %d, batch_size %d and accumulate %d must be >= 1", tc.Epochs, tc.BatchSize, tc.Accumulate)
	}
	dim := ds.Train.Dim
	for _, s := range []struct {
		name string
		set  *data.Set
	}{{"train", ds.Train}, {"val", ds.Val}, {"test", ds.Test}} {
		if s.set.Len() == 0 {
			continue
		}
		if s.set.Dim != dim {
			return nil, fmt.Errorf("train: %s split has embedding size %d, train has %d", s.name, s.set.Dim, dim)
		}
		for _, m := range s.set.Memes {
			if m.Misogynous != 0 && m.Misogynous != 1 {
				return nil, fmt.Errorf("train: %s split meme %q has label %d, want 0 or 1", s.name, m.FileName, m.Misogynous)
			}
		}
	}
	if sink == nil {
		sink = discard{}
	}
	t := &trainer{
		cfg: cfg, ds: ds, sink: sink, opts: opts, log: opts.Logger, clock: opts.Clock,
		summary: map[string]any{}, bestValue: math.NaN(), device: cfg.Device,
	}
	if t.device == "" {
		t.device = "cpu"
	}
	t.labels = floatLabels(ds.Train.Labels())
	if err := t.newBackend(models.SpecFrom(cfg.Model, dim)); err != nil {
		return nil, err
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.clock == nil {
		t.clock = time.Now
	}
	t.selectKey = tc.EarlyStop.Metric
	if t.selectKey == "" {
		t.selectKey = DefaultSelectMetric
	}
	t.lowerBest = t.selectKey == "val/loss"
	return t, nil
}

// newBackend builds the CPU backend, or Options.NewBackend's with a host
// copy of the model for checkpoints and Result.Net; a RowBackend gets the
// training split.
func (t *trainer) newBackend(spec models.Spec) error {
	tc, seed := t.cfg.Train, t.cfg.Run.Seed
	if t.opts.NewBackend == nil {
		cb, err := newCPUBackend(spec, seed, tc)
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		t.be, t.net, t.cpu = cb, cb.net, true
		return nil
	}
	net, err := models.New(spec, seed)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if _, err := models.NewOptimizer(tc.Optimizer, nil, tc.Beta1, tc.Beta2, tc.Eps, tc.WeightDecay); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	be, err := t.opts.NewBackend(spec, seed, tc)
	if err != nil {
		return fmt.Errorf("train: %s backend: %w", t.device, err)
	}
	if be == nil {
		return fmt.Errorf("train: %s backend: NewBackend returned nil", t.device)
	}
	t.be, t.net = be, net
	if got, want := be.NumParams(), net.NumParams(); got != want {
		return errors.Join(fmt.Errorf("train: %s backend has %d params, the model %d", t.device, got, want), t.closeBackend())
	}
	if rb, ok := be.(RowBackend); ok {
		n, d := t.ds.Train.Len(), t.ds.Train.Dim
		if err := rb.UploadSet(t.ds.Train.Image[:n*d], t.ds.Train.Text[:n*d], t.labels); err != nil {
			return errors.Join(fmt.Errorf("train: upload the training split: %w", err), t.closeBackend())
		}
		t.rows = rb
	}
	return nil
}

// closeBackend closes a backend that Options.NewBackend built, when it is
// an io.Closer.
func (t *trainer) closeBackend() error {
	if c, ok := t.be.(io.Closer); ok && !t.cpu {
		if err := c.Close(); err != nil {
			return fmt.Errorf("train: close the %s backend: %w", t.device, err)
		}
	}
	return nil
}

// syncHost copies the backend's params into t.net (nothing to do for the
// CPU backend, whose params are t.net's).
func (t *trainer) syncHost() error {
	if t.cpu {
		return nil
	}
	ps, err := t.be.Params()
	if err != nil {
		return fmt.Errorf("copy params from the %s backend: %w", t.device, err)
	}
	if err := copyParams(t.net.Params(), ps); err != nil {
		return fmt.Errorf("copy params from the %s backend: %w", t.device, err)
	}
	return nil
}

func (t *trainer) run(ctx context.Context) (*Result, error) {
	tc := t.cfg.Train
	n := t.ds.Train.Len()
	eff := t.cfg.EffectiveBatch()
	stepsPerEpoch := (n + eff - 1) / eff
	t.totalSteps = tc.Epochs * stepsPerEpoch
	rng := data.NewRand(t.cfg.Run.Seed)
	t.start = t.clock()
	res := &Result{Net: t.net}
	t.log.Info("training", "run", t.cfg.Run.ID, "device", t.device, "params", t.be.NumParams(), "train", n,
		"val", t.ds.Val.Len(), "test", t.ds.Test.Len(), "epochs", tc.Epochs, "steps_per_epoch", stepsPerEpoch,
		"effective_batch", eff)

	// Sinks see ctx's values but not its cancellation, which is observed
	// only between steps.
	sinkCtx := context.WithoutCancel(ctx)
	bad := 0 // epochs since the selection metric last improved
	for epoch := 1; epoch <= tc.Epochs; epoch++ {
		batches, err := data.Batches(n, eff, rng)
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		if t.opts.Progress != nil {
			t.opts.Progress.Start(epoch, len(batches))
		}
		var lossSum float64
		var lossN int
		for i, idx := range batches {
			if ctx.Err() != nil { // cancelled between steps
				return t.stop(ctx, sinkCtx, res, epoch)
			}
			t0 := time.Now()
			loss, err := t.optimizerStep(idx)
			if err != nil {
				return t.fail(sinkCtx, res, fmt.Errorf("train: epoch %d step %d: %w", epoch, t.step+1, err))
			}
			t.trainTime += time.Since(t0)
			t.trainN += len(idx)
			t.step++
			lossSum += loss * float64(len(idx))
			lossN += len(idx)

			row := t.stepRow(epoch, loss)
			last := i == len(batches)-1
			stopped := ctx.Err() != nil
			if last && !stopped {
				if err := t.epochEnd(row, epoch, lossSum/float64(lossN)); err != nil {
					return t.fail(sinkCtx, res, err)
				}
			}
			if err := t.logRow(sinkCtx, row); err != nil {
				return t.fail(sinkCtx, res, err)
			}
			if t.opts.Progress != nil {
				t.opts.Progress.Step(i+1, loss)
			}
			if stopped {
				return t.stop(ctx, sinkCtx, res, epoch)
			}
		}
		if t.opts.Progress != nil {
			t.opts.Progress.Done()
		}
		if err := t.sink.Summary(sinkCtx, t.summarySnapshot()); err != nil {
			return t.fail(sinkCtx, res, fmt.Errorf("train: summary: %w", err))
		}
		if t.bestEpoch == epoch {
			bad = 0
		} else if t.ds.Val.Len() > 0 {
			bad++
		}
		if tc.EarlyStop.Metric != "" && bad > 0 && bad >= tc.EarlyStop.Patience {
			t.log.Info("early stop", "epoch", epoch, "metric", t.selectKey, "best_epoch", t.bestEpoch, "best", t.bestValue)
			break
		}
	}
	return t.finish(sinkCtx, res, t.cfg.Train.EvalTest)
}

// stop ends a cancelled run: best weights back, summary so far recorded.
func (t *trainer) stop(ctx, sinkCtx context.Context, res *Result, epoch int) (*Result, error) {
	t.log.Info("training stopped", "epoch", epoch, "step", t.step, "reason", context.Cause(ctx))
	res.Stopped = true
	return t.finish(sinkCtx, res, false)
}

// optimizerStep computes the gradient of the mean loss over the effective
// batch idx, clips it and updates the weights; it returns the mean loss.
func (t *trainer) optimizerStep(idx []int) (float64, error) {
	tc := t.cfg.Train
	var loss float64
	if len(idx) <= maxFusedBatch {
		l, err := t.grad(idx, 1, false)
		if err != nil {
			return 0, err
		}
		loss = l
	} else {
		total := float64(len(idx))
		for lo := 0; lo < len(idx); lo += tc.BatchSize {
			micro := idx[lo:min(lo+tc.BatchSize, len(idx))]
			w := float64(len(micro)) / total
			l, err := t.grad(micro, float32(w), lo > 0)
			if err != nil {
				return 0, err
			}
			loss += w * l
		}
	}
	if tc.ClipNorm > 0 {
		if _, err := t.be.ClipGradNorm(tc.ClipNorm); err != nil {
			return 0, err
		}
	}
	if err := t.be.Step(LearningRate(tc.Schedule, tc.LR, t.step+1, tc.WarmupSteps, t.totalSteps)); err != nil {
		return 0, err
	}
	return loss, nil
}

// grad is the backend's Grad on training rows idx: their indices for a
// RowBackend, a gathered batch otherwise.
func (t *trainer) grad(idx []int, scale float32, accumulate bool) (float64, error) {
	if t.rows != nil {
		return t.rows.GradRows(idx, scale, accumulate)
	}
	return t.be.Grad(t.buf.gather(t.ds.Train, t.labels, idx), scale, accumulate)
}

func (t *trainer) stepRow(epoch int, loss float64) map[string]any {
	now := t.clock()
	tc := t.cfg.Train
	return map[string]any{
		"_step":      t.step,
		"_runtime":   now.Sub(t.start).Seconds(),
		"_timestamp": float64(now.UnixNano()) / 1e9,
		"epoch":      epoch,
		"train/loss": loss,
		"train/lr":   LearningRate(tc.Schedule, tc.LR, t.step, tc.WarmupSteps, t.totalSteps),
	}
}

// epochEnd adds the epoch's metrics to its last row, tracks the best epoch
// and saves its checkpoint.
func (t *trainer) epochEnd(row map[string]any, epoch int, epochLoss float64) error {
	row["train/epoch_loss"] = epochLoss
	if t.ds.Val.Len() == 0 {
		t.log.Info("epoch", "epoch", epoch, "train_loss", epochLoss)
		return nil
	}
	m, err := evaluateOn(t.be, t.ds.Val)
	if err != nil {
		return fmt.Errorf("train: validate epoch %d: %w", epoch, err)
	}
	vals := m.Values("val/", false)
	for k, v := range vals {
		row[k] = v
	}
	t.log.Info("epoch", "epoch", epoch, "train_loss", epochLoss, "val_loss", m.Loss, "val_acc", m.Acc,
		"val_f1_macro", m.F1Macro, "val_auroc", m.AUROC)
	v, _ := vals[t.selectKey].(float64)
	if !t.improves(v) {
		return nil
	}
	t.bestEpoch, t.bestValue, t.bestVals = epoch, v, vals
	if err := t.keepBest(); err != nil {
		return fmt.Errorf("train: epoch %d: %w", epoch, err)
	}
	if t.opts.CheckpointDir != "" {
		meta := CheckpointMeta{Epoch: epoch, Step: t.step, Metric: t.selectKey, Value: v}
		if err := SaveCheckpoint(t.opts.CheckpointDir, t.net, t.cfg, meta); err != nil {
			return fmt.Errorf("train: epoch %d: %w", epoch, err)
		}
	}
	return nil
}

func (t *trainer) improves(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	if math.IsNaN(t.bestValue) {
		return true
	}
	if t.lowerBest {
		return v < t.bestValue
	}
	return v > t.bestValue
}

// keepBest copies the weights of the best epoch so the test split is
// scored with them; t.net has them too afterwards, for the checkpoint.
func (t *trainer) keepBest() error {
	if err := t.syncHost(); err != nil {
		return err
	}
	ps := t.net.Params()
	if t.bestParams == nil {
		t.bestParams = make([][]float32, len(ps))
		for i, p := range ps {
			t.bestParams[i] = make([]float32, len(p.Value))
		}
	}
	for i, p := range ps {
		copy(t.bestParams[i], p.Value)
	}
	return nil
}

func (t *trainer) logRow(ctx context.Context, row map[string]any) error {
	for k, v := range row {
		t.summary[k] = v
	}
	if err := t.sink.Log(ctx, row); err != nil {
		return fmt.Errorf("train: log step %d: %w", t.step, err)
	}
	return nil
}

// summarySnapshot is the summary so far: last values, best/*, perf/*.
func (t *trainer) summarySnapshot() map[string]any {
	s := make(map[string]any, len(t.summary)+8)
	for k, v := range t.summary {
		s[k] = v
	}
	if t.bestEpoch > 0 {
		s["best/epoch"] = t.bestEpoch
		for k, v := range t.bestVals {
			s["best/"+k] = v
		}
	}
	s["device"] = t.device
	secs := t.trainTime.Seconds()
	s["perf/train_seconds"] = secs
	if secs > 0 {
		s["perf/train_samples_per_s"] = float64(t.trainN) / secs
	}
	return s
}

// finish restores the best weights, scores the test split when asked and
// sends the final summary.
func (t *trainer) finish(ctx context.Context, res *Result, evalTest bool) (*Result, error) {
	if t.bestParams != nil {
		for i, p := range t.net.Params() {
			copy(p.Value, t.bestParams[i])
		}
		if !t.cpu {
			if err := t.be.LoadParams(t.net.Params()); err != nil {
				return t.fail(ctx, res, fmt.Errorf("train: restore the best weights on the %s backend: %w", t.device, err))
			}
		}
	} else if err := t.syncHost(); err != nil {
		return t.fail(ctx, res, fmt.Errorf("train: %w", err))
	}
	res.BestEpoch = t.bestEpoch
	if evalTest && t.ds.Test.Len() > 0 {
		m, err := evaluateOn(t.be, t.ds.Test)
		if err != nil {
			return t.fail(ctx, res, fmt.Errorf("train: test: %w", err))
		}
		for k, v := range m.Values("test/", true) {
			t.summary[k] = v
		}
		t.log.Info("test", "epoch", t.bestEpoch, "loss", m.Loss, "acc", m.Acc, "f1_macro", m.F1Macro, "auroc", m.AUROC)
	}
	res.Summary = t.summarySnapshot()
	if err := t.sink.Summary(ctx, res.Summary); err != nil {
		return res, fmt.Errorf("train: summary: %w", err)
	}
	return res, nil
}

// fail returns err with the partial result, after trying to record the
// summary so far.
func (t *trainer) fail(ctx context.Context, res *Result, err error) (*Result, error) {
	res.Summary = t.summarySnapshot()
	res.BestEpoch = t.bestEpoch
	if serr := t.sink.Summary(ctx, res.Summary); serr != nil {
		err = errors.Join(err, fmt.Errorf("train: summary: %w", serr))
	}
	return res, err
}

// LearningRate is the learning rate of optimizer step (1-based) of total:
// a linear warm-up over the first warmup steps (step·lr/warmup), then for
// schedule "cosine" a half cosine from lr down to 0 at step total+1
// (lr·½(1+cos(π·(step−warmup−1)/(total−warmup)))), for "constant" lr.
func LearningRate(schedule string, lr float64, step, warmup, total int) float64 {
	if step <= warmup {
		return lr * float64(step) / float64(warmup)
	}
	if schedule != "cosine" || total <= warmup {
		return lr
	}
	progress := float64(step-warmup-1) / float64(total-warmup)
	return lr * 0.5 * (1 + math.Cos(math.Pi*progress))
}

// batchBuf gathers rows of a set into reusable batch memory.
type batchBuf struct {
	image, text, labels []float32
}

func (b *batchBuf) gather(s *data.Set, labels []float32, idx []int) models.Batch {
	n, d := len(idx), s.Dim
	if cap(b.labels) < n {
		b.image, b.text, b.labels = make([]float32, n*d), make([]float32, n*d), make([]float32, n)
	}
	img, txt, lab := b.image[:n*d], b.text[:n*d], b.labels[:n]
	for j, i := range idx {
		copy(img[j*d:(j+1)*d], s.ImageRow(i))
		copy(txt[j*d:(j+1)*d], s.TextRow(i))
		lab[j] = labels[i]
	}
	return models.Batch{N: n, Image: img, Text: txt, Labels: lab}
}

func floatLabels(labels []int) []float32 {
	out := make([]float32, len(labels))
	for i, y := range labels {
		out[i] = float32(y)
	}
	return out
}

type discard struct{}

func (discard) Log(context.Context, map[string]any) error     { return nil }
func (discard) Summary(context.Context, map[string]any) error { return nil }
