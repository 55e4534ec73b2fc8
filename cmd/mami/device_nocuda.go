//go:build !mamicuda

package main

import (
	"errors"
	"log/slog"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/experiments"
)

// selectDevice checks cfg.Device against what this binary can do, settles "auto" and returns the
// trainer's backend constructor: always nil (the CPU backend), as this build has no CUDA backend (see
// device_cuda.go and docs/gpu.md for the one that has).
func selectDevice(cfg *configs.Config, log *slog.Logger) (experiments.NewBackendFunc, error) {
	switch cfg.Device {
	case "", "cpu":
		cfg.Device = "cpu"
	case "auto":
		log.Info("device auto: no CUDA backend in this build, training on the CPU")
		cfg.Device = "cpu"
	case "cuda":
		return nil, errors.New("device cuda: this binary has no CUDA backend; build bin/mami-cuda with `make build-cuda` (docs/gpu.md), or set device: cpu or auto")
	}
	return nil, nil
}
