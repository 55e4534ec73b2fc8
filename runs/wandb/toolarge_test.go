package wandb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mami-lab/mami/runs/wandb"
	"github.com/mami-lab/mami/runs/wandb/wandbtest"
)

// readSkipped returns the skipped list of the run's wandb-sync.json.
func readSkipped(t *testing.T, dir string) []wandb.SkippedRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, wandb.StateFile))
	must(t, err)
	var st struct {
		Skipped []wandb.SkippedRecord `json:"skipped"`
	}
	must(t, json.Unmarshal(b, &st))
	return st.Skipped
}

// fileStreamPosts returns the file_stream requests the server received.
func fileStreamPosts(srv *wandbtest.Server) []wandbtest.Request {
	var out []wandbtest.Request
	for _, q := range srv.Requests() {
		if strings.HasSuffix(q.Path, "/file_stream") {
			out = append(out, q)
		}
	}
	return out
}

// TestStreamSkipsRecordsTooLargeForTheServer: a server that answers 413 for bodies over 64 KiB, and a run
// with one giant history row, one giant output line and one giant summary among normal ones. Every normal
// record arrives once, in order; each giant one is skipped with a warning and listed in wandb-sync.json;
// the run completes.
func TestStreamSkipsRecordsTooLargeForTheServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 64 << 10
		srv := wandbtest.NewPipeServer(wandbtest.Options{MaxBodyBytes: limit})
		defer srv.Close()
		r := newFakeRun(t, "giant-rows")
		logs := newLogRecorder()
		opts := fastOptions(srv)
		opts.Logger = slog.New(logs)
		ctx := context.Background()
		st, err := wandb.Start(ctx, r.dir, settings(srv, r.id), opts)
		must(t, err)
		var sum string
		for step := 1; step <= 1000; step++ {
			switch step {
			case 500:
				r.bigRow(step, 200<<10)
			default:
				r.row(step)
			}
			must(t, st.Log(ctx, nil))
			if step%100 == 0 {
				r.print(fmt.Sprintf("line at step %d\n", step))
			}
			if step == 650 {
				r.print(strings.Repeat("y", 100<<10) + "\n")
			}
			switch step {
			case 700: // a summary larger than the server takes
				big := fmt.Sprintf(`{"_step": %d, "table": %q}`, step, strings.Repeat("z", 100<<10))
				must(t, os.WriteFile(filepath.Join(r.dir, "summary.json"), []byte(big), 0o644))
				must(t, st.Summary(ctx, nil))
			case 1000:
				sum = r.summary(step)
				must(t, st.Summary(ctx, nil))
			}
			time.Sleep(10 * time.Millisecond)
		}
		r.finish(0)
		if err := st.Finish(ctx, 0); err != nil {
			t.Fatalf("Finish: %v, want the stream to go on past the records the server refused", err)
		}
		run, _ := srv.GetRun("local", "mami", r.id)
		checkSteps(t, run, stepsExcept(1000, 500))
		if len(run.Output) != 10 || strings.Contains(strings.Join(run.Output, ""), "yyy") {
			t.Errorf("server output: %d lines, want the 10 normal ones without the giant one", len(run.Output))
		}
		if run.Summary != sum || !run.Complete || run.ExitCode == nil || *run.ExitCode != 0 {
			t.Errorf("summary %.40s complete %v exit %v, want the last summary, complete, 0", run.Summary, run.Complete, run.ExitCode)
		}
		checkNoViolations(t, srv)

		skipped := readSkipped(t, r.dir)
		if len(skipped) != 3 {
			t.Fatalf("wandb-sync.json lists %d skipped records %+v, want 3", len(skipped), skipped)
		}
		files := map[string]wandb.SkippedRecord{}
		for _, s := range skipped {
			files[s.File] = s
			if !strings.Contains(s.Reason, "413") {
				t.Errorf("skipped %s: reason %q, want the 413", s.File, s.Reason)
			}
		}
		if h := files[wandb.HistoryFile]; h.Step == nil || *h.Step != 500 || h.Bytes < 200<<10 {
			t.Errorf("skipped history record %+v, want step 500 of over 200 KiB", h)
		}
		if o := files[wandb.OutputFile]; o.Bytes != 100<<10+1 {
			t.Errorf("skipped output record %+v, want the 100 KiB line", o)
		}
		if _, ok := files[wandb.SummaryFile]; !ok {
			t.Errorf("the giant summary is not listed as skipped: %+v", skipped)
		}
		warns := logs.lines(slog.LevelWarn, "skipped")
		if len(warns) != 3 {
			t.Errorf("%d warnings about skipped records, want 3: %q", len(warns), warns)
		}
		for _, w := range warns {
			if strings.Contains(w, "history.jsonl") && !(strings.Contains(w, "step 500") && strings.Contains(w, "run giant-rows") && strings.Contains(w, "bytes")) {
				t.Errorf("warning %.200q: want the run, the file, the step and the size", w)
			}
		}
		tooLarge := 0
		for _, q := range fileStreamPosts(srv) {
			if q.Fault == "too-large" {
				tooLarge++
			}
		}
		if tooLarge < 3 {
			t.Errorf("%d requests refused with 413: the test did not make the server refuse each giant record", tooLarge)
		}

		// Sync afterwards: nothing to send, the giant records are reported, not retried.
		n := len(srv.Requests())
		rep, err := wandb.Sync(ctx, r.dir, settings(srv, r.id), opts)
		if err != nil || !rep.UpToDate || len(rep.Skipped) != 3 {
			t.Errorf("sync after the stream: %+v, %v; want up to date with 3 skipped records", rep, err)
		}
		if got := len(srv.Requests()); got != n {
			t.Errorf("sync sent %d requests, want none (the skipped records are not retried)", got-n)
		}
		if w := logs.lines(slog.LevelWarn, "3 records too large"); len(w) != 1 {
			t.Errorf("sync logged %q, want one warning listing the 3 skipped records", w)
		}
	})
}

