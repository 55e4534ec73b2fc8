package experiments

import (
	"errors"
	"fmt"
	"slices"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/data"
	"github.com/mami-lab/mami/models"
)

// Backend is the compute backend the trainer drives: a fusion model's
// params, gradients and optimizer state, wherever they live (host memory
// for the CPU backend, device memory for models/cuda's Net). Its methods
// mean what models.Net's, models.ClipGradNorm's and models.Optimizer's do;
// a Backend is used from one goroutine only.
//
// Backends other than the CPU one come in through Options.NewBackend; Train
// closes a Backend that implements io.Closer when it is done with it.
type Backend interface {
	// Grad runs forward and backward on b with dropout on, writes
	// scale·gradient into the gradients (adds it when accumulate) and
	// returns the batch's mean loss.
	Grad(b models.Batch, scale float32, accumulate bool) (loss float64, err error)
	// Predict returns P(misogynous) per sample and the mean loss on b's
	// labels, dropout off.
	Predict(b models.Batch) (prob []float32, loss float64, err error)
	// ClipGradNorm scales the gradients to a global L2 norm of at most max
	// and returns the norm before clipping.
	ClipGradNorm(max float64) (norm float64, err error)
	// Step applies one update of the optimizer (chosen when the backend was
	// built) with learning rate lr.
	Step(lr float64) error
	// Params returns the params and their gradients in models' order, names
	// and shapes, as host slices valid until the next call on the backend.
	Params() ([]*models.Param, error)
	// LoadParams sets the params' values from params (models' order, names
	// and shapes).
	LoadParams(params []*models.Param) error
	// NumParams returns the number of learnable scalars.
	NumParams() int
}

// RowBackend is a Backend that can hold the training split itself: Train
// uploads it once with UploadSet and computes each step's gradient with
// GradRows, sending only the batch's row indices.
type RowBackend interface {
	Backend
	// UploadSet stores a data set: row-major image and text embeddings and
	// 0/1 labels.
	UploadSet(image, text, labels []float32) error
	// GradRows is Grad on rows idx of the stored set.
	GradRows(idx []int, scale float32, accumulate bool) (loss float64, err error)
}

// NewBackendFunc builds a Backend for spec with the initial weights
// models.New(spec, seed) draws and the optimizer train names (train.optimizer,
// beta1, beta2, eps, weight_decay).
type NewBackendFunc func(spec models.Spec, seed int64, train configs.TrainConfig) (Backend, error)

// cpuBackend is the CPU backend: a models.Net, its optimizer and
// models.ClipGradNorm, with nothing added per step.
type cpuBackend struct {
	net    *models.Net
	params []*models.Param
	opt    models.Optimizer
}

// newCPUBackend builds spec with seed's weights and the optimizer tc names.
func newCPUBackend(spec models.Spec, seed int64, tc configs.TrainConfig) (*cpuBackend, error) {
	net, err := models.New(spec, seed)
	if err != nil {
		return nil, err
	}
	opt, err := models.NewOptimizer(tc.Optimizer, net.Params(), tc.Beta1, tc.Beta2, tc.Eps, tc.WeightDecay)
	if err != nil {
		return nil, err
	}
	return &cpuBackend{net: net, params: net.Params(), opt: opt}, nil
}

func (c *cpuBackend) Grad(b models.Batch, scale float32, accumulate bool) (float64, error) {
	return c.net.Grad(b, scale, accumulate)
}

func (c *cpuBackend) Predict(b models.Batch) ([]float32, float64, error) { return c.net.Predict(b) }

func (c *cpuBackend) ClipGradNorm(max float64) (float64, error) {
	return models.ClipGradNorm(c.params, max), nil
}

func (c *cpuBackend) Step(lr float64) error { c.opt.Step(lr); return nil }

func (c *cpuBackend) Params() ([]*models.Param, error) { return c.params, nil }

func (c *cpuBackend) LoadParams(params []*models.Param) error {
	if err := sameLayout(c.params, params); err != nil {
		return err
	}
	for i, p := range params {
		copy(c.params[i].Value, p.Value)
	}
	return nil
}

func (c *cpuBackend) NumParams() int { return c.net.NumParams() }

// sameLayout checks that got has want's params: names, shapes and sizes.
func sameLayout(want, got []*models.Param) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d params, the model has %d", len(got), len(want))
	}
	for i, p := range got {
		w := want[i]
		if p.Name != w.Name || !slices.Equal(p.Shape, w.Shape) || len(p.Value) != len(w.Value) {
			return fmt.Errorf("param %d is %s%v, the model has %s%v", i, p.Name, p.Shape, w.Name, w.Shape)
		}
	}
	return nil
}

// copyParams copies the values of src into dst (same layout).
func copyParams(dst, src []*models.Param) error {
	if err := sameLayout(dst, src); err != nil {
		return err
	}
	for i, p := range src {
		copy(dst[i].Value, p.Value)
	}
	return nil
}

// evaluateOn is Evaluate on a backend: the set's labels are checked by
// newTrainer and its embedding size matches the model's.
func evaluateOn(be Backend, set *data.Set) (Metrics, error) {
	if set.Len() == 0 {
		return Metrics{}, errors.New("evaluate: empty set")
	}
	labels := set.Labels()
	b := models.Batch{N: set.Len(), Image: set.Image, Text: set.Text, Labels: floatLabels(labels)}
	prob, loss, err := be.Predict(b)
	if err != nil {
		return Metrics{}, fmt.Errorf("predict: %w", err)
	}
	return Score(labels, prob, loss), nil
}
