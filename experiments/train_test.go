package experiments_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/data"
	"github.com/mami-lab/mami/experiments"
)

// tinySplits is a small synthetic dataset (small embeddings) split 70/10/20,
// generated once per test binary.
var tinySplits = sync.OnceValues(func() (*data.Splits, error) {
	p := data.DefaultSynthetic
	p.Train, p.TrainPositive, p.Test, p.TestPositive = 700, 350, 50, 25
	// Strong, clean signal: these tests check that training learns, not how
	// hard the calibrated default data is.
	p.ImageSignal, p.TextSignal, p.LabelNoise = 0.3, 0.3, 0.02
	// The smallest embedding the generator accepts for its topics and
	// interaction rank, and at least 64.
	p.Dim = max(64, 2*p.Topics+2*p.InteractionRank+16)
	all, official, err := data.GenerateSynthetic(p)
	if err != nil {
		return nil, err
	}
	tr, va, te := data.StratifiedSplit(all.Labels(), 0.125, 0.2, 3)
	return &data.Splits{Train: all.Subset(tr), Val: all.Subset(va), Test: all.Subset(te), Official: official}, nil
})

func splits(t testing.TB) *data.Splits {
	t.Helper()
	ds, err := tinySplits()
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func stepsPerEpoch(t *testing.T, cfg *configs.Config) int {
	n, eff := splits(t).Train.Len(), cfg.EffectiveBatch()
	return (n + eff - 1) / eff
}

func tinyConfig() *configs.Config {
	cfg := configs.Default()
	cfg.Run.ID = "test"
	cfg.Run.Seed = 5
	cfg.Model.Hidden = []int{16}
	cfg.Train.Epochs = 3
	cfg.Train.BatchSize = 64
	cfg.Train.LR = 3e-3
	return cfg
}

// memSink records what the trainer sends.
type memSink struct {
	rows      []map[string]any
	summaries []map[string]any
	failAt    int // fail Log on this _step (0 = never)
}

func (s *memSink) Log(_ context.Context, row map[string]any) error {
	if s.failAt > 0 && row["_step"] == s.failAt {
		return errors.New("disk full")
	}
	s.rows = append(s.rows, row)
	return nil
}

func (s *memSink) Summary(_ context.Context, sum map[string]any) error {
	s.summaries = append(s.summaries, sum)
	return nil
}

// fakeClock advances one second per call, so _runtime differs from run
// to run only through what the test does.
func fakeClock() func() time.Time {
	t := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func train(t *testing.T, cfg *configs.Config, opts experiments.Options) (*experiments.Result, *memSink) {
	t.Helper()
	sink := &memSink{}
	if opts.Clock == nil {
		opts.Clock = fakeClock()
	}
	res, err := experiments.Train(context.Background(), cfg, splits(t), sink, opts)
	if err != nil {
		t.Fatalf("Train: %v", err)
	}
	return res, sink
}

func TestTrainRowsFollowContract(t *testing.T) {
	cfg := tinyConfig()
	ds := splits(t)
	res, sink := train(t, cfg, experiments.Options{})
	n := ds.Train.Len()
	eff := cfg.EffectiveBatch()
	perEpoch := (n + eff - 1) / eff
	if len(sink.rows) != cfg.Train.Epochs*perEpoch {
		t.Fatalf("%d rows, want one per optimizer step: %d epochs × %d", len(sink.rows), cfg.Train.Epochs, perEpoch)
	}
	epochKeys := []string{"train/epoch_loss", "val/loss", "val/acc", "val/f1_macro", "val/auroc"}
	var lossSum float64
	var lossN int
	for i, row := range sink.rows {
		step := i + 1
		epoch := i/perEpoch + 1
		last := step%perEpoch == 0
		if row["_step"] != step || row["epoch"] != epoch {
			t.Fatalf("row %d: _step %v epoch %v, want %d, %d", i, row["_step"], row["epoch"], step, epoch)
		}
		for _, k := range []string{"_runtime", "_timestamp", "train/loss", "train/lr"} {
			if _, ok := row[k].(float64); !ok {
				t.Fatalf("row %d: %s = %#v, want a float64", i, k, row[k])
			}
		}
		size := eff
		if last && n%eff != 0 {
			size = n % eff
		}
		lossSum += row["train/loss"].(float64) * float64(size)
		lossN += size
		for _, k := range epochKeys {
			if _, ok := row[k]; ok != last {
				t.Fatalf("row %d (step %d): has %s = %v, want it only on the epoch's last step", i, step, k, ok)
			}
		}
		if last {
			if got, want := row["train/epoch_loss"].(float64), lossSum/float64(lossN); math.Abs(got-want) > 1e-12 {
				t.Errorf("epoch %d: train/epoch_loss %v, want the sample-weighted mean of its steps %v", epoch, got, want)
			}
			lossSum, lossN = 0, 0
		}
		if len(row) != 6 && !(last && len(row) == 6+len(epochKeys)) {
			t.Errorf("row %d has unexpected keys: %v", i, row)
		}
	}
	if first, last := sink.rows[0]["train/loss"].(float64), sink.rows[len(sink.rows)-1]["train/loss"].(float64); !(last < first) {
		t.Errorf("train/loss did not fall: first %v, last %v", first, last)
	}

	if len(sink.summaries) != cfg.Train.Epochs+1 {
		t.Errorf("%d summaries, want one per epoch and a final one", len(sink.summaries))
	}
	sum := res.Summary
	if !mapsEqual(sum, sink.summaries[len(sink.summaries)-1]) {
		t.Errorf("Result.Summary differs from the last summary sent")
	}
	lastRow := sink.rows[len(sink.rows)-1]
	for k, v := range lastRow {
		if sum[k] != v {
			t.Errorf("summary %s = %v, want last value %v", k, sum[k], v)
		}
	}
	if sum["best/epoch"] != res.BestEpoch || res.BestEpoch < 1 || res.BestEpoch > cfg.Train.Epochs {
		t.Errorf("best/epoch %v, Result.BestEpoch %d", sum["best/epoch"], res.BestEpoch)
	}
	bestRow := sink.rows[res.BestEpoch*perEpoch-1]
	if sum["best/val/f1_macro"] != bestRow["val/f1_macro"] {
		t.Errorf("best/val/f1_macro %v, want epoch %d's %v", sum["best/val/f1_macro"], res.BestEpoch, bestRow["val/f1_macro"])
	}
	for e := 1; e <= cfg.Train.Epochs; e++ {
		if v := sink.rows[e*perEpoch-1]["val/f1_macro"].(float64); v > sum["best/val/f1_macro"].(float64) {
			t.Errorf("epoch %d val/f1_macro %v beats the best %v", e, v, sum["best/val/f1_macro"])
		}
	}
	var cm int
	for _, k := range []string{"test/tp", "test/fp", "test/tn", "test/fn"} {
		cm += sum[k].(int)
	}
	if cm != ds.Test.Len() {
		t.Errorf("test confusion counts %d memes, test split has %d", cm, ds.Test.Len())
	}
	for _, k := range []string{"test/loss", "test/acc", "test/f1_macro", "test/auroc", "perf/train_samples_per_s", "perf/train_seconds"} {
		if v, ok := sum[k].(float64); !ok || !(v > 0) {
			t.Errorf("summary %s = %v, want a positive number", k, sum[k])
		}
	}
	if auc := sum["test/auroc"].(float64); auc < 0.6 {
		t.Errorf("test/auroc %v: the model learned nothing on separable synthetic data", auc)
	}
}

func mapsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !sameValue(v, w) {
			return false
		}
	}
	return true
}

