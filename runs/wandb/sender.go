package wandb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"gopkg.in/yaml.v3"
)

// sender moves one run directory to the server: it owns the acknowledged state and builds, sends and
// acknowledges file_stream requests. It is used by one goroutine at a time.
type sender struct {
	dir  string
	s    Settings
	opts Options
	c    *client
	log  *slog.Logger

	mu     sync.Mutex // guards st for readers outside the sending goroutine
	st     *syncState
	ready  bool   // the run exists on the server and st.Entity/Project are its path
	entity string // the entity asked for, or the viewer's

	onStop     func() // called when the server answers {"stopped": true}
	preempting func() bool
	preemptAck bool // preempting was acknowledged once
	restarted  bool // the server lost the run and the state went back to offset 0: build again
	sent       sentCounts
	// maxAccepted is the largest file_stream body the server took: a 413 for a smaller one is not about size.
	maxAccepted int
}

// sentCounts is what a sender got acknowledged, for reports.
type sentCounts struct {
	History, Events, Output int
	Summary                 bool
	Files                   []string
	Requests                int
}

func newSender(dir string, s Settings, opts Options) (*sender, error) {
	runID := s.RunID
	if runID == "" {
		if m, err := readRunMeta(dir); err == nil && m.ID != "" {
			runID = m.ID
		} else {
			runID = filepath.Base(dir)
		}
	}
	s.RunID = runID
	st, err := loadState(dir, destination(s, runID))
	if err != nil {
		return nil, err
	}
	st.RunID = runID
	return &sender{
		dir: dir, s: s, opts: opts, st: st, log: opts.Logger,
		c: newClient(opts.HTTPClient, s, opts.Retry, opts.Logger),
	}, nil
}

func (sn *sender) path(name string) string { return filepath.Join(sn.dir, name) }

// state returns a copy of the acknowledged state.
func (sn *sender) state() *syncState {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	return sn.st.clone()
}

// init checks the key (Viewer), reads the server's features, checks resume and creates or updates the run
// (UpsertBucket).
func (sn *sender) init(ctx context.Context) error {
	entity, err := sn.c.viewer(ctx)
	if err != nil {
		if errors.Is(err, ErrUnauthorized) {
			return &permanentError{fmt.Errorf("%w: check WANDB_API_KEY, tracking.api_key or ~/.netrc for %s", err, sn.s.BaseURL)}
		}
		return err
	}
	if sn.s.Entity != "" {
		entity = sn.s.Entity
	}
	sn.c.serverFeatures(ctx)
	st := sn.state()
	if sn.s.Resume != ResumeNone && !st.Created {
		ri, err := sn.c.runResumeStatus(ctx, entity, sn.s.Project, st.RunID)
		if err != nil {
			return err
		}
		switch {
		case ri.Exists && sn.s.Resume == ResumeNever:
			return &permanentError{fmt.Errorf("wandb: run %s/%s/%s already exists and WANDB_RESUME=never", entity, sn.s.Project, st.RunID)}
		case !ri.Exists && sn.s.Resume == ResumeMust:
			return &permanentError{fmt.Errorf("wandb: run %s/%s/%s does not exist and WANDB_RESUME=must", entity, sn.s.Project, st.RunID)}
		case ri.Exists && st.History.Byte == 0 && st.Events.Byte == 0 && st.Output.Byte == 0:
			st.History.Line, st.Events.Line, st.Output.Line = int64(ri.HistoryLineCount), int64(ri.EventsLineCount), int64(ri.LogLine)
			if ri.LastStep >= 0 {
				first := int64(1)
				if l, _, _, _ := readLines(sn.path(HistoryFile), 0, 1, 1<<20, false, keepJSONObject); len(l) == 1 {
					if f, ok := lineStep([]byte(l[0])); ok {
						first = f
					}
				}
				st.StepOffset = max(0, ri.LastStep+1-first)
			}
		}
	}
	if err := sn.commit(st); err != nil {
		return &permanentError{err}
	}
	sn.entity = entity
	if err := sn.upsert(ctx); err != nil {
		return err
	}
	sn.ready = true
	return nil
}

