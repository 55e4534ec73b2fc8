package wandb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// SyncReport says what one Sync sent.
type SyncReport struct {
	Dir, Entity, Project, RunID string
	URL                         string // the run's page path on the server: {base}/{entity}/{project}/runs/{id}
	History, Events, Output     int    // lines acknowledged by this sync
	Summary                     bool   // the summary was sent
	Files                       []string
	Requests                    int // HTTP attempts, retries included
	UpToDate                    bool
	InProgress                  bool // the run is still being recorded: not marked complete
	Completed                   bool // this sync marked the run complete
	ExitCode                    int
	Note                        string // e.g. why a crashed run was marked failed
	// Skipped lists the records the server refused as too large, in this sync or before: they are in the run
	// directory but not on the server, and are not sent again.
	Skipped []SkippedRecord
}

// Sync uploads what the server has not acknowledged of the run in runDir: history, system metrics, output,
// summary and files, then marks the run complete when it has ended. It is idempotent: a second Sync of an
// uploaded, ended run sends nothing. A run still in progress is sent as far as it goes and left open. A run
// whose run.json still says running but whose process is gone (killed with -9) is completed as failed, with
// exit code 1 unless run.json has one. Sync of a run another process is sending returns ErrBusy.
//
// Sync ignores s.Mode: it exists to upload runs recorded offline.
func Sync(ctx context.Context, runDir string, s Settings, opts Options) (rep SyncReport, err error) {
	opts = opts.withDefaults()
	if opts.Retry.MaxAttempts == 0 {
		opts.Retry.MaxAttempts = 10
	}
	rep.Dir = runDir
	if _, err := os.Stat(runDir); err != nil {
		return rep, fmt.Errorf("sync %s: %w", runDir, err)
	}
	if s.APIKey == "" {
		return rep, fmt.Errorf("sync %s: no API key: set WANDB_API_KEY or tracking.api_key, or run `wandb login`", runDir)
	}
	unlock, err := lockDir(runDir)
	if err != nil {
		return rep, err
	}
	defer unlock()
	sn, err := newSender(runDir, s, opts)
	if err != nil {
		return rep, fmt.Errorf("sync %s: %w", runDir, err)
	}
	rep.RunID = sn.st.RunID

	ended, exitCode, note := runEnded(runDir)
	rep.ExitCode, rep.Note = exitCode, note
	rep.InProgress = !ended

	// Nothing to do: no request at all, so a second sync cannot change the server.
	if st := sn.state(); st.Complete && ended {
		b, err := sn.build(true)
		if err != nil {
			return rep, fmt.Errorf("sync %s: %w", runDir, err)
		}
		ups, err := sn.uploads()
		if err != nil {
			return rep, fmt.Errorf("sync %s: %w", runDir, err)
		}
		if b.empty() && len(ups) == 0 {
			rep.UpToDate, rep.Entity, rep.Project = true, st.Entity, st.Project
			rep.URL = runURL(s.BaseURL, st)
			rep.Skipped = reportSkipped(opts, st)
			return rep, nil
		}
	}

	defer func() {
		st := sn.state()
		rep.Entity, rep.Project, rep.RunID = st.Entity, st.Project, st.RunID
		rep.URL = runURL(s.BaseURL, st)
		rep.History, rep.Events, rep.Output = sn.sent.History, sn.sent.Events, sn.sent.Output
		rep.Summary, rep.Files, rep.Requests = sn.sent.Summary, sn.sent.Files, sn.c.attempts()
		rep.Skipped = reportSkipped(opts, st)
	}()
	if err := sn.init(ctx); err != nil {
		return rep, fmt.Errorf("sync %s: %w", runDir, err)
	}
	if !ended {
		if err := sn.drain(ctx, false); err != nil {
			return rep, fmt.Errorf("sync %s: %w", runDir, err)
		}
		return rep, nil
	}
	if err := sn.finish(ctx, exitCode); err != nil {
		if sn.state().Complete {
			rep.Completed = true
		}
		return rep, fmt.Errorf("sync %s: %w", runDir, err)
	}
	rep.Completed = true
	return rep, nil
}

// reportSkipped logs, once a sync, the records of the run the server refused as too large.
func reportSkipped(opts Options, st *syncState) []SkippedRecord {
	if len(st.Skipped) == 0 {
		return nil
	}
	list := make([]string, len(st.Skipped))
	for i, r := range st.Skipped {
		list[i] = r.String()
	}
	opts.Logger.Warn(fmt.Sprintf("wandb: run %s: %d records too large for the server are not on it (they stay in the run directory; listed in %s): %s",
		st.RunID, len(st.Skipped), StateFile, strings.Join(list, "; ")), "run", st.RunID, "skipped", len(st.Skipped))
	return st.Skipped
}

func runURL(base string, st *syncState) string {
	if st.Entity == "" {
		return ""
	}
	return base + "/" + st.Entity + "/" + st.Project + "/runs/" + st.RunID
}

// runEnded reads run.json: whether the run has ended, and with which exit code.
func runEnded(dir string) (ended bool, exitCode int, note string) {
	m, err := readRunMeta(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, 0, "no run.json: sent as a run in progress"
		}
		return false, 0, fmt.Sprintf("unreadable run.json (%v): sent as a run in progress", err)
	}
	code := func(def int) int {
		if m.ExitCode != nil {
			return *m.ExitCode
		}
		return def
	}
	switch m.State {
	case "finished":
		return true, code(0), ""
	case "failed", "crashed", "stopped":
		c := code(1)
		if c == 0 && m.State != "stopped" {
			c = 1
		}
		return true, c, ""
	case "running", "":
		host, _ := os.Hostname()
		if m.Host != "" && host != "" && m.Host != host {
			return false, 0, fmt.Sprintf("run.json says running on host %s; cannot check its process from %s", m.Host, host)
		}
		if processAlive(m.PID) {
			return false, 0, ""
		}
		return true, code(1), fmt.Sprintf("run.json says running but process %d is gone: marked failed", m.PID)
	}
	return true, code(1), fmt.Sprintf("unknown state %q in run.json: marked failed", m.State)
}