// sameValue compares bit for bit (NaN equal to NaN).
func sameValue(a, b any) bool {
	if x, ok := a.(float64); ok {
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	}
	return a == b
}

func TestTrainDeterministic(t *testing.T) {
	cfg := tinyConfig()
	cfg.Train.Schedule = "cosine"
	cfg.Train.WarmupSteps = 4
	_, a := train(t, cfg, experiments.Options{})
	_, b := train(t, cfg, experiments.Options{Clock: time.Now}) // a different clock must not matter
	if len(a.rows) != len(b.rows) {
		t.Fatalf("runs differ in length: %d vs %d rows", len(a.rows), len(b.rows))
	}
	strip := func(m map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			if k != "_runtime" && k != "_timestamp" && !strings.HasPrefix(k, "perf/") {
				out[k] = v
			}
		}
		return out
	}
	for i := range a.rows {
		if !mapsEqual(strip(a.rows[i]), strip(b.rows[i])) {
			t.Fatalf("row %d differs between identical runs:\n%v\n%v", i, a.rows[i], b.rows[i])
		}
	}
	if !mapsEqual(strip(a.summaries[len(a.summaries)-1]), strip(b.summaries[len(b.summaries)-1])) {
		t.Errorf("final summaries differ between identical runs")
	}

	other := tinyConfig()
	other.Train.Schedule, other.Train.WarmupSteps = "cosine", 4
	other.Run.Seed = 6
	_, c := train(t, other, experiments.Options{})
	if sameValue(a.rows[0]["train/loss"], c.rows[0]["train/loss"]) {
		t.Errorf("seeds 5 and 6 gave the same first loss %v; the seed is not used", a.rows[0]["train/loss"])
	}
}