// upsert creates or updates the run (UpsertBucket) with the metadata and config.yaml of the run directory.
func (sn *sender) upsert(ctx context.Context) error {
	cfg, err := wandbConfig(sn.dir)
	if err != nil {
		return &permanentError{err}
	}
	cfgJSON, _ := json.Marshal(cfg)
	sum := sha256.Sum256(cfgJSON)
	st := sn.state()
	host, _ := os.Hostname()
	meta, _ := readRunMeta(sn.dir)
	in := upsertInput{
		RunID: st.RunID, Entity: sn.entity, Project: sn.s.Project, DisplayName: sn.s.Name, Group: sn.s.Group,
		Notes: sn.s.Notes, Sweep: sn.s.SweepID, Tags: sn.s.Tags, Config: cfg, Host: host, Program: "mami",
	}
	if st.Created && st.Entity != "" {
		in.Entity, in.Project = st.Entity, st.Project
	}
	if meta != nil {
		in.DisplayName = cmp(in.DisplayName, meta.Name)
		in.Group = cmp(in.Group, meta.Group)
		in.Notes = cmp(in.Notes, meta.Notes)
		in.Sweep = cmp(in.Sweep, meta.SweepID)
		if in.Tags == nil {
			in.Tags = meta.Tags
		}
		if meta.Host != "" {
			in.Host = meta.Host
		}
	}
	bi, err := sn.c.upsertBucket(ctx, in)
	if err != nil {
		return err
	}
	st = sn.state()
	st.Entity, st.Project, st.RunID, st.Created = bi.Entity, bi.Project, bi.Name, true
	st.ConfigSHA = hex.EncodeToString(sum[:])
	if err := sn.commit(st); err != nil {
		return &permanentError{err}
	}
	return nil
}

// configChanged reports whether config.yaml changed since the last UpsertBucket.
func (sn *sender) configChanged() bool {
	cfg, err := wandbConfig(sn.dir)
	if err != nil {
		return false
	}
	b, _ := json.Marshal(cfg)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]) != sn.state().ConfigSHA
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// commit makes st the acknowledged state and persists it.
func (sn *sender) commit(st *syncState) error {
	sn.mu.Lock()
	sn.st = st
	sn.mu.Unlock()
	return st.save(sn.dir)
}

// send posts b and acknowledges what the server took. A batch whose body would be larger than
// MaxRequestBytes, or that the server refuses with 413 Request Entity Too Large, is cut in halves sent one
// after the other; a single record refused so is skipped (see skip), and the stream goes on after it.
func (sn *sender) send(ctx context.Context, b *batch) error {
	if b.bigSummary > 0 {
		rec := SkippedRecord{File: SummaryFile, Bytes: b.bigSummary,
			Reason: fmt.Sprintf("larger than the request limit of %d bytes (Options.MaxRequestBytes)", sn.opts.MaxRequestBytes)}
		only := b.nothing()
		only.summarySHA, only.bigSummary = b.summarySHA, b.bigSummary
		if err := sn.skip(only, rec); err != nil {
			return err
		}
		b.bigSummary = 0
		if b.empty() {
			return nil
		}
	}
	return sn.sendPart(ctx, b)
}

func (sn *sender) sendPart(ctx context.Context, b *batch) error {
	from := sn.state()
	body, err := b.encode(from)
	if err != nil {
		return &permanentError{fmt.Errorf("encode file_stream request: %w", err)}
	}
	n := b.records()
	if len(body) > sn.opts.MaxRequestBytes && n > 0 {
		if n > 1 {
			return sn.sendSplit(ctx, b)
		}
		return sn.skipOne(ctx, b, fmt.Sprintf("larger than the request limit of %d bytes (Options.MaxRequestBytes)", sn.opts.MaxRequestBytes))
	}
	err = sn.post(ctx, from, b, body)
	var he *HTTPError
	if n == 0 || !errors.As(err, &he) || he.Status != http.StatusRequestEntityTooLarge {
		return err
	}
	if n > 1 {
		sn.log.Debug("wandb: file_stream request too large for the server; sending it in halves", "run", from.RunID, "bytes", len(body), "records", n)
		return sn.sendSplit(ctx, b)
	}
	// Skip the record only when the 413 is about its size: the server took smaller requests before, or
	// takes an empty one now. A server that refuses everything so must not make the run skip every record.
	if len(body) <= sn.maxAccepted {
		return fmt.Errorf("file_stream: a request of %d bytes refused with 413, although one of %d bytes was accepted before: %w", len(body), sn.maxAccepted, err)
	}
	if sn.maxAccepted == 0 {
		if perr := sn.post(ctx, from, b.nothing(), []byte("{}")); perr != nil {
			return fmt.Errorf("file_stream: one record refused with 413, and an empty request failed too: %w", perr)
		}
		if sn.restarted {
			return nil
		}
	}
	return sn.skipOne(ctx, b, fmt.Sprintf("refused by the server with 413 Request Entity Too Large (request of %d bytes)", len(body)))
}

