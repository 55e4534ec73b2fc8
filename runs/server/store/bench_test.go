package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/mami-lab/mami/runs/server/store"
)

// BenchmarkMetricRead reads one metric of 100 runs (what a dashboard panel needs). Steps per run default
// to 1,000; MAMI_BENCH_STEPS=10000 gives the 100 runs x 10,000 steps case.
func BenchmarkMetricRead(b *testing.B) {
	ctx := context.Background()
	steps := 1000
	if v, err := strconv.Atoi(os.Getenv("MAMI_BENCH_STEPS")); err == nil && v > 0 {
		steps = v
	}
	const runs = 100
	s := open(b, filepath.Join(b.TempDir(), "m.db"))
	defer s.Close(ctx)
	var ids []int64
	for r := range runs {
		k := store.RunKey{Entity: "e", Project: "bench", Name: fmt.Sprintf("run%03d", r)}
		for off := 0; off < steps; off += 2000 {
			n := min(2000, steps-off)
			lines := make([]string, n)
			for i := range lines {
				st := off + i
				lines[i] = fmt.Sprintf(`{"_step":%d,"_runtime":%g,"train/loss":%g,"val/f1_macro":%g}`, st, float64(st)*0.1, 1/float64(st+1), float64(st%97)/97)
			}
			if _, err := s.Stream(ctx, k, store.StreamUpdate{History: &store.Chunk{Offset: int64(off), Lines: lines}}); err != nil {
				b.Fatal(err)
			}
		}
		run, err := s.Run(ctx, k)
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, run.ID)
	}
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			total := 0
			for _, id := range ids {
				se, err := s.Metric(ctx, id, "train/loss")
				if err != nil {
					b.Fatal(err)
				}
				total += len(se.Values)
			}
			if total != runs*steps {
				b.Fatalf("read %d values, want %d", total, runs*steps)
			}
		}
	})
	b.Run("buckets300", func(b *testing.B) { // what a dashboard panel asks for: samples=600
		b.ReportAllocs()
		for b.Loop() {
			total := 0
			for _, id := range ids {
				se, err := s.MetricBuckets(ctx, id, "train/loss", int64(steps), 300)
				if err != nil {
					b.Fatal(err)
				}
				total += len(se.Values)
			}
			if total == 0 || total > runs*602 {
				b.Fatalf("read %d values", total)
			}
		}
	})
}
