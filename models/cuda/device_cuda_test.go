//go:build mamicuda

package cuda_test

import (
	"errors"
	"testing"

	"github.com/mami-lab/mami/models"
	"github.com/mami-lab/mami/models/cuda"
)

// TestDevice checks the cuda build on whatever machine runs it: without a GPU, Probe and New fail with
// ErrUnavailable (and the process is still alive, despite gorgonia.org/cu's init); with one, every
// fusion passes the parity check on the GPU.
func TestDevice(t *testing.T) {
	if !cuda.Built {
		t.Fatal("cuda.Built is false in a mamicuda build")
	}
	dev, err := cuda.Probe()
	spec := models.Spec{Fusion: models.FusionConcat, Head: models.HeadBCE, Hidden: []int{8}, ImageDim: 12, TextDim: 10}
	if err != nil {
		if !errors.Is(err, cuda.ErrUnavailable) {
			t.Fatalf("Probe error %v does not wrap ErrUnavailable", err)
		}
		if _, err := cuda.New(spec, 1); !errors.Is(err, cuda.ErrUnavailable) {
			t.Fatalf("New without a GPU: error %v, want ErrUnavailable", err)
		}
		t.Logf("no GPU here: %v", err)
		return
	}
	t.Logf("GPU: %+v", dev)
	image, text, labels := randomSet(1, 200, 12, 10)
	for _, f := range models.Fusions() {
		for _, h := range models.Heads() {
			spec := models.Spec{Fusion: f, Head: h, Hidden: []int{16}, Dropout: 0.2, ProjDim: 4, ImageDim: 12, TextDim: 10}
			res, err := cuda.CheckParity(cuda.ParityConfig{Spec: spec, Seed: 3, BatchSize: 32, Image: image, Text: text, Labels: labels}, cuda.New)
			if err != nil {
				t.Fatalf("%s/%s: %v", f, h, err)
			}
			if !res.OK(1e-3) {
				t.Errorf("%s/%s: %+v", f, h, res)
			}
		}
	}
}
