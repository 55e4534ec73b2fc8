package experiments_test

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/experiments"
	"github.com/mami-lab/mami/models"
	"github.com/mami-lab/mami/models/cuda"
)

// countingBackend is a Backend computing exactly what the CPU backend does
// (a models.Net, its optimizer, models.ClipGradNorm), counting the calls.
// With rows set it is a RowBackend holding the uploaded set.
type countingBackend struct {
	net    *models.Net
	opt    models.Optimizer
	rows   bool
	failAt int // Step fails on this call (0 = never)

	grads, gradRows, predicts, clips, steps, loads, uploads, closes int

	image, text, labels []float32
	dim                 int
	b                   models.Batch
}

func (c *countingBackend) Grad(b models.Batch, scale float32, acc bool) (float64, error) {
	c.grads++
	return c.net.Grad(b, scale, acc)
}

func (c *countingBackend) Predict(b models.Batch) ([]float32, float64, error) {
	c.predicts++
	return c.net.Predict(b)
}

func (c *countingBackend) ClipGradNorm(max float64) (float64, error) {
	c.clips++
	return models.ClipGradNorm(c.net.Params(), max), nil
}

func (c *countingBackend) Step(lr float64) error {
	c.steps++
	if c.steps == c.failAt {
		return errors.New("device lost")
	}
	c.opt.Step(lr)
	return nil
}

// Params returns copies, as a device backend's host copies would be: the
// trainer must not rely on them aliasing the weights.
func (c *countingBackend) Params() ([]*models.Param, error) {
	var out []*models.Param
	for _, p := range c.net.Params() {
		q := *p
		q.Value = append([]float32(nil), p.Value...)
		q.Grad = append([]float32(nil), p.Grad...)
		out = append(out, &q)
	}
	return out, nil
}

func (c *countingBackend) LoadParams(ps []*models.Param) error {
	c.loads++
	for i, p := range c.net.Params() {
		copy(p.Value, ps[i].Value)
	}
	return nil
}

func (c *countingBackend) NumParams() int { return c.net.NumParams() }

func (c *countingBackend) Close() error { c.closes++; return nil }

// rowBackend adds the RowBackend methods to countingBackend.
type rowBackend struct{ *countingBackend }

func (r rowBackend) UploadSet(image, text, labels []float32) error {
	r.uploads++
	r.image, r.text, r.labels, r.dim = image, text, labels, len(image)/len(labels)
	return nil
}

func (r rowBackend) GradRows(idx []int, scale float32, acc bool) (float64, error) {
	r.gradRows++
	b := &r.b
	b.N, b.Image, b.Text, b.Labels = len(idx), b.Image[:0], b.Text[:0], b.Labels[:0]
	for _, i := range idx {
		b.Image = append(b.Image, r.image[i*r.dim:(i+1)*r.dim]...)
		b.Text = append(b.Text, r.text[i*r.dim:(i+1)*r.dim]...)
		b.Labels = append(b.Labels, r.labels[i])
	}
	return r.net.Grad(*b, scale, acc)
}

// counting returns a NewBackend building a countingBackend (a rowBackend
// when rows), and the last one it built.
func counting(rows bool, failAt int) (experiments.NewBackendFunc, **countingBackend) {
	last := new(*countingBackend)
	return func(spec models.Spec, seed int64, tc configs.TrainConfig) (experiments.Backend, error) {
		net, err := models.New(spec, seed)
		if err != nil {
			return nil, err
		}
		opt, err := models.NewOptimizer(tc.Optimizer, net.Params(), tc.Beta1, tc.Beta2, tc.Eps, tc.WeightDecay)
		if err != nil {
			return nil, err
		}
		c := &countingBackend{net: net, opt: opt, rows: rows, failAt: failAt}
		*last = c
		if rows {
			return rowBackend{c}, nil
		}
		return c, nil
	}, last
}

