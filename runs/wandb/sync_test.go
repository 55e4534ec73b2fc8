package wandb_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mami-lab/mami/runs/wandb"
	"github.com/mami-lab/mami/runs/wandb/wandbtest"
)

// writeRows appends steps from..to without a stream, as an offline run does.
func writeRows(r *fakeRun, from, to int) {
	for step := from; step <= to; step++ {
		r.row(step)
	}
}

func TestSyncKilledRunIsCompletedAsFailed(t *testing.T) {
	cmd := exec.Command("true")
	must(t, cmd.Run())
	deadPID := cmd.Process.Pid
	synctest.Test(t, func(t *testing.T) {
		srv := wandbtest.NewPipeServer(wandbtest.Options{})
		defer srv.Close()
		r := newFakeRun(t, "killed")
		writeRows(r, 1, 700)
		r.hist.WriteString(`{"_step":701,"_runt`) // torn last write of a process killed with -9
		r.summary(700)
		r.setState("running", nil, deadPID)
		rep, err := wandb.Sync(context.Background(), r.dir, settings(srv, r.id), fastOptions(srv))
		if err != nil {
			t.Fatalf("Sync: %v", err)
		}
		if !rep.Completed || rep.ExitCode == 0 || rep.InProgress || !strings.Contains(rep.Note, "marked failed") {
			t.Errorf("report %+v: want completed with a non-zero exit code and a note", rep)
		}
		run, _ := srv.GetRun("local", "mami", r.id)
		checkHistory(t, run, 700)
		if !run.Complete || run.ExitCode == nil || *run.ExitCode == 0 {
			t.Errorf("server: complete %v exitcode %v, want a failed run", run.Complete, run.ExitCode)
		}
		checkNoViolations(t, srv)
	})
}

func TestSyncRunInProgressThenFinished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := wandbtest.NewPipeServer(wandbtest.Options{Faults: wandbtest.Faults{Fail: 0.2, Drop: 0.1}, Seed: 7})
		defer srv.Close()
		r := newFakeRun(t, "in-progress") // run.json: running, this process
		writeRows(r, 1, 1200)
		opts := fastOptions(srv)
		opts.Retry.MaxAttempts = 50
		rep, err := wandb.Sync(context.Background(), r.dir, settings(srv, r.id), opts)
		if err != nil {
			t.Fatalf("Sync in progress: %v", err)
		}
		if !rep.InProgress || rep.Completed || rep.History != 1200 {
			t.Errorf("first sync %+v: want 1200 rows of a run in progress, not completed", rep)
		}
		run, _ := srv.GetRun("local", "mami", r.id)
		if run.Complete {
			t.Error("a run in progress was marked complete")
		}
		writeRows(r, 1201, 3000)
		sum := r.summary(3000)
		r.finish(0)
		rep, err = wandb.Sync(context.Background(), r.dir, settings(srv, r.id), opts)
		if err != nil || rep.History != 1800 || !rep.Completed {
			t.Fatalf("second sync %+v, %v: want the 1800 new rows and completion", rep, err)
		}
		run, _ = srv.GetRun("local", "mami", r.id)
		checkHistory(t, run, 3000)
		if run.Summary != sum || !run.Complete {
			t.Errorf("summary %q complete %v", run.Summary, run.Complete)
		}
		checkNoViolations(t, srv)
	})
}

func TestSyncBatchesAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := wandbtest.NewPipeServer(wandbtest.Options{})
		defer srv.Close()
		r := newFakeRun(t, "long-outage")
		writeRows(r, 1, 6000)
		r.finish(0)
		opts := fastOptions(srv)
		opts.MaxBatchLines, opts.MaxBatchBytes = 100000, 64<<10
		if _, err := wandb.Sync(context.Background(), r.dir, settings(srv, r.id), opts); err != nil {
			t.Fatal(err)
		}
		posts := 0
		for _, q := range srv.Requests() {
			if strings.HasSuffix(q.Path, "/file_stream") {
				posts++
				if len(q.Body) > 64<<10+4096 {
					t.Errorf("a file_stream request of %d bytes, want at most about %d", len(q.Body), 64<<10)
				}
			}
		}
		run, _ := srv.GetRun("local", "mami", r.id)
		checkHistory(t, run, 6000)
		if posts < 8 {
			t.Errorf("%d file_stream requests for 6000 rows under a 64 KiB limit, want more than 8", posts)
		}
	})
}

func TestSyncResumeContinuesHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := wandbtest.NewPipeServer(wandbtest.Options{})
		defer srv.Close()
		first := newFakeRun(t, "resumed")
		writeRows(first, 1, 300)
		first.finish(0)
		if _, err := wandb.Sync(context.Background(), first.dir, settings(srv, first.id), fastOptions(srv)); err != nil {
			t.Fatal(err)
		}
		second := newFakeRun(t, "resumed") // a new local run directory, the same server run
		writeRows(second, 1, 200)
		second.finish(0)
		s := settings(srv, second.id)
		for _, tc := range []struct {
			resume  string
			wantErr bool
		}{{wandb.ResumeNever, true}, {wandb.ResumeMust, false}} {
			s.Resume = tc.resume
			_, err := wandb.Sync(context.Background(), second.dir, s, fastOptions(srv))
			if (err != nil) != tc.wantErr {
				t.Fatalf("resume %s: err %v, want error %v", tc.resume, err, tc.wantErr)
			}
		}
		run, _ := srv.GetRun("local", "mami", second.id)
		checkHistory(t, run, 500) // steps 1..300, then 301..500 shifted after the server's last step
		s.RunID, s.Resume = "never-seen", wandb.ResumeMust
		other := newFakeRun(t, "never-seen")
		if _, err := wandb.Sync(context.Background(), other.dir, s, fastOptions(srv)); err == nil || !strings.Contains(err.Error(), "must") {
			t.Errorf("resume must of an unknown run: %v, want an error", err)
		}
	})
}

func TestSyncRetryAfterIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := wandbtest.NewPipeServer(wandbtest.Options{Faults: wandbtest.Faults{RateLimit: 1, RetryAfter: 120 * time.Second}})
		defer srv.Close()
		go func() {
			time.Sleep(5 * time.Minute)
			srv.SetFaults(wandbtest.Faults{})
		}()
		r := newFakeRun(t, "rate-limited")
		writeRows(r, 1, 10)
		r.finish(0)
		opts := fastOptions(srv)
		opts.Retry.MaxAttempts = 10
		if _, err := wandb.Sync(context.Background(), r.dir, settings(srv, r.id), opts); err != nil {
			t.Fatal(err)
		}
		reqs := srv.Requests()
		for i := 1; i < len(reqs) && reqs[i-1].Fault == "rate-limit"; i++ {
			if gap := reqs[i].Time.Sub(reqs[i-1].Time); gap < 120*time.Second || gap > 121*time.Second {
				t.Errorf("request %d came %v after a 429 with Retry-After: 120, want 120 s", i+1, gap)
			}
		}
		if reqs[0].Fault != "rate-limit" || reqs[2].Fault != "rate-limit" {
			t.Fatalf("the first requests were not rate limited: the test tests nothing")
		}
	})
}

func TestRetryPolicyByStatus(t *testing.T) {
	tests := []struct {
		status int
		tries  int
	}{
		{400, 1}, {401, 1}, {403, 1}, {404, 1}, {409, 1}, {410, 1}, {413, 1}, {422, 1}, {501, 1},
		{408, 3}, {429, 3}, {500, 3}, {502, 3}, {503, 3}, {504, 3},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			var n atomic.Int32
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				http.Error(w, strings.Repeat("x", 1<<20), tt.status) // a long error body is cut
			}))
			defer ts.Close()
			r := newFakeRun(t, "statuses")
			s := wandb.Settings{BaseURL: ts.URL, APIKey: "k", Project: "p", Mode: wandb.ModeOnline}
			opts := wandb.Options{Retry: wandb.RetryPolicy{MaxAttempts: 3, MinBackoff: time.Microsecond, MaxBackoff: time.Microsecond}}
			_, err := wandb.Sync(context.Background(), r.dir, s, opts)
			if err == nil {
				t.Fatal("Sync succeeded against a failing server")
			}
			if got := int(n.Load()); got != tt.tries {
				t.Errorf("%d attempts, want %d", got, tt.tries)
			}
			var he *wandb.HTTPError
			if errors.As(err, &he) && len(he.Body) > 4<<10 {
				t.Errorf("error body of %d bytes kept, want at most 4 KiB", len(he.Body))
			}
			if tt.status == 401 && !errors.Is(err, wandb.ErrUnauthorized) {
				t.Errorf("401: %v, want ErrUnauthorized", err)
			}
		})
	}
}

func TestSyncBusyWhileStreaming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := wandbtest.NewPipeServer(wandbtest.Options{})
		defer srv.Close()
		r := newFakeRun(t, "busy")
		st, err := wandb.Start(context.Background(), r.dir, settings(srv, r.id), fastOptions(srv))
		must(t, err)
		if _, err := wandb.Sync(context.Background(), r.dir, settings(srv, r.id), fastOptions(srv)); !errors.Is(err, wandb.ErrBusy) {
			t.Errorf("Sync during a live stream: %v, want ErrBusy", err)
		}
		r.finish(0)
		must(t, st.Finish(context.Background(), 0))
	})
}

func TestStateFileSurvivesAndResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := wandbtest.NewPipeServer(wandbtest.Options{})
		defer srv.Close()
		r := newFakeRun(t, "state")
		writeRows(r, 1, 50)
		if _, err := wandb.Sync(context.Background(), r.dir, settings(srv, r.id), fastOptions(srv)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(r.dir, wandb.StateFile))
		must(t, err)
		var st struct {
			History struct{ Line, Byte int64 }
		}
		must(t, json.Unmarshal(b, &st))
		fi, _ := os.Stat(filepath.Join(r.dir, "history.jsonl"))
		if st.History.Line != 50 || st.History.Byte != fi.Size() {
			t.Errorf("state history cursor %+v, want line 50 at byte %d", st.History, fi.Size())
		}
		// A different destination starts over, at offset 0.
		s := settings(srv, r.id)
		s.Project = "elsewhere"
		if _, err := wandb.Sync(context.Background(), r.dir, s, fastOptions(srv)); err != nil {
			t.Fatal(err)
		}
		run, _ := srv.GetRun("local", "elsewhere", r.id)
		checkHistory(t, run, 50)
	})
}