func TestTrainAccumulationMatchesFused(t *testing.T) {
	// batch 16 × accumulate 4: one Grad over 64 samples (fused) and four
	// micro-batches of 16 scaled by n_i/N must give the same training, up
	// to float rounding, when dropout (drawn per call) is off.
	cfg := tinyConfig()
	cfg.Model.Dropout = 0
	cfg.Train.Epochs = 2
	cfg.Train.BatchSize, cfg.Train.Accumulate = 16, 4
	_, fused := train(t, cfg, experiments.Options{})
	restore := experiments.SetMaxFusedBatch(16)
	_, accum := train(t, cfg, experiments.Options{})
	restore()
	if want := 2 * stepsPerEpoch(t, cfg); len(fused.rows) != want || len(accum.rows) != want {
		t.Fatalf("rows: fused %d, accumulated %d, want %d each", len(fused.rows), len(accum.rows), want)
	}
	for i := range fused.rows {
		f, a := fused.rows[i]["train/loss"].(float64), accum.rows[i]["train/loss"].(float64)
		if math.Abs(f-a) > 1e-4*math.Abs(f) {
			t.Fatalf("step %d: fused loss %v, accumulated %v", i+1, f, a)
		}
	}
	last := len(fused.rows) - 1
	f, a := fused.rows[last]["val/loss"].(float64), accum.rows[last]["val/loss"].(float64)
	if math.Abs(f-a) > 1e-4*math.Abs(f) {
		t.Errorf("final val/loss: fused %v, accumulated %v", f, a)
	}
}

func TestTrainEarlyStopping(t *testing.T) {
	// With a learning rate of 0 nothing changes, so val/loss never
	// improves after epoch 1 and patience 2 stops after epoch 3.
	cfg := tinyConfig()
	cfg.Train.Epochs = 10
	cfg.Train.LR = 0
	cfg.Train.WeightDecay = 0
	cfg.Train.EarlyStop = configs.EarlyStopConfig{Metric: "val/loss", Patience: 2}
	res, sink := train(t, cfg, experiments.Options{})
	if last := sink.rows[len(sink.rows)-1]["epoch"]; last != 3 {
		t.Errorf("last epoch %v, want 3 (best epoch 1 + patience 2)", last)
	}
	if res.BestEpoch != 1 || res.Summary["best/epoch"] != 1 {
		t.Errorf("best epoch %d (summary %v), want 1", res.BestEpoch, res.Summary["best/epoch"])
	}
	if _, ok := res.Summary["best/val/loss"]; !ok {
		t.Errorf("summary lacks best/val/loss: %v", res.Summary)
	}
}

