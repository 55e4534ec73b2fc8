package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mami-lab/mami/runs/server/store"
)

// BenchmarkMetricRead reads one metric of 100 runs (what a dashboard panel needs). Steps per run default
// to 1,000; MAMI_BENCH_STEPS=10000 gives the 100 runs x 10,000 steps case. The same data is read three
// ways, in this order: "rows", the read path before blocks (SQL over one row per value, data written
// without packing); "live", after packing whole blocks only (under a block of rows left per run, as while
// runs are running); "packed", after packing everything (as once runs finish). Each has "full" (Metric)
// and "buckets300" (MetricBuckets to 600 points a run, what a dashboard panel asks for).
func BenchmarkMetricRead(b *testing.B) {
	ctx := context.Background()
	steps := 1000
	if v, err := strconv.Atoi(os.Getenv("MAMI_BENCH_STEPS")); err == nil && v > 0 {
		steps = v
	}
	const runs = 100
	s, err := store.OpenTuned(ctx, filepath.Join(b.TempDir(), "m.db"), 0, true, 0)
	if err != nil {
		b.Fatal(err)
	}
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
	type reader struct {
		full    func(ctx context.Context, runID int64, key string) (store.Series, error)
		buckets func(ctx context.Context, runID int64, key string, lines int64, buckets int) (store.Series, error)
	}
	bench := func(name string, rd reader) {
		b.Run(name+"/full", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				total := 0
				for _, id := range ids {
					se, err := rd.full(ctx, id, "train/loss")
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
		b.Run(name+"/buckets300", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				total := 0
				for _, id := range ids {
					se, err := rd.buckets(ctx, id, "train/loss", int64(steps), 300)
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
	bench("rows", reader{s.MetricRows, s.MetricBucketsRows})
	for _, all := range []bool{false, true} {
		t0 := time.Now()
		if err := s.PackAll(ctx, all); err != nil {
			b.Fatal(err)
		}
		rows, blocks, err := s.Layout(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("packed (all %v) in %v: %d rows and %d blocks left", all, time.Since(t0).Round(time.Millisecond), rows, blocks)
		if all {
			bench("packed", reader{s.Metric, s.MetricBuckets})
		} else {
			bench("live", reader{s.Metric, s.MetricBuckets})
		}
	}
}

// BenchmarkStreamWrite is the ingest benchmark: one op is one file_stream request of 20 history rows (four
// numeric keys each) to one of 10 runs in turn ("serial"), or the same from 10 goroutines at once, one run
// each ("concurrent", what group commit batches). It reports committed rows per second.
func BenchmarkStreamWrite(b *testing.B) {
	const runs, batch = 10, 20
	for _, concurrent := range []bool{false, true} {
		name := "serial"
		if concurrent {
			name = "concurrent"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			s := open(b, filepath.Join(b.TempDir(), "w.db"))
			defer s.Close(ctx)
			var next [runs]int64
			send := func(r int) {
				k := store.RunKey{Entity: "e", Project: "ingest", Name: fmt.Sprintf("run%02d", r)}
				lines := make([]string, batch)
				for i := range lines {
					st := next[r] + int64(i)
					lines[i] = fmt.Sprintf(`{"_step":%d,"_runtime":%g,"train/loss":%g,"val/f1_macro":%g}`, st, float64(st)*0.1, 1/float64(st+1), float64(st%97)/97)
				}
				if _, err := s.Stream(ctx, k, store.StreamUpdate{History: &store.Chunk{Offset: next[r], Lines: lines}}); err != nil {
					b.Error(err)
				}
				next[r] += batch
			}
			b.ReportAllocs()
			ops := 0
			for b.Loop() {
				if !concurrent {
					send(ops % runs)
					ops++
					continue
				}
				var wg sync.WaitGroup
				for r := range runs {
					wg.Go(func() { send(r) })
				}
				wg.Wait()
				ops += runs
			}
			b.ReportMetric(float64(ops*batch)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkDecodeBlock decodes one full block of a typical series (steps and lines counting up by one).
func BenchmarkDecodeBlock(b *testing.B) {
	const n = 512
	lines, steps, values := make([]int64, n), make([]int64, n), make([]float64, n)
	for i := range n {
		lines[i], steps[i], values[i] = int64(5000+i), int64(5000+i), 1/float64(i+1)
	}
	blk := store.EncodeBlock(lines, steps, values)
	b.SetBytes(int64(len(blk)))
	b.ReportAllocs()
	for b.Loop() {
		se, err := store.DecodeBlock(blk)
		if err != nil || len(se.Values) != n {
			b.Fatalf("decoded %d values, %v", len(se.Values), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/value")
}
