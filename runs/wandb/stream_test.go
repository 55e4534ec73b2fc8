package wandb_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mami-lab/mami/runs/wandb"
	"github.com/mami-lab/mami/runs/wandb/wandbtest"
)

// simulate records steps rows, one every 10 ms of (fake) time, with console output and a summary every
// 500 steps, nudging st after each write like the CLI's fan-out; during(step) runs before each step.
func simulate(t *testing.T, r *fakeRun, st *wandb.Stream, steps int, during func(step int)) string {
	ctx := context.Background()
	var sum string
	for step := 1; step <= steps; step++ {
		if during != nil {
			during(step)
		}
		r.row(step)
		must(t, st.Log(ctx, nil))
		if step%250 == 0 {
			r.print("epoch progress " + time.Now().Format(time.TimeOnly) + "\n")
		}
		if step%500 == 0 || step == steps {
			sum = r.summary(step)
			must(t, st.Summary(ctx, nil))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return sum
}

// TestStreamUnderFaults is the acceptance test: whatever the server does, every row arrives exactly once.
func TestStreamUnderFaults(t *testing.T) {
	tests := []struct {
		name   string
		steps  int
		faults wandbtest.Faults
		want   []string // fault kinds that must have happened
		during func(srv *wandbtest.Server, step int)
	}{
		{name: "30% 5xx and 10% dropped mid-body", steps: 5000, faults: wandbtest.Faults{Fail: 0.3, Drop: 0.1},
			want: []string{"fail", "drop-before", "drop-after file_stream"}},
		{name: "429 with Retry-After", steps: 1500, faults: wandbtest.Faults{RateLimit: 0.3, RetryAfter: 7 * time.Second},
			want: []string{"rate-limit"}},
		{name: "slow answers past the attempt timeout", steps: 1500, faults: wandbtest.Faults{Slow: 0.3, SlowDelay: 25 * time.Second},
			want: []string{"slow"}},
		{name: "server loses the run", steps: 2000, want: []string{"404"}, during: func(srv *wandbtest.Server, step int) {
			if step == 1000 {
				srv.ForgetRun("local", "mami", "run-under-faults")
			}
		}},
		{name: "outage in mid-run", steps: 3000, during: func(srv *wandbtest.Server, step int) {
			switch step {
			case 500:
				srv.SetDown(true)
			case 2500:
				srv.SetDown(false)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := wandbtest.NewPipeServer(wandbtest.Options{Seed: uint64(i + 1), Faults: tt.faults})
				defer srv.Close()
				r := newFakeRun(t, "run-under-faults")
				must(t, os.WriteFile(filepath.Join(r.dir, "plots", "loss.png"), []byte("png bytes"), 0o644))
				must(t, os.WriteFile(filepath.Join(r.dir, "checkpoints", "best.safetensors"), []byte("weights"), 0o644))
				st, err := wandb.Start(context.Background(), r.dir, settings(srv, r.id), fastOptions(srv))
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				var during func(int)
				if tt.during != nil {
					during = func(step int) { tt.during(srv, step) }
				}
				sum := simulate(t, r, st, tt.steps, during)
				r.print("done without newline")
				r.finish(0)
				if err := st.Finish(context.Background(), 0); err != nil {
					t.Fatalf("Finish: %v", err)
				}
				run, ok := srv.GetRun("local", "mami", r.id)
				if !ok {
					t.Fatal("the run is not on the server")
				}
				checkHistory(t, run, tt.steps)
				if run.Summary != sum {
					t.Errorf("summary %s, want %s", run.Summary, sum)
				}
				if !run.Complete || run.ExitCode == nil || *run.ExitCode != 0 {
					t.Errorf("complete=%v exitcode=%v, want true, 0", run.Complete, run.ExitCode)
				}
				if n := len(run.Output); n != tt.steps/250+1 || run.Output[n-1][27:] != "done without newline" {
					t.Errorf("output.log: %d lines ending %q, want %d ending with the unterminated last line", n, run.Output[n-1], tt.steps/250+1)
				}
				for _, f := range []string{"config.yaml", "plots/loss.png", "checkpoints/best.safetensors"} {
					if _, ok := run.Files[f]; !ok || !slices.Contains(run.Uploaded, f) {
						t.Errorf("file %s: uploaded %v, reported in %v", f, ok, run.Uploaded)
					}
				}
				checkNoViolations(t, srv)
				kinds := map[string]int{}
				for _, q := range srv.Requests() {
					kinds[q.Fault]++
					if q.Status == 404 {
						kinds["404"]++
					}
					if strings.HasSuffix(q.Path, "/file_stream") {
						kinds[q.Fault+" file_stream"]++
					}
				}
				for _, k := range tt.want {
					if kinds[k] == 0 {
						t.Errorf("no %s fault was injected: the test does not test it (faults %v)", k, kinds)
					}
				}
				t.Logf("%d requests, faults %v", len(srv.Requests()), kinds)
			})
		})
	}
}

func TestStartRefusedKeyIsOneError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := wandbtest.NewPipeServer(wandbtest.Options{APIKey: "another-key-0123456789abcdef0123456789abcd"})
		defer srv.Close()
		r := newFakeRun(t, "refused")
		_, err := wandb.Start(context.Background(), r.dir, settings(srv, r.id), fastOptions(srv))
		if !errors.Is(err, wandb.ErrUnauthorized) {
			t.Fatalf("Start: %v, want ErrUnauthorized", err)
		}
		if n := len(srv.Requests()); n != 1 {
			t.Errorf("%d requests, want 1 (no retries of a refused key)", n)
		}
	})
}

func TestServerDownWholeRunThenSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := wandbtest.NewPipeServer(wandbtest.Options{})
		defer srv.Close()
		srv.SetDown(true)
		r := newFakeRun(t, "offline-ish")
		opts := fastOptions(srv)
		opts.FlushTimeout = time.Minute
		t0 := time.Now()
		st, err := wandb.Start(context.Background(), r.dir, settings(srv, r.id), opts)
		if err != nil {
			t.Fatalf("Start with the server down: %v, want the run to go on", err)
		}
		if d := time.Since(t0); d > 5*time.Second {
			t.Errorf("Start took %v with the server down, want at most a few seconds", d)
		}
		sum := simulate(t, r, st, 2000, nil)
		r.finish(0)
		t1 := time.Now()
		err = st.Finish(context.Background(), 0)
		var inc *wandb.IncompleteError
		if !errors.As(err, &inc) || inc.History != 2000 {
			t.Fatalf("Finish: %v, want an IncompleteError with 2000 history rows", err)
		}
		if d := time.Since(t1); d > time.Second {
			t.Errorf("Finish took %v with the server down all along, want it to give up after one more try", d)
		}
		srv.SetDown(false)
		rep, err := wandb.Sync(context.Background(), r.dir, settings(srv, r.id), opts)
		if err != nil {
			t.Fatalf("Sync: %v", err)
		}
		if rep.History != 2000 || !rep.Completed || !rep.Summary {
			t.Errorf("first sync: %+v, want 2000 rows, summary, completed", rep)
		}
		run, _ := srv.GetRun("local", "mami", r.id)
		checkHistory(t, run, 2000)
		if run.Summary != sum || !run.Complete || *run.ExitCode != 0 {
			t.Errorf("server run: summary %s complete %v exit %v", run.Summary, run.Complete, *run.ExitCode)
		}
		n := len(srv.Requests())
		rep, err = wandb.Sync(context.Background(), r.dir, settings(srv, r.id), opts)
		if err != nil || !rep.UpToDate {
			t.Errorf("second sync: %+v, %v; want up to date", rep, err)
		}
		if got := len(srv.Requests()); got != n {
			t.Errorf("second sync sent %d requests, want none", got-n)
		}
		checkNoViolations(t, srv)
	})
}

func TestRemoteStopAndPreempting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := wandbtest.NewPipeServer(wandbtest.Options{})
		defer srv.Close()
		r := newFakeRun(t, "stop-me")
		st, err := wandb.Start(context.Background(), r.dir, settings(srv, r.id), fastOptions(srv))
		must(t, err)
		srv.StopRun("local", "mami", r.id)
		simulate(t, r, st, 300, nil)
		select {
		case <-st.Stopped():
		default:
			t.Fatal("Stopped() not closed after the server answered stopped")
		}
		st.Preempting()
		time.Sleep(5 * time.Second)
		r.finish(143)
		must(t, st.Finish(context.Background(), 143))
		run, _ := srv.GetRun("local", "mami", r.id)
		if !run.Preempting || !run.Complete || *run.ExitCode != 143 {
			t.Errorf("preempting %v complete %v exitcode %v, want true true 143", run.Preempting, run.Complete, *run.ExitCode)
		}
		checkNoViolations(t, srv)
	})
}

func TestHeartbeatWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := wandbtest.NewPipeServer(wandbtest.Options{})
		defer srv.Close()
		r := newFakeRun(t, "idle")
		st, err := wandb.Start(context.Background(), r.dir, settings(srv, r.id), fastOptions(srv))
		must(t, err)
		time.Sleep(95 * time.Second) // idle: three heartbeats at 30 s, 60 s, 90 s
		var beats int
		for _, q := range srv.Requests() {
			if q.Method == "POST" && string(q.Body) == "{}" {
				beats++
			}
		}
		if beats != 3 {
			t.Errorf("%d heartbeats in 95 s idle, want 3", beats)
		}
		r.finish(0)
		must(t, st.Finish(context.Background(), 0))
	})
}

func TestDisabledAndOfflineSendNothing(t *testing.T) {
	for _, mode := range []string{wandb.ModeDisabled, wandb.ModeOffline} {
		t.Run(mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := wandbtest.NewPipeServer(wandbtest.Options{})
				defer srv.Close()
				r := newFakeRun(t, "quiet")
				s := settings(srv, r.id)
				s.Mode = mode
				opts := fastOptions(srv)
				opts.SystemMetrics = 15 * time.Second
				st, err := wandb.Start(context.Background(), r.dir, s, opts)
				must(t, err)
				simulate(t, r, st, 3000, nil) // 30 s: two system metrics rows when offline
				must(t, st.Finish(context.Background(), 0))
				if n := len(srv.Requests()); n != 0 {
					t.Errorf("%d requests, want none", n)
				}
				b, _ := os.ReadFile(filepath.Join(r.dir, wandb.EventsFile))
				rows := len(slices.DeleteFunc(splitLines(b), func(s string) bool { return s == "" }))
				if want := map[string]int{wandb.ModeDisabled: 0, wandb.ModeOffline: 2}[mode]; rows != want {
					t.Errorf("%d system metrics rows, want %d", rows, want)
				}
				for _, line := range splitLines(b) {
					var row map[string]any
					must(t, json.Unmarshal([]byte(line), &row))
					for _, k := range []string{"_timestamp", "_runtime", "system.cpu", "system.memory", "system.proc.memory.rssMB", "system.proc.cpu.percent"} {
						if _, ok := row[k].(float64); !ok {
							t.Errorf("system metrics row %s lacks %s", line, k)
						}
					}
					if rss := row["system.proc.memory.rssMB"].(float64); rss < 1 {
						t.Errorf("RSS %v MB, want this process's resident size", rss)
					}
				}
			})
		})
	}
}

func splitLines(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == '\n' {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return out
}

func TestConfigChangeIsUpsertedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := wandbtest.NewPipeServer(wandbtest.Options{})
		defer srv.Close()
		r := newFakeRun(t, "reconfigured")
		st, err := wandb.Start(context.Background(), r.dir, settings(srv, r.id), fastOptions(srv))
		must(t, err)
		simulate(t, r, st, 300, nil)
		b, err := os.ReadFile(filepath.Join(r.dir, "config.yaml"))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(r.dir, "config.yaml"), []byte(strings.Replace(string(b), "lr: 0.001", "lr: 0.5", 1)), 0o644))
		simulate(t, r, st, 300, nil)
		r.finish(0)
		must(t, st.Finish(context.Background(), 0))
		run, _ := srv.GetRun("local", "mami", r.id)
		if run.Upserts != 2 || !strings.Contains(run.ConfigJSON, `"lr":0.5`) {
			t.Errorf("%d upserts, config %s; want a second UpsertBucket with lr 0.5", run.Upserts, run.ConfigJSON)
		}
		if string(run.Files["config.yaml"]) == "" || !strings.Contains(string(run.Files["config.yaml"]), "lr: 0.5") {
			t.Errorf("uploaded config.yaml %q, want the new lr in the W&B shape", run.Files["config.yaml"])
		}
	})
}

func TestViewer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := wandbtest.NewPipeServer(wandbtest.Options{Entity: "lab"})
		defer srv.Close()
		s := settings(srv, "v")
		if e, err := wandb.Viewer(context.Background(), s, fastOptions(srv)); e != "lab" || err != nil {
			t.Errorf("Viewer = %q, %v; want lab", e, err)
		}
		s.APIKey = "wrong"
		if _, err := wandb.Viewer(context.Background(), s, fastOptions(srv)); !errors.Is(err, wandb.ErrUnauthorized) {
			t.Errorf("Viewer with a wrong key: %v, want ErrUnauthorized", err)
		}
		if n := len(srv.Requests()); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
	})
}
