package wandb_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mami-lab/mami/runs/wandb"
	"github.com/mami-lab/mami/runs/wandb/wandbtest"
)

// streamedRun streams a run of rows history rows to a fresh pipe server with the options a real run has,
// its log recorded; the caller closes the server.
func streamedRun(t *testing.T, id string, rows int) (*wandbtest.Server, *fakeRun, *wandb.Stream, logRecorder, wandb.Options) {
	t.Helper()
	srv := wandbtest.NewPipeServer(wandbtest.Options{})
	r := newFakeRun(t, id)
	logs := newLogRecorder()
	opts := wandb.Options{HTTPClient: srv.Client(), Logger: slog.New(logs), SystemMetrics: -1}
	st, err := wandb.Start(context.Background(), r.dir, settings(srv, r.id), opts)
	must(t, err)
	simulate(t, r, st, rows, nil)
	return srv, r, st, logs, opts
}

// TestFinishWhenTheServerIsGone: the server goes away at the end of a run. Finish keeps trying within
// FlushTimeout and says once what it waits for; it gives up early when connections are refused (the server
// is down) but waits the whole timeout for a server that answers with errors; either way it returns an
// IncompleteError that names `mami sync`. The options are the defaults a real run has.
func TestFinishWhenTheServerIsGone(t *testing.T) {
	tests := []struct {
		name     string
		gone     func(srv *wandbtest.Server)
		min, max time.Duration // how long Finish may take
		cause    string
	}{
		{name: "connections refused", gone: func(srv *wandbtest.Server) { srv.SetDown(true) },
			min: 10 * time.Second, max: 15 * time.Second, cause: "refused"},
		{name: "503 on every request", gone: func(srv *wandbtest.Server) { srv.SetFaults(wandbtest.Faults{Fail: 1}) },
			min: 30 * time.Second, max: 30 * time.Second, cause: "no answer within the flush timeout of 30s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv, r, st, logs, opts := streamedRun(t, "gone-at-the-end", 600)
				defer srv.Close()
				ctx := context.Background()
				tt.gone(srv)
				writeRows(r, 601, 650)
				r.finish(0)
				t0 := time.Now()
				err := st.Finish(ctx, 0)
				took := time.Since(t0)
				var inc *wandb.IncompleteError
				if !errors.As(err, &inc) {
					t.Fatalf("Finish: %v, want an IncompleteError", err)
				}
				if took < tt.min || took > tt.max {
					t.Errorf("Finish took %v, want %v to %v", took, tt.min, tt.max)
				}
				if inc.History < 50 || !strings.Contains(err.Error(), "mami sync "+r.dir) || !strings.Contains(err.Error(), "recorded completely") {
					t.Errorf("Finish: %v; want the 50 rows left and `mami sync %s`", err, r.dir)
				}
				if !strings.Contains(err.Error(), tt.cause) {
					t.Errorf("Finish: %v; want the cause %q", err, tt.cause)
				}
				waits := logs.lines(slog.LevelInfo, "waiting")
				if len(waits) != 1 || !strings.Contains(waits[0], "history rows") || !strings.Contains(waits[0], "mami sync") {
					t.Errorf("logged %q while Finish waited, want one line saying what it waits for", waits)
				}
				if n := len(logs.lines(slog.LevelDebug, "retrying")); n < 3 {
					t.Errorf("%d retries after Finish, want it to keep trying", n)
				}
				t.Logf("Finish took %v: %v", took, err)

				// The server is back: sync sends the rest.
				srv.SetDown(false)
				srv.SetFaults(wandbtest.Faults{})
				rep, err := wandb.Sync(ctx, r.dir, settings(srv, r.id), opts)
				if err != nil || !rep.Completed {
					t.Fatalf("Sync: %+v, %v", rep, err)
				}
				run, _ := srv.GetRun("local", "mami", r.id)
				checkHistory(t, run, 650)
			})
		})
	}
}

// TestFinishDoesNotWaitOutABackoff: after a long outage the sender waits a minute between tries. When the
// server is back at the end of the run, Finish sends at once instead of waiting for the next try, and says
// nothing.
func TestFinishDoesNotWaitOutABackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, r, st, logs, _ := streamedRun(t, "long-outage", 100)
		defer srv.Close()
		ctx := context.Background()
		srv.SetDown(true)
		writeRows(r, 101, 200)
		must(t, st.Log(ctx, nil))
		time.Sleep(4 * time.Minute) // retries back off to a minute apart
		srv.SetDown(false)
		r.finish(0)
		t0 := time.Now()
		if err := st.Finish(ctx, 0); err != nil {
			t.Fatalf("Finish: %v", err)
		}
		if took := time.Since(t0); took > time.Second {
			t.Errorf("Finish took %v with the server back, want it to send at once", took)
		}
		if w := logs.lines(slog.LevelInfo, "waiting"); len(w) != 0 {
			t.Errorf("logged %q for a quick flush, want nothing", w)
		}
		run, _ := srv.GetRun("local", "mami", r.id)
		checkHistory(t, run, 200)
		if !run.Complete {
			t.Error("run not complete")
		}
		checkNoViolations(t, srv)
	})
}
