package experiments_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/mami-lab/mami/experiments"
	"github.com/mami-lab/mami/runs"
)

// TestTrainIntoRunRecord trains into a runs.Recorder (it implements Sink
// structurally) fanned out with an in-memory sink, then reads the record
// back: the record must hold exactly what the trainer sent.
func TestTrainIntoRunRecord(t *testing.T) {
	ctx := context.Background()
	cfg := tinyConfig()
	cfg.Run.ID = "record"
	rec, err := runs.Create(ctx, t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	mem := &memSink{}
	var sink experiments.Sink = runs.MultiSink(rec, mem)
	res, err := experiments.Train(ctx, cfg, splits(t), sink, experiments.Options{CheckpointDir: rec.CheckpointDir(), Clock: fakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Finish(ctx, runs.StateFinished, 0); err != nil {
		t.Fatal(err)
	}
	run, err := runs.Open(rec.Dir())
	if err != nil {
		t.Fatal(err)
	}
	hist, err := run.History()
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != len(mem.rows) {
		t.Fatalf("record has %d rows, trainer sent %d", len(hist), len(mem.rows))
	}
	for i := range hist {
		for k, v := range mem.rows[i] {
			if !sameNumber(hist[i][k], v) {
				t.Fatalf("row %d key %s: recorded %v, sent %v", i, k, hist[i][k], v)
			}
		}
	}
	sum, err := run.Summary()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range res.Summary {
		if !sameNumber(sum[k], v) {
			t.Errorf("summary.json %s = %v, trainer's summary %v", k, sum[k], v)
		}
	}
	if _, err := os.Stat(filepath.Join(rec.CheckpointDir(), experiments.CheckpointWeights)); err != nil {
		t.Errorf("no checkpoint in the run record: %v", err)
	}
}

// sameNumber compares a value read back from JSON (float64) with the one
// sent (int or float64).
func sameNumber(got, want any) bool {
	g, ok1 := number(got)
	w, ok2 := number(want)
	if !ok1 || !ok2 {
		return got == want
	}
	return g == w || math.IsNaN(g) && math.IsNaN(w)
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}