// TestSyncRequestsStayUnderTheCap: a backlog far larger than MaxRequestBytes goes out in several requests,
// none over the cap, even with MaxBatchBytes set higher; a row larger than the cap on its own is skipped
// without being sent.
func TestSyncRequestsStayUnderTheCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 64 << 10
		srv := wandbtest.NewPipeServer(wandbtest.Options{MaxBodyBytes: limit})
		defer srv.Close()
		r := newFakeRun(t, "backlog")
		writeRows(r, 1, 2999)
		r.bigRow(3000, limit)
		writeRows(r, 3001, 6000)
		r.print(strings.Repeat(`"quoted" `, 4000) + "\n") // 36 KB that JSON escaping grows past 44 KB
		r.print(strings.Repeat(`"quoted" `, 4000) + "\n")
		r.finish(0)
		opts := fastOptions(srv)
		opts.MaxRequestBytes, opts.MaxBatchBytes, opts.MaxBatchLines = limit, 1<<30, 100000
		rep, err := wandb.Sync(context.Background(), r.dir, settings(srv, r.id), opts)
		if err != nil {
			t.Fatalf("Sync: %v", err)
		}
		posts := fileStreamPosts(srv)
		for _, q := range posts {
			if len(q.Body) > limit || q.Fault != "" {
				t.Errorf("a file_stream request of %d bytes (fault %q), want at most %d", len(q.Body), q.Fault, limit)
			}
		}
		if len(posts) < 8 {
			t.Errorf("%d file_stream requests for a backlog of about %d KiB under a %d KiB cap, want at least 8", len(posts), 6000*110>>10, limit>>10)
		}
		run, _ := srv.GetRun("local", "mami", r.id)
		checkSteps(t, run, stepsExcept(6000, 3000))
		if len(run.Output) != 2 {
			t.Errorf("%d output lines on the server, want both long lines", len(run.Output))
		}
		if len(rep.Skipped) != 1 || rep.Skipped[0].Step == nil || *rep.Skipped[0].Step != 3000 || !strings.Contains(rep.Skipped[0].Reason, "MaxRequestBytes") {
			t.Errorf("report lists skipped %+v, want step 3000, over the client's limit", rep.Skipped)
		}
		if !rep.Completed || rep.History != 5999 {
			t.Errorf("report %+v, want 5999 rows sent and the run completed", rep)
		}
		checkNoViolations(t, srv)
	})
}

// TestEvery413SkipsNothing: a server that refuses every file_stream request with 413, even an empty one,
// has a problem other than size: no record is skipped, and the sync fails for a later retry.
func TestEvery413SkipsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := wandbtest.NewPipeServer(wandbtest.Options{MaxBodyBytes: 1})
		defer srv.Close()
		r := newFakeRun(t, "refused-413")
		writeRows(r, 1, 100)
		r.finish(0)
		_, err := wandb.Sync(context.Background(), r.dir, settings(srv, r.id), fastOptions(srv))
		if err == nil || !strings.Contains(err.Error(), "413") {
			t.Errorf("Sync: %v, want a 413 error", err)
		}
		if s := readSkipped(t, r.dir); len(s) != 0 {
			t.Errorf("skipped %+v, want nothing skipped", s)
		}
		srv.SetMaxBodyBytes(0)
		if _, err := wandb.Sync(context.Background(), r.dir, settings(srv, r.id), fastOptions(srv)); err != nil {
			t.Fatalf("Sync once the server takes requests: %v", err)
		}
		run, _ := srv.GetRun("local", "mami", r.id)
		checkHistory(t, run, 100)
	})
}