// sendSplit sends the two halves of b, the second only once the first was acknowledged.
func (sn *sender) sendSplit(ctx context.Context, b *batch) error {
	first, second := b.split()
	if err := sn.sendPart(ctx, first); err != nil {
		return err
	}
	if sn.restarted { // the server lost the run: the state went back to the start, build again
		return nil
	}
	return sn.sendPart(ctx, second)
}

// skipOne skips the only record of b, then sends what else b reports.
func (sn *sender) skipOne(ctx context.Context, b *batch, reason string) error {
	only, rec := b.takeOne(sn.state().StepOffset)
	rec.Reason = reason
	if err := sn.skip(only, rec); err != nil {
		return err
	}
	if b.empty() {
		return nil
	}
	return sn.sendPart(ctx, b)
}

// skip passes over one record without sending it: the acknowledged offsets move past it, so it is never
// sent again, and it is listed in wandb-sync.json and logged. It stays in the run directory.
func (sn *sender) skip(only *batch, rec SkippedRecord) error {
	st := sn.state()
	if err := only.ack(st, false); err != nil {
		return &permanentError{err}
	}
	st.Skipped = addSkipped(st.Skipped, rec)
	if err := sn.commit(st); err != nil {
		return &permanentError{err}
	}
	attrs := []any{"run", st.RunID, "file", rec.File, "bytes", rec.Bytes, "reason", rec.Reason}
	if rec.Step != nil {
		attrs = append(attrs, "step", *rec.Step)
	}
	sn.log.Warn("wandb: run "+st.RunID+": skipped "+rec.String()+"; it stays in the run directory, listed in "+StateFile+", and is not sent again", attrs...)
	return nil
}

// post sends one request whose lines go at the offsets of from and, once the server took it, commits its
// state.
func (sn *sender) post(ctx context.Context, from *syncState, b *batch, body []byte) error {
	st := from
	u := sn.s.BaseURL + "/files/" + url.PathEscape(st.Entity) + "/" + url.PathEscape(st.Project) + "/" + url.PathEscape(st.RunID) + "/file_stream"
	req := request{
		method: http.MethodPost, url: u, body: jsonBody(body), auth: true,
		header: http.Header{"Content-Type": {"application/json"}},
	}
	ans, err := sn.c.do(ctx, req)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusNotFound {
		// The server does not know the run (a server restarted without it): create it again, send again.
		// The local run directory still has everything: start over from offset 0.
		sn.log.Warn("wandb: the server lost the run; sending it again from the start", "run", st.RunID)
		if err := sn.upsert(ctx); err != nil {
			return fmt.Errorf("file_stream: run not found, and creating it again failed: %w", err)
		}
		fresh := sn.state()
		fresh.History, fresh.Events, fresh.Output = cursor{}, cursor{}, cursor{}
		fresh.StepOffset, fresh.SummarySHA, fresh.Uploaded, fresh.Reported = 0, "", nil, nil
		fresh.Complete, fresh.ExitCode = false, nil
		if err := sn.commit(fresh); err != nil {
			return &permanentError{err}
		}
		sn.restarted = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("file_stream: %w", err)
	}
	sn.maxAccepted = max(sn.maxAccepted, len(body))
	to := sn.state()
	if err := b.ack(to, true); err != nil {
		return &permanentError{err}
	}
	if err := sn.commit(to); err != nil {
		return &permanentError{err}
	}
	sn.preemptAck = sn.preemptAck || b.preempting
	sn.sent.Requests++
	sn.sent.History += len(b.files[fileHistory].text)
	sn.sent.Events += len(b.files[fileEvents].text)
	sn.sent.Output += len(b.files[fileOutput].text)
	sn.sent.Summary = sn.sent.Summary || b.summary != ""
	var fb struct {
		Stopped bool `json:"stopped"`
	}
	if json.Unmarshal(ans, &fb) == nil && fb.Stopped && sn.onStop != nil {
		sn.onStop()
	}
	return nil
}

// drain sends batches back to back until nothing is left to send.
func (sn *sender) drain(ctx context.Context, final bool) error {
	for {
		b, err := sn.build(final)
		if err != nil {
			return err
		}
		if b.empty() {
			return nil
		}
		if err := sn.send(ctx, b); err != nil {
			return err
		}
		if sn.restarted {
			sn.restarted = false
			continue
		}
		if !b.more {
			return nil
		}
	}
}

// upload is one run file to upload: its name on the server, its content and a signature of that version.
type upload struct {
	name, sig string
	body      func() (io.ReadCloser, int64, error)
}

