package wandb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mami-lab/mami/runs/wandb"
	"github.com/mami-lab/mami/runs/wandb/wandbtest"
)

// fakeRun writes a run directory the way runs.Recorder does (history.jsonl appended, summary.json
// replaced, run.json, config.yaml, output.log, plots/).
type fakeRun struct {
	t    testing.TB
	dir  string
	id   string
	hist *os.File
	out  *os.File
	t0   time.Time
}

const testConfig = `workdir: .mami
run:
  id: %s
  name: seed-run
  project: mami
  group: study
  tags: [seed, concat]
  notes: first try
  seed: 1
train:
  lr: 0.001
  hidden: [512]
tracking:
  mode: online
  api_key: secret-key-that-must-not-leave
  upload_checkpoints: true
`

func newFakeRun(t testing.TB, id string) *fakeRun {
	t.Helper()
	dir := filepath.Join(t.TempDir(), id)
	must(t, os.MkdirAll(filepath.Join(dir, "plots"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "checkpoints"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "config.yaml"), fmt.Appendf(nil, testConfig, id), 0o644))
	r := &fakeRun{t: t, dir: dir, id: id, t0: time.Now()}
	r.setState("running", nil, os.Getpid())
	var err error
	r.hist, err = os.OpenFile(filepath.Join(dir, "history.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(t, err)
	r.out, err = os.OpenFile(filepath.Join(dir, "output.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(t, err)
	t.Cleanup(func() { r.hist.Close(); r.out.Close() })
	return r
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (r *fakeRun) setState(state string, exitCode *int, pid int) {
	host, _ := os.Hostname()
	b, err := json.Marshal(map[string]any{"id": r.id, "name": "seed-run", "project": "mami", "state": state,
		"pid": pid, "host": host, "exit_code": exitCode, "started_at": r.t0.Format(time.RFC3339)})
	must(r.t, err)
	must(r.t, os.WriteFile(filepath.Join(r.dir, "run.json"), b, 0o644))
}

// row appends history row step, with a NaN literal every 100 steps as some trainers write.
func (r *fakeRun) row(step int) {
	now := time.Now()
	loss := fmt.Sprintf("%.4f", 1/float64(step))
	if step%100 == 0 {
		loss = "NaN"
	}
	line := fmt.Sprintf(`{"_step":%d,"_runtime":%.3f,"_timestamp":%.3f,"train/loss":%s,"epoch":%d}`+"\n",
		step, now.Sub(r.t0).Seconds(), float64(now.UnixNano())/1e9, loss, 1+step/1000)
	_, err := r.hist.WriteString(line)
	must(r.t, err)
}

func (r *fakeRun) print(s string) {
	_, err := r.out.WriteString(s)
	must(r.t, err)
}

func (r *fakeRun) summary(step int) string {
	s := fmt.Sprintf(`{"_step": %d, "train/loss": %.4f, "best/epoch": %d}`, step, 1/float64(step), step/1000)
	tmp := filepath.Join(r.dir, ".summary.tmp")
	must(r.t, os.WriteFile(tmp, []byte(s), 0o644))
	must(r.t, os.Rename(tmp, filepath.Join(r.dir, "summary.json")))
	return strings.ReplaceAll(s, " ", "")
}

func (r *fakeRun) finish(exitCode int) {
	state := "finished"
	if exitCode != 0 {
		state = "failed"
	}
	r.setState(state, &exitCode, os.Getpid())
}

func settings(srv *wandbtest.Server, id string) wandb.Settings {
	return wandb.Settings{BaseURL: srv.URL, APIKey: wandbtest.DefaultAPIKey, Project: "mami", Mode: wandb.ModeOnline,
		RunID: id, Name: "seed-run", Group: "study", Notes: "first try", Tags: []string{"seed", "concat"}}
}

// fastOptions are options for tests on synctest's fake clock.
func fastOptions(srv *wandbtest.Server) wandb.Options {
	return wandb.Options{
		HTTPClient: srv.Client(), Interval: 2 * time.Second, Heartbeat: 30 * time.Second,
		StartTimeout: 20 * time.Second, FlushTimeout: 30 * time.Minute, SystemMetrics: -1,
		Retry:             wandb.RetryPolicy{MinBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second, AttemptTimeout: 10 * time.Second},
		MaxBatchLines:     400,
		UploadCheckpoints: true,
	}
}

// checkHistory asserts that the server holds steps 1..n exactly once, in order.
func checkHistory(t *testing.T, run wandbtest.Run, n int) {
	t.Helper()
	if len(run.History) != n {
		t.Errorf("server has %d history rows, want %d", len(run.History), n)
	}
	seen := map[int]int{}
	for i, l := range run.History {
		var m struct {
			Step int `json:"_step"`
		}
		if err := json.Unmarshal([]byte(strings.ReplaceAll(l, "NaN", "null")), &m); err != nil {
			t.Fatalf("history line %d %q: %v", i, l, err)
		}
		seen[m.Step]++
		if m.Step != i+1 {
			t.Fatalf("history line %d has _step %d, want %d", i, m.Step, i+1)
		}
	}
	for s := 1; s <= n; s++ {
		if seen[s] != 1 {
			t.Errorf("_step %d arrived %d times, want once", s, seen[s])
		}
	}
}

func checkNoViolations(t *testing.T, srv *wandbtest.Server) {
	t.Helper()
	for _, v := range srv.Violations() {
		t.Errorf("protocol violation: %s", v)
	}
}

// bigRow appends history row step with a string field of pad bytes, too large for a small request limit.
func (r *fakeRun) bigRow(step, pad int) {
	now := time.Now()
	line := fmt.Sprintf(`{"_step":%d,"_runtime":%.3f,"_timestamp":%.3f,"blob":"%s"}`+"\n",
		step, now.Sub(r.t0).Seconds(), float64(now.UnixNano())/1e9, strings.Repeat("x", pad))
	_, err := r.hist.WriteString(line)
	must(r.t, err)
}

// checkSteps asserts that the server holds exactly the history rows of steps want, once each, in order.
func checkSteps(t *testing.T, run wandbtest.Run, want []int) {
	t.Helper()
	got := make([]int, len(run.History))
	for i, l := range run.History {
		var m struct {
			Step int `json:"_step"`
		}
		if err := json.Unmarshal([]byte(strings.ReplaceAll(l, "NaN", "null")), &m); err != nil {
			t.Fatalf("history line %d %q: %v", i, l, err)
		}
		got[i] = m.Step
	}
	if !slices.Equal(got, want) {
		t.Errorf("server history steps: %d rows %v...%v, want %d rows %v...%v", len(got), head(got), tail(got), len(want), head(want), tail(want))
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Errorf("first difference at row %d: step %d, want %d", i, got[i], want[i])
				break
			}
		}
	}
}

func head(s []int) []int { return s[:min(3, len(s))] }
func tail(s []int) []int { return s[max(0, len(s)-3):] }

// stepsExcept is 1..n without the steps in skip.
func stepsExcept(n int, skip ...int) []int {
	var out []int
	for s := 1; s <= n; s++ {
		if !slices.Contains(skip, s) {
			out = append(out, s)
		}
	}
	return out
}

// logRecorder is a slog.Handler that keeps every record, for tests of what the package logs.
type logRecorder struct {
	mu   *sync.Mutex
	recs *[]slog.Record
}

func newLogRecorder() logRecorder { return logRecorder{mu: new(sync.Mutex), recs: new([]slog.Record)} }

func (h logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.recs = append(*h.recs, r.Clone())
	return nil
}
func (h logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logRecorder) WithGroup(string) slog.Handler      { return h }

// lines returns the records at level or above whose message contains substr, as "message k=v ...".
func (h logRecorder) lines(level slog.Level, substr string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range *h.recs {
		if r.Level < level || !strings.Contains(r.Message, substr) {
			continue
		}
		s := r.Message
		r.Attrs(func(a slog.Attr) bool {
			s += " " + a.String()
			return true
		})
		out = append(out, s)
	}
	return out
}