// cancelAt cancels the run's context when the given epoch reaches step.
type cancelAt struct {
	epoch, step int
	cancel      context.CancelFunc
	current     int
	starts      []int
	done        int
}

func (c *cancelAt) Start(epoch, total int) { c.current = epoch; c.starts = append(c.starts, total) }
func (c *cancelAt) Step(done int, _ float64) {
	if c.current == c.epoch && done == c.step {
		c.cancel()
	}
}
func (c *cancelAt) Done() { c.done++ }

func TestTrainCancelStopsAfterStep(t *testing.T) {
	cfg := tinyConfig()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prog := &cancelAt{epoch: 2, step: 4, cancel: cancel}
	sink := &memSink{}
	res, err := experiments.Train(ctx, cfg, splits(t), sink, experiments.Options{Progress: prog, Clock: fakeClock()})
	if err != nil {
		t.Fatalf("Train after cancel: %v, want nil error", err)
	}
	if !res.Stopped {
		t.Errorf("Result.Stopped = false after cancel")
	}
	// Cancelled while reporting step 4 of epoch 2, so step 5 never starts.
	per := stepsPerEpoch(t, cfg)
	if got := len(sink.rows); got != per+4 {
		t.Errorf("%d rows after cancel, want %d (epoch 1 and 4 steps of epoch 2)", got, per+4)
	}
	if res.Summary["_step"] != per+4 || res.BestEpoch != 1 {
		t.Errorf("partial summary _step %v, best epoch %d; want %d, 1", res.Summary["_step"], res.BestEpoch, per+4)
	}
	if _, ok := res.Summary["test/f1_macro"]; ok {
		t.Errorf("a stopped run scored the test split")
	}
	if !mapsEqual(res.Summary, sink.summaries[len(sink.summaries)-1]) {
		t.Errorf("partial summary not sent to the sink")
	}
	if len(prog.starts) != 2 || prog.starts[0] != per || prog.starts[1] != per || prog.done != 1 {
		t.Errorf("progress: starts %v, done %d; want [%d %d], 1", prog.starts, prog.done, per, per)
	}
}

func TestTrainSinkErrorStops(t *testing.T) {
	sink := &memSink{failAt: 3}
	res, err := experiments.Train(context.Background(), tinyConfig(), splits(t), sink, experiments.Options{})
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "step 3") {
		t.Fatalf("Train with failing sink: %v, want the sink's error naming step 3", err)
	}
	if res == nil || res.Summary["_step"] != 3 || len(sink.rows) != 2 {
		t.Errorf("partial result %v and %d rows, want _step 3 and 2 rows", res, len(sink.rows))
	}
}

