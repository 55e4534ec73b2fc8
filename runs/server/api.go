package server

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mami-lab/mami/runs/server/store"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	limit := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
			h(w, r)
		}
	}
	api := func(h http.HandlerFunc) http.HandlerFunc { return limit(s.dashboardAccess(h, false)) }
	page := func(h http.HandlerFunc) http.HandlerFunc { return limit(s.dashboardAccess(h, true)) }

	// W&B protocol.
	mux.HandleFunc("POST /graphql", limit(s.requireKey(s.handleGraphQL)))
	mux.HandleFunc("POST /files/{entity}/{project}/{run}/file_stream", limit(s.requireKey(s.handleFileStream)))
	mux.HandleFunc("PUT /storage/{entity}/{project}/{run}/{name...}", s.handleUpload)

	// JSON API.
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /api/v1/projects", api(s.handleProjects))
	mux.HandleFunc("GET /api/v1/runs", api(s.handleRuns))
	mux.HandleFunc("GET /api/v1/runs/{entity}/{project}/{run}", api(s.handleRun))
	mux.HandleFunc("GET /api/v1/runs/{entity}/{project}/{run}/history", api(s.handleHistory))
	mux.HandleFunc("GET /api/v1/runs/{entity}/{project}/{run}/logs", api(s.handleLogs))
	mux.HandleFunc("GET /api/v1/runs/{entity}/{project}/{run}/files", api(s.handleFiles))
	mux.HandleFunc("GET /api/v1/runs/{entity}/{project}/{run}/files/{name...}", api(s.handleFile))
	mux.HandleFunc("POST /api/v1/runs/{entity}/{project}/{run}/stop", api(sameOrigin(s.handleStop)))
	mux.HandleFunc("GET /api/v1/history", api(s.handleMultiHistory))
	mux.HandleFunc("GET /api/v1/keys", api(s.handleKeys))

	// Dashboard.
	mux.HandleFunc("GET /login", limit(s.handleLoginForm))
	mux.HandleFunc("POST /login", limit(s.handleLogin))
	mux.HandleFunc("POST /logout", limit(s.handleLogout))
	mux.HandleFunc("GET /static/", s.handleStatic)
	mux.HandleFunc("GET /{$}", page(s.handleIndex))
	mux.HandleFunc("GET /p/{entity}/{project}", page(s.handleProjectPage))
	mux.HandleFunc("GET /r/{entity}/{project}/{run}", page(s.handleRunPage))
	return securityHeaders(mux)
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "version": Version, "schema": store.SchemaVersion()})
}

func (s *Server) handleProjects(w http.ResponseWriter, r *http.Request) {
	ps, err := s.store.Projects(r.Context())
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if ps == nil {
		ps = []store.Project{}
	}
	writeJSON(w, http.StatusOK, ps)
}

// RunJSON is a run as the JSON API shows it. ID is the W&B run id; Config holds plain values (the
// {"value": v} wrapping of the Python client removed, W&B's own _wandb entry dropped).
type RunJSON struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	Entity       string         `json:"entity"`
	Project      string         `json:"project"`
	State        string         `json:"state"`
	Group        string         `json:"group,omitempty"`
	JobType      string         `json:"job_type,omitempty"`
	Tags         []string       `json:"tags"`
	Notes        string         `json:"notes,omitempty"`
	Sweep        string         `json:"sweep,omitempty"`
	Host         string         `json:"host,omitempty"`
	ExitCode     *int           `json:"exit_code"`
	Config       map[string]any `json:"config"`
	Summary      map[string]any `json:"summary"`
	HistoryLines int64          `json:"history_lines"`
	LogLines     int64          `json:"log_lines"`
	CreatedAt    time.Time      `json:"created_at"`
	UpdatedAt    time.Time      `json:"updated_at"`
	HeartbeatAt  time.Time      `json:"heartbeat_at"`
	StopAsked    bool           `json:"stop_requested"`
	Keys         []string       `json:"keys,omitempty"`
}

func runJSON(r *store.Run) RunJSON {
	out := RunJSON{
		ID: r.Name, Name: r.DisplayName, Entity: r.Entity, Project: r.Project, State: r.State, Group: r.Group,
		JobType: r.JobType, Tags: r.Tags, Notes: r.Notes, Sweep: r.Sweep, Host: r.Host, ExitCode: r.ExitCode,
		Config: PlainConfig(r.Config), Summary: map[string]any{}, HistoryLines: r.HistoryLines,
		LogLines: r.LogLines, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, HeartbeatAt: r.HeartbeatAt,
		StopAsked: r.StopRequested,
	}
	if out.Name == "" {
		out.Name = r.Name
	}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	_ = json.Unmarshal(r.Summary, &out.Summary)
	delete(out.Summary, "_wandb")
	return out
}

