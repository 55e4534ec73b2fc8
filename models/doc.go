// Package models holds the fusion classifiers of mami: small Gorgonia graphs (float32) that turn a meme's
// CLIP image and text embeddings into P(misogynous), their training heads, optimizers and gradient clipping.
//
// # Architectures
//
// A [Spec] picks a fusion from a registry ([Fusions]) and a head ([Heads]):
//
//   - concat (the study's): ReLU(text) ⊕ ReLU(image) → [Linear → ReLU → Dropout] per hidden size → Linear.
//   - late: the mean of a text-only and an image-only classifier's logits.
//   - align: Hadamard product of the L2-normalised projections of both modalities (Hate-CLIPper align).
//   - cross: outer product of the L2-normalised projections, flattened (ProjDim² features).
//   - gmu: gated multimodal unit h = z⊙tanh(W_v v) + (1−z)⊙tanh(W_t t), z = σ(W_z [v; t]).
//   - image_only, text_only: the classifier on one (raw) modality.
//
// Every fusion ends in the same classifier ([Linear → ReLU → Dropout] per Spec.Hidden, then Linear).
//
// # Heads
//
//   - double_softmax: the study's bug — softmax over 2 logits, then cross-entropy applied to those
//     probabilities as if they were logits (the loss cannot fall below log(1+e⁻¹) ≈ 0.3133).
//   - softmax_ce: 2 logits, cross-entropy.
//   - bce: 1 logit, sigmoid binary cross-entropy.
//
// # Execution
//
// A [Net] compiles one Gorgonia graph per (mode, batch size) and reuses its TapeMachine. The graphs are
// built from the package's own Gorgonia ops (linear layers on BLAS sgemm, activations, dropout from a
// mask input, heads), each writing into memory it owns, so a training step allocates almost nothing and
// computes no gradient for the input data. Weight gradients are written by the graph straight into
// [Param.Grad] (scaled and optionally accumulated). Dropout masks are drawn from an RNG seeded by the
// Net's seed, so two Nets built from the same seed and fed the same batches are bit-identical.
//
// Matrix products go through gonum's pure-Go BLAS by default; built with the `openblas` tag (cgo,
// libopenblas-dev) they use OpenBLAS via gonum's netlib bindings, for Gorgonia's own ops too.
//
// A Net is not safe for concurrent use; separate Nets may run in parallel goroutines.
//
// # Speed
//
// BenchmarkTrainStep times one optimizer step (Grad + Adam) of the speed workload
// (configs/bench-seed-head.yaml: concat 1024→512→1, bce, dropout 0.2, batch 64) and, in the same run,
// the same model written with stock Gorgonia ops, TapeMachine and Adam solver:
//
//	go test -run '^$' -bench TrainStep -benchtime 200x ./models/                 # pure Go
//	go test -tags openblas -run '^$' -bench TrainStep -benchtime 200x ./models/  # OpenBLAS
//
// It reports samples/s (wall) and cpu-ms/op (process CPU time per step, steadier on a shared machine).
// What makes the package's path fast: OpenBLAS (single-threaded calls, the large products split across
// cores by the package), no gradient for the input data, gradients written straight into Param.Grad,
// outputs owned by the ops (no per-step tensors), and an AVX2/FMA Adam kernel over all params split
// across cores (allocation-free).
package models
