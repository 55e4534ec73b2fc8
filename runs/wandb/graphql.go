package wandb

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// The GraphQL operations, in the shapes the official clients send (WANDB-PROTOCOL.md).
const (
	viewerQuery = `query Viewer {
	viewer { id entity username email flags teams { edges { node { name } } } }
}`
	serverFeaturesQuery = `query ServerFeaturesQuery {
	serverInfo { features { name isEnabled } }
}`
	upsertBucketQuery = `mutation UpsertBucket($id: String, $name: String, $project: String, $entity: String, $groupName: String, $description: String, $displayName: String, $notes: String, $commit: String, $config: JSONString, $host: String, $debug: Boolean, $program: String, $repo: String, $jobType: String, $state: String, $sweep: String, $tags: [String!], $summaryMetrics: JSONString) {
	upsertBucket(input: {id: $id, name: $name, groupName: $groupName, modelName: $project, entityName: $entity, description: $description, displayName: $displayName, notes: $notes, config: $config, commit: $commit, host: $host, debug: $debug, jobProgram: $program, jobRepo: $repo, jobType: $jobType, state: $state, sweep: $sweep, tags: $tags, summaryMetrics: $summaryMetrics}) {
		bucket { id name displayName description config sweepName historyLineCount project { id name entity { id name } } }
		inserted
	}
}`
	runResumeStatusQuery = `query RunResumeStatus($project: String, $entity: String, $name: String!) {
	model(name: $project, entityName: $entity) {
		id name entity { id name }
		bucket(name: $name, missingOk: true) {
			id name summaryMetrics displayName logLineCount historyLineCount eventsLineCount historyTail eventsTail config tags notes
			wandbConfig(keys: ["t"])
		}
	}
}`
	createRunFilesQuery = `mutation CreateRunFiles($entity: String!, $project: String!, $run: String!, $files: [String!]!) {
	createRunFiles(input: {entityName: $entity, projectName: $project, runName: $run, files: $files}) {
		runID uploadHeaders files { name uploadUrl }
	}
}`
)

// GraphQLError is an answer with an `errors` list.
type GraphQLError struct {
	Op       string
	Messages []string
}

func (e *GraphQLError) Error() string {
	return fmt.Sprintf("graphql %s: %s", e.Op, strings.Join(e.Messages, "; "))
}

// graphql runs one operation and decodes its `data` into out.
func (c *client) graphql(ctx context.Context, op, query string, vars map[string]any, out any) error {
	if vars == nil {
		vars = map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"query": query, "variables": vars, "operationName": op})
	if err != nil {
		return &permanentError{fmt.Errorf("graphql %s: encode: %w", op, err)}
	}
	body, err := c.do(ctx, request{
		method: http.MethodPost, url: c.base + "/graphql", body: jsonBody(b), auth: true,
		header: http.Header{"Content-Type": {"application/json"}},
	})
	if err != nil {
		return fmt.Errorf("graphql %s: %w", op, err)
	}
	var ans struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return &permanentError{fmt.Errorf("graphql %s: answer is not JSON (is %s a W&B server?): %w", op, c.base, err)}
	}
	if len(ans.Errors) > 0 {
		ge := &GraphQLError{Op: op}
		for _, e := range ans.Errors {
			ge.Messages = append(ge.Messages, e.Message)
		}
		return &permanentError{ge}
	}
	if out == nil {
		return nil
	}
	if len(ans.Data) == 0 || string(ans.Data) == "null" {
		return &permanentError{fmt.Errorf("graphql %s: answer has no data", op)}
	}
	if err := json.Unmarshal(ans.Data, out); err != nil {
		return &permanentError{fmt.Errorf("graphql %s: decode data: %w", op, err)}
	}
	return nil
}