func TestTrainRejectsBadInput(t *testing.T) {
	ds := splits(t)
	unlabelled := *ds
	unlabelled.Train = ds.Train.Subset([]int{0, 1, 2})
	unlabelled.Train.Memes[1].Misogynous = -1
	badModel := tinyConfig()
	badModel.Model.Fusion = "nope"
	badOpt := tinyConfig()
	badOpt.Train.Optimizer = "lion"
	tests := []struct {
		name string
		cfg  *configs.Config
		ds   *data.Splits
		want string
	}{
		{"nil config", nil, ds, "nil config"},
		{"no data", tinyConfig(), &data.Splits{}, "no training data"},
		{"unlabelled", tinyConfig(), &unlabelled, "label -1"},
		{"bad fusion", badModel, ds, "nope"},
		{"bad optimizer", badOpt, ds, "lion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := experiments.Train(context.Background(), tt.cfg, tt.ds, nil, experiments.Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Train = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "checkpoints")
	cfg := tinyConfig()
	res, _ := train(t, cfg, experiments.Options{CheckpointDir: dir})
	for _, f := range []string{experiments.CheckpointWeights, experiments.CheckpointConfig, experiments.CheckpointMetaFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("checkpoint file: %v", err)
		}
	}
	meta, err := experiments.ReadCheckpointMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Epoch != res.BestEpoch || meta.Metric != "val/f1_macro" || meta.Value != res.Summary["best/val/f1_macro"] || meta.ImageDim != splits(t).Train.Dim {
		t.Errorf("meta = %+v, want best epoch %d, val/f1_macro %v, dim %d", meta, res.BestEpoch, res.Summary["best/val/f1_macro"], splits(t).Train.Dim)
	}
	net, lcfg, err := experiments.LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if lcfg.Run.Seed != cfg.Run.Seed || lcfg.Model.Hidden[0] != 16 {
		t.Errorf("loaded config %+v, want the run's", lcfg.Model)
	}
	ds := splits(t)
	want, err := experiments.Evaluate(res.Net, ds.Test)
	if err != nil {
		t.Fatal(err)
	}
	got, err := experiments.Evaluate(net, ds.Test)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("loaded net scores %+v, trained net %+v", got, want)
	}
	if got.F1Macro != res.Summary["test/f1_macro"] {
		t.Errorf("test/f1_macro %v, the best checkpoint scores %v: test must use the best epoch's weights", res.Summary["test/f1_macro"], got.F1Macro)
	}

	// A damaged checkpoint fails with the file named.
	if err := os.WriteFile(filepath.Join(dir, experiments.CheckpointWeights), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := experiments.LoadCheckpoint(dir); err == nil || !strings.Contains(err.Error(), "best.safetensors") {
		t.Errorf("LoadCheckpoint of junk = %v, want an error naming best.safetensors", err)
	}
}

func TestLearningRate(t *testing.T) {
	tests := []struct {
		name     string
		schedule string
		step     int
		warmup   int
		total    int
		want     float64
	}{
		{"constant", "constant", 7, 0, 10, 1},
		{"constant warm-up", "constant", 2, 4, 10, 0.5},
		{"warm-up end", "cosine", 4, 4, 10, 1},
		{"cosine start", "cosine", 5, 4, 10, 1},
		{"cosine middle", "cosine", 8, 4, 10, 0.5},     // progress 3/6
		{"cosine last", "cosine", 10, 4, 10, 0.066987}, // ½(1+cos(5π/6))
		{"cosine no warm-up", "cosine", 1, 0, 4, 1},
		{"cosine one step", "cosine", 1, 0, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := experiments.LearningRate(tt.schedule, 1, tt.step, tt.warmup, tt.total)
			if math.Abs(got-tt.want) > 1e-6 {
				t.Errorf("LearningRate(%s, step %d, warm-up %d, total %d) = %v, want %v", tt.schedule, tt.step, tt.warmup, tt.total, got, tt.want)
			}
		})
	}
}

func TestPredictWritesAnswer(t *testing.T) {
	ds := splits(t)
	res, _ := train(t, tinyConfig(), experiments.Options{})
	official := ds.Official.Subset([]int{0, 1, 2, 3, 4, 5})
	for i := range official.Memes {
		official.Memes[i].Misogynous = -1 // unlabelled, like MAMI's Test.csv without labels
	}
	preds, err := experiments.Predict(res.Net, official)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "answer.txt")
	if err := experiments.WriteAnswerFile(context.Background(), path, preds); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("answer.txt has %d lines, want 6:\n%s", len(lines), b)
	}
	for i, line := range lines {
		name, label, ok := strings.Cut(line, "\t")
		want := "0"
		if preds[i].Prob > 0.5 {
			want = "1"
		}
		if !ok || name != official.Memes[i].FileName || label != want {
			t.Errorf("line %d = %q, want %q<TAB>%s", i+1, line, official.Memes[i].FileName, want)
		}
	}
	if _, err := experiments.Evaluate(res.Net, official); err == nil {
		t.Errorf("Evaluate on unlabelled memes succeeded, want an error")
	}
}
