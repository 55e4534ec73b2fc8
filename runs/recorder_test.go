package runs_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/runs"
)

func newConfig(id string) *configs.Config {
	cfg := configs.Default()
	cfg.Run.ID = id
	cfg.Run.Name = "test run"
	cfg.Run.Tags = []string{"a", "b"}
	return cfg
}

func TestRecorderWritesRecord(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	cfg := newConfig("run1")
	rec, err := runs.Create(ctx, work, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(work, "runs", "run1"); rec.Dir() != want {
		t.Errorf("Dir() = %s, want %s", rec.Dir(), want)
	}
	rows := []map[string]any{
		{"_step": 1, "epoch": 1, "train/loss": 0.7},
		{"_step": 2, "epoch": 1, "train/loss": math.NaN(), "train/epoch_loss": 0.65, "val/auroc": math.Inf(1)},
		{"_step": 3, "epoch": 2, "train/loss": math.Inf(-1)},
	}
	for _, r := range rows {
		if err := rec.Log(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Summary(ctx, map[string]any{"train/loss": 0.5, "test/auroc": math.NaN()}); err != nil {
		t.Fatal(err)
	}
	if err := rec.Summary(ctx, map[string]any{"train/loss": 0.4, "best/epoch": 2}); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(rec.Output(), "hello log")

	// Readable while running.
	run, err := runs.Open(rec.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if m := run.Meta(); m.State != runs.StateRunning || m.PID != os.Getpid() || m.EndedAt != nil || m.ExitCode != nil {
		t.Errorf("running meta = %+v, want state running, our pid, no end", m)
	}
	hist, err := run.History()
	if err != nil {
		t.Fatal(err)
	}
	// Every row reaches the file as soon as Log returns, so a process killed
	// with -9 loses none.
	if len(hist) != 3 {
		t.Fatalf("History() has %d rows while running, want all 3", len(hist))
	}
	if err := rec.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if hist, _ = run.History(); len(hist) != 3 {
		t.Fatalf("History() has %d rows after Sync, want 3", len(hist))
	}

	if err := rec.Finish(ctx, runs.StateFinished, 0); err != nil {
		t.Fatal(err)
	}
	if err := rec.Finish(ctx, runs.StateFinished, 0); !errors.Is(err, runs.ErrFinished) {
		t.Errorf("second Finish = %v, want ErrFinished", err)
	}
	if err := rec.Log(ctx, rows[0]); !errors.Is(err, runs.ErrFinished) {
		t.Errorf("Log after Finish = %v, want ErrFinished", err)
	}
	if _, err := rec.Output().Write([]byte("x")); !errors.Is(err, runs.ErrFinished) {
		t.Errorf("Output write after Finish = %v, want ErrFinished", err)
	}

	run, err = runs.Open(rec.Dir())
	if err != nil {
		t.Fatal(err)
	}
	m := run.Meta()
	if m.ID != "run1" || m.Name != "test run" || m.State != runs.StateFinished || m.ExitCode == nil || *m.ExitCode != 0 ||
		m.EndedAt == nil || m.EndedAt.Before(m.StartedAt) || strings.Join(m.Tags, ",") != "a,b" || m.Project != "mami" {
		t.Errorf("meta = %+v", m)
	}
	hist, err = run.History()
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"_step": 1.0, "epoch": 1.0, "train/loss": 0.7},
		{"_step": 2.0, "epoch": 1.0, "train/loss": math.NaN(), "train/epoch_loss": 0.65, "val/auroc": math.Inf(1)},
		{"_step": 3.0, "epoch": 2.0, "train/loss": math.Inf(-1)},
	}
	for i := range want {
		if !equalNaN(hist[i], want[i]) {
			t.Errorf("row %d = %v, want %v", i, hist[i], want[i])
		}
	}
	sum, err := run.Summary()
	if err != nil {
		t.Fatal(err)
	}
	if !equalNaN(sum, map[string]any{"train/loss": 0.4, "best/epoch": 2.0}) {
		t.Errorf("summary = %v, want the second one whole", sum)
	}
	got, err := run.Config()
	if err != nil {
		t.Fatal(err)
	}
	if got.Run.ID != "run1" || got.Train.LR != cfg.Train.LR || strings.Join(got.Run.Tags, ",") != "a,b" {
		t.Errorf("config = %+v, want the one recorded", got.Run)
	}
	log, _ := os.ReadFile(filepath.Join(rec.Dir(), runs.OutputFile))
	if string(log) != "hello log\n" {
		t.Errorf("output.log = %q", log)
	}
	raw, _ := os.ReadFile(filepath.Join(rec.Dir(), runs.HistoryFile))
	if !strings.Contains(string(raw), `"train/loss":NaN`) || !strings.Contains(string(raw), `"train/loss":-Infinity`) {
		t.Errorf("history.jsonl lacks the W&B literals:\n%s", raw)
	}
	for _, d := range []string{runs.CheckpointsDir, runs.PlotsDir} {
		if fi, err := os.Stat(filepath.Join(rec.Dir(), d)); err != nil || !fi.IsDir() {
			t.Errorf("%s/ not created: %v", d, err)
		}
	}
	ents, _ := os.ReadDir(rec.Dir())
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestCreateRefusesExistingRun(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	rec, err := runs.Create(ctx, work, newConfig("dup"))
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Log(ctx, map[string]any{"_step": 1}); err != nil {
		t.Fatal(err)
	}
	if err := rec.Finish(ctx, runs.StateFinished, 0); err != nil {
		t.Fatal(err)
	}
	_, err = runs.Create(ctx, work, newConfig("dup"))
	if !errors.Is(err, runs.ErrRunExists) {
		t.Fatalf("second Create = %v, want ErrRunExists", err)
	}
	wantMsg := fmt.Sprintf("run dup already exists in %s", filepath.Join(work, "runs", "dup"))
	if !strings.Contains(err.Error(), wantMsg) {
		t.Errorf("error %q does not say %q", err, wantMsg)
	}
	// The refused Create must not have touched the old record.
	run, _ := runs.Open(filepath.Join(work, "runs", "dup"))
	if h, _ := run.History(); len(h) != 1 {
		t.Errorf("old history has %d rows after refused Create, want 1", len(h))
	}
}

func TestCreateGeneratesID(t *testing.T) {
	cfg := newConfig("")
	rec, err := runs.Create(context.Background(), t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Finish(context.Background(), runs.StateFinished, 0)
	if len(cfg.Run.ID) != len("20261128-083412-ab12cd") || rec.ID() != cfg.Run.ID || filepath.Base(rec.Dir()) != cfg.Run.ID {
		t.Errorf("generated id %q, recorder id %q, dir %s", cfg.Run.ID, rec.ID(), rec.Dir())
	}
}

func TestCreateRejectsBadID(t *testing.T) {
	for _, id := range []string{"..", "a/b", "x y", `..\x`} {
		if _, err := runs.Create(context.Background(), t.TempDir(), newConfig(id)); err == nil {
			t.Errorf("Create with id %q succeeded, want an error", id)
		}
	}
}

func TestFinishStates(t *testing.T) {
	tests := []struct {
		state string
		code  int
		ok    bool
	}{
		{runs.StateFinished, 0, true}, {runs.StateFailed, 1, true}, {runs.StateStopped, 130, true},
		{runs.StateCrashed, 2, true}, {runs.StateRunning, 0, false}, {"done", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.state, func(t *testing.T) {
			rec, err := runs.Create(context.Background(), t.TempDir(), newConfig("r"))
			if err != nil {
				t.Fatal(err)
			}
			err = rec.Finish(context.Background(), tt.state, tt.code)
			if (err == nil) != tt.ok {
				t.Fatalf("Finish(%q) = %v, want ok=%v", tt.state, err, tt.ok)
			}
			if !tt.ok {
				return
			}
			run, _ := runs.Open(rec.Dir())
			if m := run.Meta(); m.State != tt.state || *m.ExitCode != tt.code {
				t.Errorf("meta state %s exit %d, want %s %d", m.State, *m.ExitCode, tt.state, tt.code)
			}
		})
	}
}

func TestHistoryTruncatedLastLine(t *testing.T) {
	// A crash mid-write leaves half a line: it is skipped. A bad line with
	// a newline after it is corruption: an error naming file and line.
	tests := []struct {
		name    string
		content string
		rows    int
		errLine string
	}{
		{"clean", "{\"_step\":1}\n{\"_step\":2}\n", 2, ""},
		{"torn tail", "{\"_step\":1}\n{\"_step\":2,\"train/lo", 1, ""},
		{"blank lines", "{\"_step\":1}\n\n{\"_step\":2}\n", 2, ""},
		{"corrupt middle", "{\"_step\":1}\n{bad}\n{\"_step\":3}\n", 0, "history.jsonl:2"},
		{"not an object", "[1]\n", 0, "history.jsonl:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			meta := `{"id":"x","state":"finished"}`
			if err := os.WriteFile(filepath.Join(dir, runs.MetaFile), []byte(meta), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, runs.HistoryFile), []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			run, err := runs.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			h, err := run.History()
			if tt.errLine != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errLine) {
					t.Fatalf("History() error = %v, want one naming %s", err, tt.errLine)
				}
				return
			}
			if err != nil || len(h) != tt.rows {
				t.Fatalf("History() = %d rows, %v; want %d rows", len(h), err, tt.rows)
			}
		})
	}
}

func TestMetaReportsDeadProcessAsCrashed(t *testing.T) {
	dir := t.TempDir()
	host, _ := os.Hostname()
	// pid 2^22+1 is above Linux's pid_max default, so no such process.
	meta := fmt.Sprintf(`{"id":"x","state":"running","pid":%d,"host":%q}`, 1<<22+1, host)
	if err := os.WriteFile(filepath.Join(dir, runs.MetaFile), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	run, err := runs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s := run.Meta().State; s != runs.StateCrashed {
		t.Errorf("state of a run whose process is gone = %s, want crashed", s)
	}
}

func TestOpenMissing(t *testing.T) {
	if _, err := runs.Open(t.TempDir()); !errors.Is(err, runs.ErrRunNotFound) {
		t.Errorf("Open(empty dir) = %v, want ErrRunNotFound", err)
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	if rs, err := runs.List(work); err != nil || len(rs) != 0 {
		t.Fatalf("List(empty) = %v, %v", rs, err)
	}
	for _, id := range []string{"b", "a", "c"} {
		rec, err := runs.Create(ctx, work, newConfig(id))
		if err != nil {
			t.Fatal(err)
		}
		if err := rec.Finish(ctx, runs.StateFinished, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(work, "runs", "not-a-run"), 0o755); err != nil {
		t.Fatal(err)
	}
	rs, err := runs.List(work)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID())
	}
	if strings.Join(ids, ",") != "b,a,c" {
		t.Errorf("List ids = %v, want b,a,c (creation order)", ids)
	}
}

type recordSink struct {
	rows int
	err  error
}

func (s *recordSink) Log(context.Context, map[string]any) error { s.rows++; return s.err }
func (s *recordSink) Summary(context.Context, map[string]any) error {
	return s.err
}

func TestMultiSink(t *testing.T) {
	boom := errors.New("boom")
	a, b := &recordSink{err: boom}, &recordSink{}
	m := runs.MultiSink(a, nil, b)
	err := m.Log(context.Background(), map[string]any{"_step": 1})
	if !errors.Is(err, boom) {
		t.Errorf("Log error = %v, want boom", err)
	}
	if a.rows != 1 || b.rows != 1 {
		t.Errorf("rows a=%d b=%d, want both 1 (a failure must not starve later sinks)", a.rows, b.rows)
	}
	if err := m.Summary(context.Background(), nil); !errors.Is(err, boom) {
		t.Errorf("Summary error = %v, want boom", err)
	}
}

func TestConcurrentLog(t *testing.T) {
	ctx := context.Background()
	rec, err := runs.Create(ctx, t.TempDir(), newConfig("conc"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 50 {
				_ = rec.Log(ctx, map[string]any{"g": g, "i": i})
				fmt.Fprintf(rec.Output(), "g%d i%d\n", g, i)
			}
		}()
	}
	for range 4 {
		<-done
	}
	if err := rec.Finish(ctx, runs.StateFinished, 0); err != nil {
		t.Fatal(err)
	}
	run, _ := runs.Open(rec.Dir())
	h, err := run.History()
	if err != nil || len(h) != 200 {
		t.Errorf("History() = %d rows, %v; want 200 whole rows", len(h), err)
	}
}
