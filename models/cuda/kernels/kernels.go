// Package kernels holds the CUDA C source of mami's GPU kernels (mami.cu) and the PTX nvcc made of it,
// embedded so that a plain `go build -tags cuda` needs no nvcc.
//
// Two PTX files are generated: mami_sm90.ptx (target sm_90, Hopper: H100/H200) and mami_compute80.ptx
// (target compute_80, which the driver JIT-compiles for any card from Ampere on, newer ones included).
// Each starts with a line recording the SHA-256 of the mami.cu it was made from; the package's tests fail
// when the PTX is stale. Regenerate with nvcc (Debian: nvidia-cuda-toolkit) on the path:
//
//	go generate ./models/cuda/kernels
package kernels

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"strings"
)

//go:generate go run gen.go

//go:embed mami.cu mami_sm90.ptx mami_compute80.ptx
var files embed.FS

// Source returns the CUDA C source the PTX was generated from.
func Source() string { return mustRead("mami.cu") }

// PTX returns the PTX of target ("sm_90" or "compute_80").
func PTX(target string) (string, error) {
	switch target {
	case "sm_90":
		return mustRead("mami_sm90.ptx"), nil
	case "compute_80":
		return mustRead("mami_compute80.ptx"), nil
	}
	return "", fmt.Errorf("kernels: no PTX for target %q (have sm_90, compute_80)", target)
}

// TargetFor picks the PTX target for a device of compute capability major.minor: sm_90 on 9.x and
// newer (the driver JIT-compiles PTX forward), compute_80 on 8.x. Older devices are not supported.
func TargetFor(major, minor int) (string, error) {
	switch {
	case major >= 9:
		return "sm_90", nil
	case major == 8:
		return "compute_80", nil
	}
	return "", fmt.Errorf("kernels: compute capability %d.%d: need 8.0 or newer", major, minor)
}

// Names lists every kernel in mami.cu; the GPU backend looks each one up when it loads the module.
var Names = []string{
	"mami_gemm", "mami_colsum", "mami_concat2", "mami_act_fwd", "mami_act_bwd", "mami_mul", "mami_mean2",
	"mami_half", "mami_l2norm_fwd", "mami_l2norm_bwd", "mami_outer_fwd", "mami_outer_bwd_a",
	"mami_outer_bwd_b", "mami_gmu_fwd", "mami_gmu_bwd", "mami_loss", "mami_prob", "mami_sum", "mami_gather",
	"mami_adam", "mami_sgd", "mami_sumsq", "mami_clip", "mami_mask",
}

// HashPrefix starts the first line of every generated PTX file, followed by the hex SHA-256 of mami.cu.
const HashPrefix = "// mami.cu sha256 "

// SourceHash is the hex SHA-256 of mami.cu.
func SourceHash() string {
	sum := sha256.Sum256([]byte(Source()))
	return hex.EncodeToString(sum[:])
}

// StampedHash returns the source hash recorded in the first line of a generated PTX file.
func StampedHash(ptx string) (string, bool) {
	line, _, _ := strings.Cut(ptx, "\n")
	return strings.CutPrefix(strings.TrimSpace(line), HashPrefix)
}

func mustRead(name string) string {
	b, err := files.ReadFile(name)
	if err != nil { // cannot happen: the names are embedded above
		panic(err)
	}
	return string(b)
}
