package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mami-lab/mami/runs/server/store"
)

func TestSweepsRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	s := open(t, path)
	if err := s.PutSweep(ctx, store.Sweep{ID: "sw1", Entity: "e", Project: "p", Config: "method: grid\n", State: "RUNNING", Data: []byte(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSweep(ctx, store.Sweep{ID: "sw1", Entity: "e", Project: "p", Config: "method: grid\n", State: "PAUSED", Data: []byte(`{"n":2}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSweep(ctx, store.Sweep{}); err == nil {
		t.Error("sweep without id accepted")
	}
	sweep := func(v string) *string { return &v }
	for _, name := range []string{"sw1-t0", "sw1-t1", "other"} {
		u := store.Upsert{RunKey: store.RunKey{Entity: "e", Project: "q", Name: name}}
		if name != "other" {
			u.Sweep = sweep("sw1")
		}
		if _, _, err := s.UpsertRun(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	defer s.Close(ctx)
	got, err := s.Sweeps(ctx)
	if err != nil || len(got) != 1 {
		t.Fatalf("sweeps: %+v %v, want one", got, err)
	}
	if g := got[0]; g.ID != "sw1" || g.State != "PAUSED" || string(g.Data) != `{"n":2}` || g.Config != "method: grid\n" {
		t.Errorf("sweep %+v, want the second write", g)
	}
	runs, err := s.SweepRuns(ctx, "sw1")
	if err != nil || len(runs) != 2 || runs[0].Name != "sw1-t0" || runs[1].Name != "sw1-t1" {
		t.Errorf("sweep runs %v %v, want sw1-t0 and sw1-t1", runs, err)
	}
}
