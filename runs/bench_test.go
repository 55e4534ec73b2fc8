package runs_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/mami-lab/mami/runs"
)

// BenchmarkLogRow measures the cost of logging one trainer-shaped history
// row (8 keys), including the write to the OS that makes it crash-safe.
// Every 40th row carries train/epoch_loss and so is fsynced, as an epoch of
// 40 steps would be (10,000 training memes at batch 256).
func BenchmarkLogRow(b *testing.B) {
	ctx := context.Background()
	rec, err := runs.Create(ctx, b.TempDir(), newConfig("bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer rec.Finish(ctx, runs.StateFinished, 0)
	row := map[string]any{"_step": 1, "_runtime": 1.5, "_timestamp": 1.7e9, "epoch": 1, "train/loss": 0.6931, "train/lr": 1e-3}
	end := map[string]any{"_step": 40, "_runtime": 1.5, "_timestamp": 1.7e9, "epoch": 1, "train/loss": 0.6931, "train/lr": 1e-3,
		"train/epoch_loss": 0.65, "val/loss": 0.6, "val/acc": 0.7, "val/f1_macro": 0.69, "val/auroc": 0.77}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	i := 0
	for b.Loop() {
		i++
		r := row
		if i%40 == 0 {
			r = end
		}
		r["_step"] = i
		if err := rec.Log(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
}

// cpuTime is the CPU time (user+system) this process has used. On a
// machine shared with other work, wall-clock ns/op swings with the load;
// cpu-ns/op is the cost that logging adds to a training process.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkEncodeRow is the encoding alone, without I/O.
func BenchmarkEncodeRow(b *testing.B) {
	row := map[string]any{"_step": 1, "_runtime": 1.5, "_timestamp": 1.7e9, "epoch": 1, "train/loss": 0.6931, "train/lr": 1e-3}
	var buf []byte
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		var err error
		if buf, err = runs.AppendJSON(buf[:0], row); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
}