// PlainConfig decodes a stored config into plain values: the Python client's {"k": {"value": v, "desc":
// d}} shape is unwrapped, the JS client's plain {"k": v} shape is kept, and W&B's "_wandb" entry dropped.
func PlainConfig(raw json.RawMessage) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return map[string]any{}
	}
	delete(m, "_wandb")
	wrapped := len(m) > 0
	for _, v := range m {
		o, ok := v.(map[string]any)
		if !ok {
			wrapped = false
			break
		}
		if _, has := o["value"]; !has {
			wrapped = false
			break
		}
		for k := range o {
			if k != "value" && k != "desc" {
				wrapped = false
			}
		}
	}
	if wrapped {
		for k, v := range m {
			m[k] = v.(map[string]any)["value"]
		}
	}
	return m
}

func (s *Server) handleRuns(w http.ResponseWriter, r *http.Request) {
	project := r.URL.Query().Get("project")
	if project == "" {
		writeError(w, http.StatusBadRequest, "query parameter project: required")
		return
	}
	runs, err := s.store.Runs(r.Context(), r.URL.Query().Get("entity"), project)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	out := make([]RunJSON, 0, len(runs))
	for _, run := range runs {
		out = append(out, runJSON(run))
	}
	writeJSON(w, http.StatusOK, out)
}

func runKey(r *http.Request) store.RunKey {
	return store.RunKey{Entity: r.PathValue("entity"), Project: r.PathValue("project"), Name: r.PathValue("run")}
}

func (s *Server) handleRun(w http.ResponseWriter, r *http.Request) {
	run, err := s.store.Run(r.Context(), runKey(r))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	out := runJSON(run)
	if out.Keys, err = s.store.RunKeys(r.Context(), run.ID); err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	samples, err := parseSamples(q.Get("samples"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	run, err := s.store.Run(r.Context(), runKey(r))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	rows, err := s.history(r.Context(), run, splitList(q.Get("keys")), samples)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rows)
}

func parseSamples(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 2 || n > 100000 {
		return 0, errors.New("query parameter samples: want an integer from 2 to 100000")
	}
	return n, nil
}

// history returns a run's rows: all raw rows when keys and samples are empty, else rows holding _step and
// the given keys (all numeric keys when none are given), min/max-downsampled to about samples rows.
func (s *Server) history(ctx context.Context, run *store.Run, keys []string, samples int) ([]any, error) {
	if len(keys) == 0 && samples == 0 {
		raw, err := s.store.HistoryRows(ctx, run.ID, 0, 0)
		if err != nil {
			return nil, err
		}
		out := make([]any, len(raw))
		for i, r := range raw {
			out[i] = r
		}
		return out, nil
	}
	if len(keys) == 0 {
		var err error
		if keys, err = s.store.RunKeys(ctx, run.ID); err != nil {
			return nil, err
		}
	}
	if samples > 0 && run.HistoryLines > int64(samples) {
		return s.sampledHistory(ctx, run, keys, samples)
	}
	series := make(map[string]store.Series, len(keys))
	keep := map[int64]bool{}
	steps := map[int64]int64{}
	for _, k := range keys {
		se, err := s.store.Metric(ctx, run.ID, k)
		if err != nil {
			return nil, err
		}
		series[k] = se
		for i, l := range se.Lines {
			steps[l] = se.Steps[i]
		}
		if samples > 0 && !xKeys[k] {
			for _, i := range Downsample(se.Values, samples) {
				keep[se.Lines[i]] = true
			}
		}
	}
	if samples > 0 && len(keep) == 0 { // only x keys asked for: thin them evenly
		for _, k := range keys {
			se := series[k]
			fl := make([]float64, len(se.Lines))
			for i, l := range se.Lines {
				fl[i] = float64(l)
			}
			for _, i := range Downsample(fl, samples) {
				keep[se.Lines[i]] = true
			}
		}
	}
	byLine := map[int64]map[string]any{}
	for _, k := range keys {
		se := series[k]
		for i, l := range se.Lines {
			if samples > 0 && !keep[l] {
				continue
			}
			row := byLine[l]
			if row == nil {
				row = map[string]any{}
				if st := steps[l]; st >= 0 {
					row["_step"] = st
				}
				byLine[l] = row
			}
			row[k] = se.Values[i]
		}
	}
	return rowsByLine(byLine), nil
}

// sampledHistory serves a long run's downsampled history: each non-x key min/max-bucketed in SQLite, the
// x keys read at the lines kept.
func (s *Server) sampledHistory(ctx context.Context, run *store.Run, keys []string, samples int) ([]any, error) {
	byLine := map[int64]map[string]any{}
	add := func(k string, se store.Series) {
		for i, l := range se.Lines {
			row := byLine[l]
			if row == nil {
				row = map[string]any{}
				if st := se.Steps[i]; st >= 0 {
					row["_step"] = st
				}
				byLine[l] = row
			}
			row[k] = se.Values[i]
		}
	}
	var xs []string
	for _, k := range keys {
		if xKeys[k] {
			xs = append(xs, k)
			continue
		}
		se, err := s.store.MetricBuckets(ctx, run.ID, k, run.HistoryLines, max(samples/2, 1))
		if err != nil {
			return nil, err
		}
		add(k, se)
	}
	if len(byLine) == 0 { // only x keys asked for: thin them evenly
		for _, k := range xs {
			se, err := s.store.MetricBuckets(ctx, run.ID, k, run.HistoryLines, max(samples/2, 1))
			if err != nil {
				return nil, err
			}
			add(k, se)
		}
		return rowsByLine(byLine), nil
	}
	lines := make([]int64, 0, len(byLine))
	for l := range byLine {
		lines = append(lines, l)
	}
	for _, k := range xs {
		se, err := s.store.MetricAt(ctx, run.ID, k, lines)
		if err != nil {
			return nil, err
		}
		add(k, se)
	}
	return rowsByLine(byLine), nil
}

func rowsByLine(byLine map[int64]map[string]any) []any {
	lines := make([]int64, 0, len(byLine))
	for l := range byLine {
		lines = append(lines, l)
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i] < lines[j] })
	out := make([]any, len(lines))
	for i, l := range lines {
		out[i] = byLine[l]
	}
	return out
}