// uploads lists the run files whose current version the server does not have yet: config.yaml (in the W&B
// shape), everything under plots/, and the best checkpoint when UploadCheckpoints is set.
func (sn *sender) uploads() ([]upload, error) {
	st := sn.state()
	var out []upload
	if _, err := os.Stat(sn.path(ConfigFile)); err == nil {
		cfg, err := wandbConfig(sn.dir)
		if err != nil {
			return nil, err
		}
		y, err := yaml.Marshal(cfg)
		if err != nil {
			return nil, fmt.Errorf("encode config.yaml: %w", err)
		}
		h := sha256.Sum256(y)
		if sig := hex.EncodeToString(h[:]); st.Uploaded[ConfigFile] != sig {
			out = append(out, upload{name: ConfigFile, sig: sig, body: jsonBody(y)})
		}
	}
	addDir := func(sub string) error {
		entries, err := os.ReadDir(sn.path(sub))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", sn.path(sub), err)
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil || !info.Mode().IsRegular() || e.Name()[0] == '.' {
				continue
			}
			name := sub + "/" + e.Name()
			sig := strconv.FormatInt(info.Size(), 10) + "-" + strconv.FormatInt(info.ModTime().UnixNano(), 10)
			if st.Uploaded[name] != sig {
				out = append(out, upload{name: name, sig: sig, body: fileBody(sn.path(name))})
			}
		}
		return nil
	}
	if err := addDir("plots"); err != nil {
		return nil, err
	}
	if sn.opts.UploadCheckpoints {
		if err := addDir("checkpoints"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// uploadFiles uploads the run files the server lacks (CreateRunFiles, then one PUT each). A file the server
// refuses for good is skipped with a warning; it stays pending for the next sync.
func (sn *sender) uploadFiles(ctx context.Context) error {
	ups, err := sn.uploads()
	if err != nil || len(ups) == 0 {
		return err
	}
	names := make([]string, len(ups))
	for i, u := range ups {
		names[i] = u.name
	}
	st := sn.state()
	targets, hdr, err := sn.c.createRunFiles(ctx, st.Entity, st.Project, st.RunID, names)
	if err != nil {
		return err
	}
	var errs []error
	for _, u := range ups {
		i := slices.IndexFunc(targets, func(t uploadTarget) bool { return t.Name == u.name })
		if i < 0 {
			errs = append(errs, fmt.Errorf("CreateRunFiles gave no upload URL for %s", u.name))
			continue
		}
		if err := sn.c.put(ctx, targets[i].URL, u.body, hdr); err != nil {
			if !IsPermanent(err) {
				return fmt.Errorf("upload %s: %w", u.name, err)
			}
			sn.log.Warn("wandb: upload refused; left for mami sync", "file", u.name, "err", err)
			errs = append(errs, fmt.Errorf("upload %s: %w", u.name, err))
			continue
		}
		st := sn.state()
		if st.Uploaded == nil {
			st.Uploaded = map[string]string{}
		}
		if st.Reported == nil {
			st.Reported = map[string]bool{}
		}
		st.Uploaded[u.name], st.Reported[u.name] = u.sig, false
		if err := sn.commit(st); err != nil {
			return err
		}
		sn.sent.Files = append(sn.sent.Files, u.name)
	}
	if len(errs) > 0 {
		return &permanentError{errors.Join(errs...)}
	}
	return nil
}

// finish drains everything, uploads the run files and sends the final request with complete and exitcode.
func (sn *sender) finish(ctx context.Context, exitCode int) error {
	if err := sn.drain(ctx, true); err != nil {
		return err
	}
	upErr := sn.uploadFiles(ctx)
	if upErr != nil && !IsPermanent(upErr) {
		return upErr
	}
	for {
		b, err := sn.build(true)
		if err != nil {
			return err
		}
		if !b.more {
			b.complete, b.exitCode = true, exitCode
		}
		if err := sn.send(ctx, b); err != nil {
			return err
		}
		if sn.restarted { // everything goes again, files included
			sn.restarted = false
			return sn.finish(ctx, exitCode)
		}
		if b.complete {
			return upErr
		}
	}
}

// pending counts the local lines not yet acknowledged, reading the files in chunks.
func (sn *sender) pending() (history, events, output int64) {
	st := sn.state()
	count := func(name string, off int64) int64 {
		f, err := os.Open(sn.path(name))
		if err != nil {
			return 0
		}
		defer f.Close()
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return 0
		}
		var n int64
		buf := make([]byte, 64<<10)
		for {
			k, err := f.Read(buf)
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			if err != nil {
				return n
			}
		}
	}
	return count(HistoryFile, st.History.Byte), count(EventsFile, st.Events.Byte), count(OutputFile, st.Output.Byte)
}
