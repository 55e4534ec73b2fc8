//go:build !mamicuda

package cuda

import (
	"fmt"

	"github.com/mami-lab/mami/models"
)

// Built reports whether this binary has the CUDA backend (build tag cuda).
const Built = false

// Probe reports the GPU New would use; without the cuda build tag there is none.
func Probe() (Device, error) {
	return Device{}, fmt.Errorf("%w: this binary was built without the cuda tag (make build-cuda)", ErrUnavailable)
}

// New builds spec on the GPU; without the cuda build tag it fails with ErrUnavailable.
func New(spec models.Spec, seed int64) (*Net, error) {
	_, err := Probe()
	return nil, err
}