// xKeys are the history keys used as x axes; downsampling keeps the rows chosen by the other keys.
var xKeys = map[string]bool{"_step": true, "_runtime": true, "_timestamp": true, "epoch": true}

// Downsample returns the indices of values to keep so that about n remain: the values are cut into n/2
// buckets and each bucket's minimum and maximum are kept (in order), together with the first and last.
// All indices are returned when there are at most n values.
func Downsample(values []float64, n int) []int {
	if n <= 0 || len(values) <= n {
		idx := make([]int, len(values))
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	buckets := max(n/2, 1)
	out := make([]int, 0, n+2)
	out = append(out, 0)
	for b := range buckets {
		lo := b * len(values) / buckets
		hi := (b + 1) * len(values) / buckets
		if lo >= hi {
			continue
		}
		mi, ma := lo, lo
		for i := lo; i < hi; i++ {
			if values[i] < values[mi] {
				mi = i
			}
			if values[i] > values[ma] {
				ma = i
			}
		}
		first, second := min(mi, ma), max(mi, ma)
		if first > out[len(out)-1] {
			out = append(out, first)
		}
		if second > out[len(out)-1] {
			out = append(out, second)
		}
	}
	if last := len(values) - 1; out[len(out)-1] != last {
		out = append(out, last)
	}
	return out
}

func (s *Server) handleMultiHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	samples, err := parseSamples(q.Get("samples"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	keys := splitList(q.Get("keys"))
	if len(keys) == 0 {
		writeError(w, http.StatusBadRequest, "query parameter keys: required")
		return
	}
	entity, project := q.Get("entity"), q.Get("project")
	out := map[string]any{}
	for _, id := range splitList(q.Get("runs")) {
		run, err := s.store.Run(r.Context(), store.RunKey{Entity: entity, Project: project, Name: id})
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			writeStoreError(w, err)
			return
		}
		if out[id], err = s.history(r.Context(), run, keys, samples); err != nil {
			writeStoreError(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleKeys(w http.ResponseWriter, r *http.Request) {
	project := r.URL.Query().Get("project")
	if project == "" {
		writeError(w, http.StatusBadRequest, "query parameter project: required")
		return
	}
	keys, err := s.store.ProjectKeys(r.Context(), r.URL.Query().Get("entity"), project)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, keys)
}

func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	run, err := s.store.Run(r.Context(), runKey(r))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	from, _ := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	lines, err := s.store.Logs(r.Context(), run.ID, from, limit)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if lines == nil {
		lines = []store.LogLine{}
	}
	writeJSON(w, http.StatusOK, lines)
}

func (s *Server) handleFiles(w http.ResponseWriter, r *http.Request) {
	run, err := s.store.Run(r.Context(), runKey(r))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	files, err := s.store.Files(r.Context(), run.ID)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if files == nil {
		files = []store.File{}
	}
	writeJSON(w, http.StatusOK, files)
}

// handleFile serves an uploaded file. Active content is neutralised: a sandbox CSP, and HTML or unknown
// types as plain text or downloads.
func (s *Server) handleFile(w http.ResponseWriter, r *http.Request) {
	run, err := s.store.Run(r.Context(), runKey(r))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	name, err := store.CleanFileName(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f, err := os.Open(filepath.Join(s.runDir(run.ID), filepath.FromSlash(name)))
	if err != nil {
		writeError(w, http.StatusNotFound, "file "+name+" not stored")
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		writeError(w, http.StatusNotFound, "file "+name+" not stored")
		return
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	switch {
	case strings.HasPrefix(ctype, "image/"), strings.HasPrefix(ctype, "application/json"):
	case strings.HasPrefix(ctype, "text/"), strings.HasSuffix(name, ".yaml"), strings.HasSuffix(name, ".log"),
		strings.HasSuffix(name, ".jsonl"):
		ctype = "text/plain; charset=utf-8"
	default:
		ctype = "application/octet-stream"
		w.Header().Set("Content-Disposition", "attachment")
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'")
	http.ServeContent(w, r, "", st.ModTime(), f)
}

func (s *Server) handleStop(w http.ResponseWriter, r *http.Request) {
	if err := s.store.RequestStop(r.Context(), runKey(r)); err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"stop_requested": true})
}