// viewer returns the default entity of the API key's user.
func (c *client) viewer(ctx context.Context) (string, error) {
	var d struct {
		Viewer *struct {
			Entity *string `json:"entity"`
		} `json:"viewer"`
	}
	if err := c.graphql(ctx, "Viewer", viewerQuery, nil, &d); err != nil {
		return "", err
	}
	if d.Viewer == nil || d.Viewer.Entity == nil || *d.Viewer.Entity == "" {
		return "", &permanentError{fmt.Errorf("%w: the server at %s knows no user for this key (viewer has no entity)", ErrUnauthorized, c.base)}
	}
	return *d.Viewer.Entity, nil
}

// serverFeatures returns the enabled optional features; an error turns them all off, as in the official
// clients.
func (c *client) serverFeatures(ctx context.Context) map[string]bool {
	var d struct {
		ServerInfo *struct {
			Features []struct {
				Name      string `json:"name"`
				IsEnabled bool   `json:"isEnabled"`
			} `json:"features"`
		} `json:"serverInfo"`
	}
	feats := map[string]bool{}
	if err := c.graphql(ctx, "ServerFeaturesQuery", serverFeaturesQuery, nil, &d); err != nil {
		c.log.Debug("wandb: server features unavailable", "err", err)
		return feats
	}
	if d.ServerInfo != nil {
		for _, f := range d.ServerInfo.Features {
			feats[f.Name] = f.IsEnabled
		}
	}
	return feats
}

// bucketInfo is what UpsertBucket answers.
type bucketInfo struct {
	Entity, Project, Name string
	HistoryLineCount      int
	Inserted              bool
}

