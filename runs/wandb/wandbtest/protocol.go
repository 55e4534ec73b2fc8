package wandbtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
)

var opRE = regexp.MustCompile(`(?:query|mutation)\s+([A-Za-z_][A-Za-z0-9_]*)`)

func gqlData(data any) []byte {
	b, _ := json.Marshal(map[string]any{"data": data})
	return b
}

func gqlError(format string, args ...any) []byte {
	b, _ := json.Marshal(map[string]any{"data": nil, "errors": []any{map[string]any{"message": fmt.Sprintf(format, args...)}}})
	return b
}

// graphql answers one GraphQL request; s.mu is held.
func (s *Server) graphql(r *http.Request, body []byte, rec *Request) (int, []byte) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.violate("POST /graphql: Content-Type %q, want application/json", ct)
	}
	var req struct {
		Query         *string         `json:"query"`
		Variables     json.RawMessage `json:"variables"`
		OperationName *string         `json:"operationName"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Query == nil {
		s.violate("POST /graphql: body is not {query, variables, operationName}: %v", err)
		return http.StatusBadRequest, gqlError("bad request body")
	}
	op := ""
	if req.OperationName != nil {
		op = *req.OperationName
	}
	m := opRE.FindStringSubmatch(*req.Query)
	if op == "" && m != nil {
		op = m[1]
	}
	if m == nil || m[1] != op {
		s.violate("graphql %s: the query does not declare the operation", op)
	}
	rec.Op = op
	vars := map[string]any{}
	if len(req.Variables) > 0 && string(req.Variables) != "null" {
		if err := json.Unmarshal(req.Variables, &vars); err != nil {
			s.violate("graphql %s: variables are not an object: %v", op, err)
			return http.StatusOK, gqlError("variables are not an object")
		}
	}
	str := func(k string) string {
		v, _ := vars[k].(string)
		return v
	}
	switch op {
	case "Viewer":
		return http.StatusOK, gqlData(map[string]any{"viewer": map[string]any{
			"id": "VXNlcjox", "entity": s.opts.Entity, "username": s.opts.Entity,
			"email": s.opts.Entity + "@example.invalid", "flags": "{}", "teams": map[string]any{"edges": []any{}},
		}})
	case "ServerFeaturesQuery":
		return http.StatusOK, gqlData(map[string]any{"serverInfo": map[string]any{"features": []any{}}})
	case "UpsertBucket":
		return s.upsertBucket(vars, str)
	case "RunResumeStatus":
		entity, project := cmpStr(str("entity"), s.opts.Entity), cmpStr(str("project"), "uncategorized")
		run, ok := s.runs[entity+"/"+project+"/"+str("name")]
		if !ok || run.Upserts == 0 {
			return http.StatusOK, gqlData(map[string]any{"model": map[string]any{
				"id": "UHJvamVjdDox", "name": project, "entity": map[string]any{"id": "RW50aXR5OjE=", "name": entity}, "bucket": nil}})
		}
		tail := run.History[max(0, len(run.History)-10):]
		tailJSON, _ := json.Marshal(tail)
		return http.StatusOK, gqlData(map[string]any{"model": map[string]any{
			"id": "UHJvamVjdDox", "name": project, "entity": map[string]any{"id": "RW50aXR5OjE=", "name": entity},
			"bucket": map[string]any{
				"id": "UnVuOjE=", "name": run.ID, "summaryMetrics": cmpStr(run.Summary, "{}"), "displayName": run.DisplayName,
				"logLineCount": len(run.Output), "historyLineCount": len(run.History), "eventsLineCount": len(run.Events),
				"historyTail": string(tailJSON), "eventsTail": "[]", "config": cmpStr(run.ConfigJSON, "{}"),
				"tags": run.Tags, "notes": run.Notes, "wandbConfig": "{}",
			}}})
	case "CreateRunFiles":
		files, ok := vars["files"].([]any)
		if !ok || len(files) == 0 || str("entity") == "" || str("project") == "" || str("run") == "" {
			s.violate("graphql CreateRunFiles: want entity, project, run and a non-empty files list, got %v", vars)
			return http.StatusOK, gqlError("bad CreateRunFiles variables")
		}
		base := "http://" + r.Host
		var out []any
		for _, f := range files {
			name, _ := f.(string)
			out = append(out, map[string]any{"name": name,
				"uploadUrl": base + "/storage/" + str("entity") + "/" + str("project") + "/" + str("run") + "/" + name})
		}
		return http.StatusOK, gqlData(map[string]any{"createRunFiles": map[string]any{
			"runID": str("run"), "uploadHeaders": []string{UploadHeader + ": " + str("run")}, "files": out}})
	}
	return http.StatusOK, gqlError("wandbtest: unsupported operation %s", op)
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *Server) upsertBucket(vars map[string]any, str func(string) string) (int, []byte) {
	name := str("name")
	if name == "" {
		s.violate("graphql UpsertBucket: no run name")
		return http.StatusOK, gqlError("UpsertBucket needs a name")
	}
	entity, project := cmpStr(str("entity"), s.opts.Entity), cmpStr(str("project"), "uncategorized")
	if cfg, ok := vars["config"]; ok && cfg != nil {
		cs, isStr := cfg.(string)
		var obj map[string]any
		if !isStr || json.Unmarshal([]byte(cs), &obj) != nil {
			s.violate("graphql UpsertBucket: config %v is not a JSON string of an object", cfg)
		}
	}
	run := s.run(entity, project, name)
	inserted := run.Upserts == 0
	run.Upserts++
	set := func(dst *string, k string) {
		if v := str(k); v != "" {
			*dst = v
		}
	}
	set(&run.DisplayName, "displayName")
	set(&run.Group, "groupName")
	set(&run.Notes, "notes")
	set(&run.Sweep, "sweep")
	set(&run.Host, "host")
	set(&run.Program, "program")
	set(&run.ConfigJSON, "config")
	if tags, ok := vars["tags"].([]any); ok {
		run.Tags = run.Tags[:0]
		for _, t := range tags {
			if ts, ok := t.(string); ok {
				run.Tags = append(run.Tags, ts)
			}
		}
	}
	var sweep any
	if run.Sweep != "" {
		sweep = run.Sweep
	}
	return http.StatusOK, gqlData(map[string]any{"upsertBucket": map[string]any{"inserted": inserted, "bucket": map[string]any{
		"id": "UnVuOjE=", "name": run.ID, "displayName": cmpStr(run.DisplayName, run.ID), "description": nil,
		"config": cmpStr(run.ConfigJSON, "{}"), "sweepName": sweep, "historyLineCount": len(run.History),
		"project": map[string]any{"id": "UHJvamVjdDox", "name": project, "entity": map[string]any{"id": "RW50aXR5OjE=", "name": entity}},
	}}})
}

var nonFinite = regexp.MustCompile(`-?\b(?:NaN|Infinity)\b`)

// jsonObject parses a line as a JSON object, allowing the NaN and Infinity literals clients write.
func jsonObject(line string) (map[string]any, error) {
	var m map[string]any
	err := json.Unmarshal([]byte(line), &m)
	if err != nil {
		err = json.Unmarshal([]byte(nonFinite.ReplaceAllString(line, "null")), &m)
	}
	if err == nil && m == nil {
		err = fmt.Errorf("null")
	}
	return m, err
}

// fileStream applies one file_stream request; s.mu is held.
func (s *Server) fileStream(entity, project, id string, r *http.Request, body []byte) (int, []byte) {
	where := "file_stream " + entity + "/" + project + "/" + id
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.violate("%s: Content-Type %q, want application/json", where, ct)
	}
	run, ok := s.runs[entity+"/"+project+"/"+id]
	if !ok || run.Upserts == 0 {
		if !s.forgotten[entity+"/"+project+"/"+id] {
			s.violate("%s: the run was not created with UpsertBucket first", where)
		}
		return http.StatusNotFound, jsonMsg("run not found")
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil {
		s.violate("%s: body is not a JSON object: %v", where, err)
		return http.StatusBadRequest, jsonMsg("bad body")
	}
	for k := range req {
		switch k {
		case "files", "uploaded", "preempting", "complete", "exitcode":
		default:
			s.violate("%s: unknown key %q", where, k)
		}
	}
	var files map[string]struct {
		Offset  *int      `json:"offset"`
		Content *[]string `json:"content"`
	}
	if raw, ok := req["files"]; ok {
		if err := json.Unmarshal(raw, &files); err != nil {
			s.violate("%s: files is not {name: {offset, content: [string]}}: %v", where, err)
			return http.StatusBadRequest, jsonMsg("bad files")
		}
	}
	for name, f := range files {
		if f.Offset == nil || f.Content == nil || *f.Offset < 0 {
			s.violate("%s: %s lacks offset or content", where, name)
			continue
		}
		off, lines := *f.Offset, *f.Content
		switch name {
		case "wandb-history.jsonl":
			for i, l := range lines {
				m, err := jsonObject(l)
				if err != nil {
					s.violate("%s: history line %d is not a JSON object: %v", where, off+i, err)
					continue
				}
				if st, ok := m["_step"].(float64); !ok || st != float64(int64(st)) {
					s.violate("%s: history line %d has no integer _step", where, off+i)
				}
			}
			run.History = s.place(where, name, run.History, off, lines, false)
		case "wandb-events.jsonl":
			run.Events = s.place(where, name, run.Events, off, lines, false)
		case "output.log":
			run.Output = s.place(where, name, run.Output, off, lines, true)
		case "wandb-summary.json":
			if off != 0 || len(lines) != 1 {
				s.violate("%s: summary at offset %d with %d lines, want offset 0 and one line", where, off, len(lines))
			}
			if len(lines) > 0 {
				if _, err := jsonObject(lines[len(lines)-1]); err != nil {
					s.violate("%s: summary is not a JSON object: %v", where, err)
				}
				run.Summary = lines[len(lines)-1]
			}
		default:
			s.violate("%s: unknown file %q", where, name)
		}
	}
	if raw, ok := req["uploaded"]; ok {
		var names []string
		if err := json.Unmarshal(raw, &names); err != nil {
			s.violate("%s: uploaded is not a list of names: %v", where, err)
		}
		for _, n := range names {
			if _, ok := run.Files[n]; !ok {
				s.violate("%s: uploaded names %s, which was never PUT", where, n)
			}
			run.Uploaded = append(run.Uploaded, n)
		}
	}
	if raw, ok := req["preempting"]; ok {
		run.Preempting = string(raw) == "true"
	}
	_, hasComplete := req["complete"]
	rawExit, hasExit := req["exitcode"]
	if hasComplete != hasExit {
		s.violate("%s: complete and exitcode must come together", where)
	}
	if hasComplete {
		var code int
		if err := json.Unmarshal(rawExit, &code); err != nil {
			s.violate("%s: exitcode %s is not an integer", where, rawExit)
		}
		run.Complete, run.ExitCode = string(req["complete"]) == "true", &code
		run.CompletePosts++
	}
	run.FileStreamPosts++
	ans := map[string]any{"exitcode": nil, "limits": map[string]any{}}
	if run.stop {
		ans["stopped"] = true
	}
	b, _ := json.Marshal(ans)
	return http.StatusOK, b
}

// place puts lines at offset; a line re-sent at the same offset must be the same line, except in output.log.
func (s *Server) place(where, name string, have []string, off int, lines []string, overwrite bool) []string {
	if off > len(have) {
		s.violate("%s: %s offset %d leaves a gap after line %d", where, name, off, len(have))
		for len(have) < off {
			have = append(have, "")
		}
	}
	for i, l := range lines {
		j := off + i
		if j < len(have) {
			if have[j] != l && !overwrite {
				s.violate("%s: %s line %d re-sent with other content", where, name, j)
			}
			have[j] = l
			continue
		}
		have = append(have, l)
	}
	return have
}

// upload stores the body of an upload PUT; s.mu is held.
func (s *Server) upload(r *http.Request, body []byte) (int, []byte) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/storage/"), "/", 4)
	if len(parts) != 4 {
		return http.StatusNotFound, jsonMsg("no such upload URL")
	}
	where := "PUT " + r.URL.Path
	if r.Header.Get("Authorization") != "" {
		s.violate("%s: upload carries an Authorization header", where)
	}
	if got := r.Header.Get(UploadHeader); got != parts[2] {
		s.violate("%s: %s header %q, want the uploadHeaders value %q", where, UploadHeader, got, parts[2])
	}
	run := s.run(parts[0], parts[1], parts[2])
	run.Files[parts[3]] = bytes.Clone(body)
	return http.StatusOK, []byte("{}")
}

// WriteTranscript writes the requests in the format of shared/testdata/wandb/*.jsonl: one JSON object a
// line with seq, t, method, path, headers, body, op and response.
func (s *Server) WriteTranscript(w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, r := range s.Requests() {
		h := map[string]string{}
		for k, v := range r.Header {
			h[k] = strings.Join(v, ", ")
		}
		var body, resp any = string(r.Body), nil
		if json.Valid(r.Body) {
			body = json.RawMessage(r.Body)
		}
		if json.Valid(r.Response) {
			resp = json.RawMessage(r.Response)
		}
		line := map[string]any{
			"seq": r.Seq, "t": float64(r.Time.UnixNano()) / 1e9, "method": r.Method, "path": r.Path,
			"headers": h, "body": body, "op": r.Op, "fault": r.Fault,
			"response": map[string]any{"status": r.Status, "body": resp},
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return nil
}