// TestTrainThroughBackend trains through Options.NewBackend with a backend
// that computes what the CPU backend does: every step goes through it, the
// history is the CPU path's bit for bit, and the checkpoint, Result.Net
// and the test scores hold the best epoch's weights.
func TestTrainThroughBackend(t *testing.T) {
	cfg := tinyConfig()
	cfg.Train.Schedule, cfg.Train.WarmupSteps = "cosine", 3
	_, cpu := train(t, cfg, experiments.Options{})
	for _, rows := range []bool{false, true} {
		name := map[bool]string{false: "Grad", true: "GradRows"}[rows]
		t.Run(name, func(t *testing.T) {
			newBackend, last := counting(rows, 0)
			dir := filepath.Join(t.TempDir(), "checkpoints")
			bcfg := tinyConfig()
			bcfg.Train.Schedule, bcfg.Train.WarmupSteps = "cosine", 3
			bcfg.Device = "cuda"
			res, got := train(t, bcfg, experiments.Options{NewBackend: newBackend, CheckpointDir: dir})
			be := *last
			if be == nil {
				t.Fatal("Options.NewBackend was not called")
			}
			steps := len(cpu.rows)
			wantGrad, wantRows, wantUploads := steps, 0, 0
			if rows {
				wantGrad, wantRows, wantUploads = 0, steps, 1
			}
			if be.grads != wantGrad || be.gradRows != wantRows || be.uploads != wantUploads || be.clips != steps || be.steps != steps {
				t.Errorf("backend calls: Grad %d, GradRows %d, UploadSet %d, ClipGradNorm %d, Step %d; want %d, %d, %d, %d, %d",
					be.grads, be.gradRows, be.uploads, be.clips, be.steps, wantGrad, wantRows, wantUploads, steps, steps)
			}
			// One validation per epoch and the test split.
			if want := bcfg.Train.Epochs + 1; be.predicts != want {
				t.Errorf("backend Predict calls %d, want %d", be.predicts, want)
			}
			if be.loads != 1 || be.closes != 1 {
				t.Errorf("LoadParams %d, Close %d calls; want 1 (best weights restored) and 1", be.loads, be.closes)
			}
			if len(got.rows) != len(cpu.rows) {
				t.Fatalf("%d rows through the backend, %d on the CPU path", len(got.rows), len(cpu.rows))
			}
			for i := range cpu.rows {
				for k, v := range cpu.rows[i] {
					if k != "_runtime" && k != "_timestamp" && !sameValue(v, got.rows[i][k]) {
						t.Fatalf("row %d %s = %v through the backend, %v on the CPU path", i, k, got.rows[i][k], v)
					}
				}
			}
			cs := cpu.summaries[len(cpu.summaries)-1]
			for _, k := range []string{"test/f1_macro", "test/loss", "best/epoch", "best/val/f1_macro"} {
				if !sameValue(res.Summary[k], cs[k]) {
					t.Errorf("summary %s = %v through the backend, %v on the CPU path", k, res.Summary[k], cs[k])
				}
			}
			if res.Summary["device"] != "cuda" || cs["device"] != "cpu" {
				t.Errorf("summary device %v (backend) and %v (CPU path), want cuda and cpu", res.Summary["device"], cs["device"])
			}
			m, err := experiments.Evaluate(res.Net, splits(t).Test)
			if err != nil {
				t.Fatal(err)
			}
			if m.F1Macro != res.Summary["test/f1_macro"] || m.Loss != res.Summary["test/loss"] {
				t.Errorf("Result.Net scores test f1 %v loss %v, the summary %v %v: Result.Net must hold the best weights",
					m.F1Macro, m.Loss, res.Summary["test/f1_macro"], res.Summary["test/loss"])
			}
			net, _, err := experiments.LoadCheckpoint(dir)
			if err != nil {
				t.Fatal(err)
			}
			if lm, err := experiments.Evaluate(net, splits(t).Test); err != nil || lm != m {
				t.Errorf("checkpoint scores %+v (%v), Result.Net %+v", lm, err, m)
			}
		})
	}
}

// TestTrainOnCUDAReference trains through models/cuda's Net on the Go
// reference of its kernels (what the GPU computes, no GPU needed), with the
// CPU backend's dropout masks: the history follows the CPU path within
// float rounding.
func TestTrainOnCUDAReference(t *testing.T) {
	cfg := tinyConfig()
	cfg.Train.Epochs = 2
	_, cpu := train(t, cfg, experiments.Options{})
	var built *cuda.Net
	newRef := func(spec models.Spec, seed int64, tc configs.TrainConfig) (experiments.Backend, error) {
		n, err := cuda.NewReference(spec, seed)
		if err != nil {
			return nil, err
		}
		n.SetHostMasks(true)
		if err := n.SetOptimizer(tc.Optimizer, tc.Beta1, tc.Beta2, tc.Eps, tc.WeightDecay); err != nil {
			return nil, errors.Join(err, n.Close())
		}
		built = n
		return n, nil
	}
	var _ experiments.RowBackend = built // *cuda.Net holds the training split
	res, ref := train(t, cfg, experiments.Options{NewBackend: newRef})
	if built == nil {
		t.Fatal("NewBackend was not called")
	}
	if len(ref.rows) != len(cpu.rows) {
		t.Fatalf("%d rows on the reference, %d on the CPU", len(ref.rows), len(cpu.rows))
	}
	for i := range cpu.rows {
		for _, k := range []string{"train/loss", "val/loss", "train/epoch_loss"} {
			c, ok := cpu.rows[i][k].(float64)
			if !ok {
				continue
			}
			r, _ := ref.rows[i][k].(float64)
			if math.Abs(r-c) > 1e-4*math.Abs(c) {
				t.Fatalf("row %d %s = %v on the reference, %v on the CPU", i, k, r, c)
			}
		}
	}
	if _, ok := res.Summary["test/auroc"].(float64); !ok || res.BestEpoch < 1 {
		t.Errorf("summary %v, best epoch %d: want the test split scored with a best epoch", res.Summary, res.BestEpoch)
	}
}

func TestTrainBackendErrors(t *testing.T) {
	failing := func(spec models.Spec, seed int64, tc configs.TrainConfig) (experiments.Backend, error) {
		return nil, errors.New("no GPU here")
	}
	wrongSize := func(spec models.Spec, seed int64, tc configs.TrainConfig) (experiments.Backend, error) {
		spec.Hidden = []int{3}
		newBackend, _ := counting(false, 0)
		return newBackend(spec, seed, tc)
	}
	stepFails, last := counting(false, 5)
	tests := []struct {
		name       string
		newBackend experiments.NewBackendFunc
		want       []string
	}{
		{"constructor", failing, []string{"cuda backend", "no GPU here"}},
		{"param count", wrongSize, []string{"params"}},
		{"step", stepFails, []string{"step 5", "device lost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tinyConfig()
			cfg.Device = "cuda"
			_, err := experiments.Train(t.Context(), cfg, splits(t), nil, experiments.Options{NewBackend: tt.newBackend})
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("Train = %v, want an error mentioning %q", err, w)
				}
			}
		})
	}
	if (*last).closes != 1 {
		t.Errorf("backend closed %d times after a failed step, want 1", (*last).closes)
	}
}
