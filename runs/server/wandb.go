package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/mami-lab/mami/runs/server/store"
)

// Version is reported by ServerInfo and /healthz.
const Version = "0.1.0"

// uploadURLTTL is how long a handed-out upload URL stays valid.
const uploadURLTTL = 24 * time.Hour

func (s *Server) resolver(op ast.Operation, name string) (Resolver, error) {
	s.mu.RLock()
	r, ok := s.extra[name]
	s.mu.RUnlock()
	if ok {
		return r, nil
	}
	switch {
	case op == ast.Query && name == "viewer":
		return s.resolveViewer, nil
	case op == ast.Query && name == "serverInfo":
		return s.resolveServerInfo, nil
	case op == ast.Query && (name == "model" || name == "project"):
		return s.resolveProject, nil
	case op == ast.Mutation && name == "upsertBucket":
		return s.resolveUpsertBucket, nil
	case op == ast.Mutation && name == "createRunFiles":
		return s.resolveCreateRunFiles, nil
	}
	return nil, fmt.Errorf("unsupported %s field %q", op, name)
}

func gid(kind, key string) string { return base64.StdEncoding.EncodeToString([]byte(kind + ":" + key)) }

func (s *Server) resolveViewer(ctx context.Context, r *http.Request, args map[string]any) (any, error) {
	e := s.cfg.Entity
	return map[string]any{
		"id": gid("User", e), "entity": e, "username": e, "email": e + "@localhost", "name": e,
		"admin": true, "flags": "{}", "teams": map[string]any{"edges": []any{}},
		"defaultFramework": nil, "photoUrl": nil, "userInfo": nil,
	}, nil
}

func (s *Server) resolveServerInfo(ctx context.Context, r *http.Request, args map[string]any) (any, error) {
	return map[string]any{
		"cliVersionInfo":           map[string]any{},
		"latestLocalVersionInfo":   nil,
		"features":                 []any{},
		"availableBucketProviders": []any{},
		"version":                  Version,
	}, nil
}

func str(args map[string]any, k string) *string {
	v, ok := args[k]
	if !ok || v == nil {
		return nil
	}
	switch x := v.(type) {
	case string:
		return &x
	case int64:
		s := strconv.FormatInt(x, 10)
		return &s
	case float64:
		s := strconv.FormatFloat(x, 'g', -1, 64)
		return &s
	case bool:
		s := strconv.FormatBool(x)
		return &s
	}
	b, _ := json.Marshal(v)
	s := string(b)
	return &s
}

func orDefault(p *string, def string) string {
	if p == nil || *p == "" {
		return def
	}
	return *p
}

func (s *Server) resolveUpsertBucket(ctx context.Context, r *http.Request, args map[string]any) (any, error) {
	in, _ := args["input"].(map[string]any)
	if in == nil {
		return nil, errors.New("missing input")
	}
	k := store.RunKey{
		Entity:  orDefault(str(in, "entityName"), s.cfg.Entity),
		Project: orDefault(str(in, "modelName"), "uncategorized"),
		Name:    orDefault(str(in, "name"), ""),
	}
	if k.Name == "" {
		if id := str(in, "id"); id != nil && *id != "" {
			if raw, err := base64.StdEncoding.DecodeString(*id); err == nil {
				if rest, ok := strings.CutPrefix(string(raw), "Run:"); ok {
					parts := strings.Split(rest, "/")
					if len(parts) == 3 {
						k = store.RunKey{Entity: parts[0], Project: parts[1], Name: parts[2]}
					}
				}
			}
		}
	}
	if k.Name == "" {
		k.Name = randomRunID()
	}
	u := store.Upsert{
		RunKey: k, DisplayName: str(in, "displayName"), Group: str(in, "groupName"), JobType: str(in, "jobType"),
		Description: str(in, "description"), Notes: str(in, "notes"), Config: str(in, "config"),
		Host: str(in, "host"), Program: str(in, "jobProgram"), Commit: str(in, "commit"), Sweep: str(in, "sweep"),
		State: str(in, "state"), Summary: str(in, "summaryMetrics"),
	}
	if st := u.State; st != nil && *st != "" && !validState(*st) {
		return nil, fmt.Errorf("state %q: want one of running, finished, failed, crashed, stopped", *st)
	}
	if tags, ok := in["tags"].([]any); ok {
		u.SetTags = true
		for _, t := range tags {
			if ts, ok := t.(string); ok {
				u.Tags = append(u.Tags, ts)
			}
		}
	}
	run, inserted, err := s.store.UpsertRun(ctx, u)
	if err != nil {
		return nil, err
	}
	return map[string]any{"bucket": s.bucket(ctx, run), "inserted": inserted}, nil
}