// upsertInput is the run's metadata as UpsertBucket sends it.
type upsertInput struct {
	RunID, Entity, Project, DisplayName, Group, Notes, Sweep, Host, Program string
	Tags                                                                    []string
	Config                                                                  map[string]any // already in {"key": {"value": v}} shape
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (c *client) upsertBucket(ctx context.Context, in upsertInput) (bucketInfo, error) {
	cfg, err := json.Marshal(in.Config)
	if err != nil {
		return bucketInfo{}, &permanentError{fmt.Errorf("encode config: %w", err)}
	}
	var tags any
	if in.Tags != nil {
		tags = in.Tags
	}
	vars := map[string]any{
		"id": nil, "name": in.RunID, "project": in.Project, "entity": nullable(in.Entity),
		"groupName": nullable(in.Group), "description": nil, "displayName": nullable(in.DisplayName),
		"notes": nullable(in.Notes), "commit": nil, "config": string(cfg), "host": nullable(in.Host),
		"debug": nil, "program": nullable(in.Program), "repo": nil, "jobType": nil, "state": nil,
		"sweep": nullable(in.Sweep), "tags": tags, "summaryMetrics": nil,
	}
	var d struct {
		UpsertBucket *struct {
			Inserted bool `json:"inserted"`
			Bucket   *struct {
				Name             string `json:"name"`
				HistoryLineCount *int   `json:"historyLineCount"`
				Project          *struct {
					Name   string `json:"name"`
					Entity *struct {
						Name string `json:"name"`
					} `json:"entity"`
				} `json:"project"`
			} `json:"bucket"`
		} `json:"upsertBucket"`
	}
	if err := c.graphql(ctx, "UpsertBucket", upsertBucketQuery, vars, &d); err != nil {
		return bucketInfo{}, err
	}
	bi := bucketInfo{Entity: in.Entity, Project: in.Project, Name: in.RunID}
	if d.UpsertBucket == nil || d.UpsertBucket.Bucket == nil {
		return bi, &permanentError{fmt.Errorf("graphql UpsertBucket: answer has no bucket")}
	}
	b := d.UpsertBucket.Bucket
	bi.Inserted = d.UpsertBucket.Inserted
	if b.Name != "" {
		bi.Name = b.Name
	}
	if b.HistoryLineCount != nil {
		bi.HistoryLineCount = *b.HistoryLineCount
	}
	if b.Project != nil {
		if b.Project.Name != "" {
			bi.Project = b.Project.Name
		}
		if b.Project.Entity != nil && b.Project.Entity.Name != "" {
			bi.Entity = b.Project.Entity.Name
		}
	}
	return bi, nil
}

// resumeInfo is what RunResumeStatus tells about an existing run.
type resumeInfo struct {
	Exists                                     bool
	HistoryLineCount, EventsLineCount, LogLine int
	LastStep                                   int64 // -1: no history
}

func (c *client) runResumeStatus(ctx context.Context, entity, project, run string) (resumeInfo, error) {
	var d struct {
		Model *struct {
			Bucket *struct {
				HistoryLineCount *int    `json:"historyLineCount"`
				EventsLineCount  *int    `json:"eventsLineCount"`
				LogLineCount     *int    `json:"logLineCount"`
				HistoryTail      *string `json:"historyTail"`
			} `json:"bucket"`
		} `json:"model"`
	}
	vars := map[string]any{"project": project, "entity": entity, "name": run}
	if err := c.graphql(ctx, "RunResumeStatus", runResumeStatusQuery, vars, &d); err != nil {
		return resumeInfo{}, err
	}
	ri := resumeInfo{LastStep: -1}
	if d.Model == nil || d.Model.Bucket == nil {
		return ri, nil
	}
	b := d.Model.Bucket
	ri.Exists = true
	deref := func(p *int) int {
		if p == nil {
			return 0
		}
		return *p
	}
	ri.HistoryLineCount, ri.EventsLineCount, ri.LogLine = deref(b.HistoryLineCount), deref(b.EventsLineCount), deref(b.LogLineCount)
	if b.HistoryTail != nil && *b.HistoryTail != "" {
		var tail []string
		if err := json.Unmarshal([]byte(*b.HistoryTail), &tail); err == nil && len(tail) > 0 {
			if st, ok := lineStep([]byte(tail[len(tail)-1])); ok {
				ri.LastStep = st
			}
		}
	}
	return ri, nil
}

// uploadTarget is where to PUT one run file.
type uploadTarget struct{ Name, URL string }

func (c *client) createRunFiles(ctx context.Context, entity, project, run string, names []string) ([]uploadTarget, http.Header, error) {
	var d struct {
		CreateRunFiles *struct {
			UploadHeaders []string `json:"uploadHeaders"`
			Files         []struct {
				Name      string `json:"name"`
				UploadURL string `json:"uploadUrl"`
			} `json:"files"`
		} `json:"createRunFiles"`
	}
	vars := map[string]any{"entity": entity, "project": project, "run": run, "files": names}
	if err := c.graphql(ctx, "CreateRunFiles", createRunFilesQuery, vars, &d); err != nil {
		return nil, nil, err
	}
	if d.CreateRunFiles == nil {
		return nil, nil, &permanentError{fmt.Errorf("graphql CreateRunFiles: answer has no createRunFiles")}
	}
	h := http.Header{}
	for _, kv := range d.CreateRunFiles.UploadHeaders {
		if k, v, ok := strings.Cut(kv, ":"); ok {
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	var out []uploadTarget
	for _, f := range d.CreateRunFiles.Files {
		u, err := url.Parse(f.UploadURL)
		if err != nil || f.UploadURL == "" {
			return nil, nil, &permanentError{fmt.Errorf("graphql CreateRunFiles: bad uploadUrl %q for %s", f.UploadURL, f.Name)}
		}
		if !u.IsAbs() {
			base, _ := url.Parse(c.base + "/")
			u = base.ResolveReference(u)
		}
		out = append(out, uploadTarget{Name: f.Name, URL: u.String()})
	}
	return out, h, nil
}

// put uploads one file to an upload URL, without the Authorization header.
func (c *client) put(ctx context.Context, target string, body func() (io.ReadCloser, int64, error), h http.Header) error {
	hdr := h.Clone()
	if hdr == nil {
		hdr = http.Header{}
	}
	_, err := c.do(ctx, request{method: http.MethodPut, url: target, header: hdr, limit: 1 << 20, body: body})
	return err
}

// fileBody opens path afresh for each attempt.
func fileBody(path string) func() (io.ReadCloser, int64, error) {
	return func() (io.ReadCloser, int64, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, 0, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, err
		}
		return f, st.Size(), nil
	}
}
