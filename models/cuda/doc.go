// Package cuda is mami's GPU backend: the fusion models of package models, trained on an NVIDIA GPU
// through the CUDA driver API (gorgonia.org/cu) with the package's own kernels (kernels/mami.cu, embedded
// as PTX). docs/gpu.md has the build steps and what is verified where.
//
// # One registry, two backends
//
// A Net is built from a models.Spec: the package lays out the same params as models.New (names, order,
// shapes; checked at start), takes their initial values from models.New(spec, seed), and turns the
// fusion's forward pass into a plan — the memory layout and kernel steps of a training or evaluation
// pass at a fixed batch size, backward steps derived op by op. Params, gradients and optimizer state
// live in device memory; UploadSet puts a data set there too, so a GradRows step sends only row indices
// and brings back one float64 (the mean loss).
//
// # Backends of a plan
//
// The plan runs on a backend: the GPU (New, build tag mamicuda: device_cuda.go) or the Go reference
// (NewReference, any build: ref.go), whose every step computes what its kernel computes, in the same
// order. CheckParity trains a Net and a models.Net side by side from the same weights, dropout masks and
// batches; the package's tests run it for every fusion × head on the reference, and `mami gpu parity`
// and the mamicuda tests run it on a GPU. Dropout masks come from models' RNG stream on the host
// (SetHostMasks, for parity) or from a counter-based hash on the device (the default).
//
// # Build tag
//
// The tag is mamicuda, not cuda: Gorgonia compiles its own CUDA engine, which needs cuDNN, under cuda.
// gorgonia.org/cu exits the process in its init when cuInit fails; the mamicuda build wraps cuInit at
// link time (initwrap_cuda.c) so that a machine without a GPU gets ErrUnavailable from Probe and New
// instead.
package cuda