func validState(st string) bool {
	switch st {
	case store.StateRunning, store.StateFinished, store.StateFailed, store.StateCrashed, store.StateStopped:
		return true
	}
	return false
}

func randomRunID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := []byte(randomHex(8))
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func (s *Server) projectValue(ctx context.Context, entity, project string) map[string]any {
	return map[string]any{
		"id": gid("Project", entity+"/"+project), "name": project,
		"entity":     map[string]any{"id": gid("Entity", entity), "name": entity},
		"entityName": entity,
		"bucket":     Field(func(args map[string]any) (any, error) { return s.bucketField(ctx, entity, project, args) }),
		"run":        Field(func(args map[string]any) (any, error) { return s.bucketField(ctx, entity, project, args) }),
	}
}

func (s *Server) bucketField(ctx context.Context, entity, project string, args map[string]any) (any, error) {
	name := orDefault(str(args, "name"), "")
	run, err := s.store.Run(ctx, store.RunKey{Entity: entity, Project: project, Name: name})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // missingOk or not, a missing run reads as null
	}
	if err != nil {
		return nil, err
	}
	return s.bucket(ctx, run), nil
}

// bucket is a run as the W&B GraphQL schema shows it.
func (s *Server) bucket(ctx context.Context, run *store.Run) map[string]any {
	var sweep any
	if run.Sweep != "" {
		sweep = run.Sweep
	}
	desc := any(nil)
	if run.Description != "" {
		desc = run.Description
	}
	return map[string]any{
		"id": gid("Run", run.Entity+"/"+run.Project+"/"+run.Name), "name": run.Name,
		"displayName": run.DisplayName, "description": desc, "notes": run.Notes,
		"config": string(run.Config), "summaryMetrics": string(run.Summary), "sweepName": sweep,
		"state": run.State, "group": run.Group, "jobType": run.JobType, "host": run.Host,
		"tags": run.Tags, "historyLineCount": run.HistoryLines, "eventsLineCount": run.EventsLines,
		"logLineCount": run.LogLines, "createdAt": run.CreatedAt.Format(time.RFC3339),
		"heartbeatAt": run.HeartbeatAt.Format(time.RFC3339),
		"project":     s.projectValue(ctx, run.Entity, run.Project),
		"historyTail": Field(func(map[string]any) (any, error) { return s.historyTail(ctx, run) }),
		"eventsTail":  "[]",
		"wandbConfig": Field(func(args map[string]any) (any, error) { return wandbConfig(run.Config, args) }),
	}
}

// historyTail is a JSON array holding the last history row (as a JSON string), the client resumes after it.
func (s *Server) historyTail(ctx context.Context, run *store.Run) (any, error) {
	if run.HistoryLines == 0 {
		return "[]", nil
	}
	rows, err := s.store.HistoryRows(ctx, run.ID, run.HistoryLines-1, 1)
	if err != nil {
		return nil, err
	}
	tail := make([]string, len(rows))
	for i, r := range rows {
		tail[i] = string(r)
	}
	b, _ := json.Marshal(tail)
	return string(b), nil
}

// wandbConfig answers wandbConfig(keys: [...]): the config's _wandb entries for those keys, as JSON.
func wandbConfig(config json.RawMessage, args map[string]any) (any, error) {
	var cfg map[string]any
	_ = json.Unmarshal(config, &cfg)
	w, _ := cfg["_wandb"].(map[string]any)
	if v, ok := w["value"].(map[string]any); ok {
		w = v
	}
	out := map[string]any{}
	keys, _ := args["keys"].([]any)
	for _, k := range keys {
		if ks, ok := k.(string); ok {
			if v, ok := w[ks]; ok {
				out[ks] = v
			}
		}
	}
	b, _ := json.Marshal(out)
	return string(b), nil
}

func (s *Server) resolveProject(ctx context.Context, r *http.Request, args map[string]any) (any, error) {
	entity := orDefault(str(args, "entityName"), s.cfg.Entity)
	name := orDefault(str(args, "name"), orDefault(str(args, "project"), ""))
	if name == "" {
		return nil, errors.New("missing project name")
	}
	return s.projectValue(ctx, entity, name), nil
}

func (s *Server) resolveCreateRunFiles(ctx context.Context, r *http.Request, args map[string]any) (any, error) {
	in, _ := args["input"].(map[string]any)
	if in == nil {
		return nil, errors.New("missing input")
	}
	k := store.RunKey{
		Entity:  orDefault(str(in, "entityName"), s.cfg.Entity),
		Project: orDefault(str(in, "projectName"), ""),
		Name:    orDefault(str(in, "runName"), ""),
	}
	run, err := s.store.Run(ctx, k)
	if err != nil {
		return nil, err
	}
	names, _ := in["files"].([]any)
	files := make([]any, 0, len(names))
	base := s.baseURL(r)
	exp := s.now().Add(uploadURLTTL).Unix()
	for _, n := range names {
		name, _ := n.(string)
		clean, err := store.CleanFileName(name)
		if err != nil {
			return nil, err
		}
		files = append(files, map[string]any{"name": name, "uploadUrl": base + s.uploadPath(k, clean, exp)})
	}
	return map[string]any{"runID": run.Name, "uploadHeaders": []any{}, "files": files}, nil
}

