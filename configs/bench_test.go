package configs_test

import (
	"testing"

	"github.com/mami-lab/mami/configs"
)

// BenchmarkLoad resolves the seed preset with an environment and overrides, as the CLI does per run.
func BenchmarkLoad(b *testing.B) {
	opts := configs.LoadOptions{
		File:    "seed",
		Environ: []string{"HOME=/root", "MAMI_WORKDIR=/tmp/w", "MAMI_TRAIN_LR=3e-4"},
		Sets:    []string{"model.hidden=[256,128]", "run.tags=[a,b]", "train.epochs=3"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := configs.Load(opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSet is the sweep engine's per-trial override.
func BenchmarkSet(b *testing.B) {
	c := configs.Default()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Set("model.hidden", []any{256, 128}); err != nil {
			b.Fatal(err)
		}
	}
}
