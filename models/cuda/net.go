package cuda

import (
	"errors"

	"github.com/mami-lab/mami/models"
)

// ErrUnavailable is returned (wrapped, with the reason) when no usable NVIDIA GPU is found or this
// binary was built without the cuda tag.
var ErrUnavailable = errors.New("cuda: no usable NVIDIA GPU")

// Device describes the GPU a Net runs on.
type Device struct {
	Name         string
	Major, Minor int   // compute capability
	MemBytes     int64 // total device memory
	Driver       int   // CUDA driver version, e.g. 13000
	Target       string
}

// Net is a fusion model (same registry, params, initialisation and dropout masks as models.Net)
// whose params, gradients and optimizer state live on a backend: the GPU for New, the Go twin of the
// kernels for NewReference. It is not safe for concurrent use; Close releases the memory.
type Net struct {
	e *engine
}

// NewReference builds spec on the Go reference of the CUDA kernels (no GPU needed): what the GPU
// computes, step by step, for tests and for checking a GPU's results.
func NewReference(spec models.Spec, seed int64) (*Net, error) {
	e, err := newEngine(&refBackend{}, spec, seed)
	if err != nil {
		return nil, err
	}
	return &Net{e: e}, nil
}

// SetHostMasks chooses where dropout masks are drawn: on the host from models' RNG stream, exactly the
// masks models.Net draws from the same seed (what parity checks need, at a host cost per step), or —
// the default — on the device by mami_mask, from the seed and a counter (same distribution, other masks).
func (n *Net) SetHostMasks(on bool) { n.e.hostMasks = on }

// Spec returns the spec the net was built from.
func (n *Net) Spec() models.Spec { return n.e.l.spec }

// NumParams returns the number of learnable scalars.
func (n *Net) NumParams() int { return n.e.l.total }

// Grad is models.Net.Grad: forward and backward on b (dropout on), scale·gradient written into the
// device gradients (added when accumulate); it returns the batch's mean loss.
func (n *Net) Grad(b models.Batch, scale float32, accumulate bool) (float64, error) {
	return n.e.grad(b, scale, accumulate)
}

// UploadSet copies a data set (row-major embeddings, 0/1 labels) to the device once, for GradRows.
func (n *Net) UploadSet(image, text, labels []float32) error { return n.e.setData(image, text, labels) }

// GradRows is Grad on rows idx of the uploaded set: only the row indices travel to the device.
func (n *Net) GradRows(idx []int, scale float32, accumulate bool) (float64, error) {
	return n.e.gradRows(idx, scale, accumulate)
}

// Predict is models.Net.Predict: P(misogynous) per sample and the mean loss, dropout off.
func (n *Net) Predict(b models.Batch) ([]float32, float64, error) { return n.e.predict(b) }

// SetOptimizer selects the update rule of Step, with models.NewOptimizer's names and checks.
func (n *Net) SetOptimizer(name string, beta1, beta2, eps, weightDecay float64) error {
	o, err := newOptimizer(name, beta1, beta2, eps, weightDecay)
	if err != nil {
		return err
	}
	n.e.optimize, n.e.adamT = o, 0
	return nil
}

// Step applies one update of the optimizer set by SetOptimizer with learning rate lr.
func (n *Net) Step(lr float64) error { return n.e.step(lr) }

// ClipGradNorm is models.ClipGradNorm on the device gradients (max <= 0 only measures).
func (n *Net) ClipGradNorm(max float64) (float64, error) { return n.e.clipGradNorm(max) }

// Params copies the params and their gradients back from the device and returns them in models'
// order and names. The slices are the Net's host copies: valid until the next call.
func (n *Net) Params() ([]*models.Param, error) { return n.e.syncParams() }

// LoadParams copies params (models' order, names and shapes, e.g. a checkpoint's) to the device.
func (n *Net) LoadParams(params []*models.Param) error { return n.e.loadParams(params) }

// Close releases the device memory; the Net is unusable afterwards.
func (n *Net) Close() error { return n.e.close() }