func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) signature(k store.RunKey, name string, exp int64) string {
	m := hmac.New(sha256.New, s.signKey)
	fmt.Fprintf(m, "%s\x00%s\x00%s\x00%s\x00%d", k.Entity, k.Project, k.Name, name, exp)
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) uploadPath(k store.RunKey, name string, exp int64) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return fmt.Sprintf("/storage/%s/%s/%s/%s?exp=%d&sig=%s", url.PathEscape(k.Entity), url.PathEscape(k.Project),
		url.PathEscape(k.Name), strings.Join(parts, "/"), exp, s.signature(k, name, exp))
}

// handleUpload stores a PUT to a handed-out upload URL. The URL's signature stands in for the API key,
// which the clients do not send with uploads.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	k := store.RunKey{Entity: r.PathValue("entity"), Project: r.PathValue("project"), Name: r.PathValue("run")}
	name, err := store.CleanFileName(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	exp, _ := strconv.ParseInt(r.URL.Query().Get("exp"), 10, 64)
	sig := r.URL.Query().Get("sig")
	if !hmac.Equal([]byte(sig), []byte(s.signature(k, name, exp))) && !s.validKey(requestKey(r)) {
		writeError(w, http.StatusForbidden, "invalid upload signature")
		return
	}
	if exp < s.now().Unix() && !s.validKey(requestKey(r)) {
		writeError(w, http.StatusForbidden, "upload URL expired")
		return
	}
	run, err := s.store.Run(r.Context(), k)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	path := filepath.Join(s.runDir(run.ID), filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		writeError(w, http.StatusInternalServerError, "create upload folder")
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".upload-*")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "create upload file")
		return
	}
	n, err := io.Copy(tmp, http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes))
	err = errors.Join(err, tmp.Close())
	if err != nil {
		os.Remove(tmp.Name())
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("upload larger than %d bytes", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "read upload: "+err.Error())
		return
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		writeError(w, http.StatusInternalServerError, "store upload")
		return
	}
	if err := s.store.RecordFile(r.Context(), run.ID, name, n); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) runDir(id int64) string {
	return filepath.Join(s.cfg.DataDir, "files", strconv.FormatInt(id, 10))
}

type streamFile struct {
	Offset  *int64   `json:"offset"`
	Content []string `json:"content"`
}

type streamRequest struct {
	Files      map[string]streamFile `json:"files"`
	Uploaded   []string              `json:"uploaded"`
	Complete   bool                  `json:"complete"`
	ExitCode   *int                  `json:"exitcode"`
	Preempting bool                  `json:"preempting"`
}

func chunk(f streamFile, ok bool) *store.Chunk {
	if !ok {
		return nil
	}
	c := &store.Chunk{Offset: -1, Lines: f.Content}
	if f.Offset != nil {
		c.Offset = *f.Offset
	}
	return c
}

func (s *Server) handleFileStream(w http.ResponseWriter, r *http.Request) {
	k := store.RunKey{Entity: r.PathValue("entity"), Project: r.PathValue("project"), Name: r.PathValue("run")}
	var req streamRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		status := http.StatusBadRequest
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			status = http.StatusRequestEntityTooLarge
		}
		writeError(w, status, "file_stream body: "+err.Error())
		return
	}
	u := store.StreamUpdate{Uploaded: req.Uploaded, Complete: req.Complete, ExitCode: req.ExitCode}
	h, ok := req.Files["wandb-history.jsonl"]
	u.History = chunk(h, ok)
	e, ok := req.Files["wandb-events.jsonl"]
	u.Events = chunk(e, ok)
	l, ok := req.Files["output.log"]
	u.Log = chunk(l, ok)
	if sm, ok := req.Files["wandb-summary.json"]; ok && len(sm.Content) > 0 {
		last := sm.Content[len(sm.Content)-1]
		u.Summary = &last
	}
	res, err := s.store.Stream(r.Context(), k, u)
	if err != nil {
		if errors.Is(err, store.ErrClosed) {
			writeError(w, http.StatusServiceUnavailable, "server shutting down")
			return
		}
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	out := map[string]any{"exitcode": nil, "limits": map[string]any{}}
	if res.Stopped {
		out["stopped"] = true
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": msg})
}

func writeStoreError(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
