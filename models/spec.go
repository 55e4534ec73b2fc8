package models

import (
	"fmt"
	"slices"

	"github.com/mami-lab/mami/configs"
)

// Fusion names accepted by Spec.Fusion.
const (
	FusionConcat    = "concat"
	FusionLate      = "late"
	FusionAlign     = "align"
	FusionCross     = "cross"
	FusionGMU       = "gmu"
	FusionImageOnly = "image_only"
	FusionTextOnly  = "text_only"
)

// Head names accepted by Spec.Head.
const (
	HeadDoubleSoftmax = "double_softmax"
	HeadSoftmaxCE     = "softmax_ce"
	HeadBCE           = "bce"
)

// Spec describes a model: which fusion, which head, the classifier's hidden sizes, dropout probability,
// the projection size of the align/cross/gmu fusions and the embedding sizes of both modalities.
type Spec struct {
	Fusion   string
	Head     string
	Hidden   []int
	Dropout  float64
	ProjDim  int
	ImageDim int
	TextDim  int
}

// SpecFrom builds a Spec from the model section of a config, for embeddings of size dim in both
// modalities.
func SpecFrom(cfg configs.ModelConfig, dim int) Spec {
	return Spec{
		Fusion:   cfg.Fusion,
		Head:     cfg.Head,
		Hidden:   slices.Clone(cfg.Hidden),
		Dropout:  cfg.Dropout,
		ProjDim:  cfg.ProjDim,
		ImageDim: dim,
		TextDim:  dim,
	}
}

// Fusions returns the names of the registered fusion architectures.
func Fusions() []string {
	return []string{FusionConcat, FusionLate, FusionAlign, FusionCross, FusionGMU, FusionImageOnly, FusionTextOnly}
}

// Heads returns the names of the training heads.
func Heads() []string {
	return []string{HeadDoubleSoftmax, HeadSoftmaxCE, HeadBCE}
}

// Validate reports the first problem with the spec, naming the field.
func (s Spec) Validate() error {
	if !slices.Contains(Fusions(), s.Fusion) {
		return fmt.Errorf("models: spec fusion %q: must be one of %v", s.Fusion, Fusions())
	}
	if !slices.Contains(Heads(), s.Head) {
		return fmt.Errorf("models: spec head %q: must be one of %v", s.Head, Heads())
	}
	for i, h := range s.Hidden {
		if h <= 0 {
			return fmt.Errorf("models: spec hidden[%d] = %d: must be positive", i, h)
		}
	}
	if !(s.Dropout >= 0 && s.Dropout < 1) {
		return fmt.Errorf("models: spec dropout %v: must be in [0, 1)", s.Dropout)
	}
	if s.ImageDim <= 0 || s.TextDim <= 0 {
		return fmt.Errorf("models: spec image/text dim %d/%d: must be positive", s.ImageDim, s.TextDim)
	}
	switch s.Fusion {
	case FusionAlign, FusionCross, FusionGMU:
		if s.ProjDim <= 0 {
			return fmt.Errorf("models: spec proj_dim %d: must be positive for fusion %s", s.ProjDim, s.Fusion)
		}
		if s.Fusion == FusionCross && s.ProjDim > 256 {
			return fmt.Errorf("models: spec proj_dim %d: at most 256 for fusion cross (proj_dim² features)", s.ProjDim)
		}
	}
	return nil
}

// outDim is the number of logits the head needs.
func (s Spec) outDim() int {
	if s.Head == HeadBCE {
		return 1
	}
	return 2
}
