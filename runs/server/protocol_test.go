package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mami-lab/mami/runs/server"
	"github.com/mami-lab/mami/runs/server/servertest"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func do(t *testing.T, srv *servertest.Server, method, p string, body any, auth bool) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, srv.URL+p, r)
	req.Header.Set("Content-Type", "application/json")
	if auth {
		srv.Authorize(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, p, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

type gqlResp struct {
	Data   map[string]any             `json:"data"`
	Errors []struct{ Message string } `json:"errors"`
}

func gql(t *testing.T, srv *servertest.Server, query string, vars map[string]any) gqlResp {
	t.Helper()
	status, b := do(t, srv, "POST", "/graphql", map[string]any{"query": query, "variables": vars}, true)
	if status != 200 {
		t.Fatalf("graphql: status %d: %s", status, b)
	}
	var r gqlResp
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("graphql answer: %v: %s", err, b)
	}
	return r
}

const upsert = `mutation UpsertBucket($name: String, $project: String, $entity: String, $config: JSONString, $groupName: String) {
  upsertBucket(input: {name: $name, modelName: $project, entityName: $entity, config: $config, groupName: $groupName}) {
    bucket { id name config historyLineCount project { name entity { name } } }
    inserted
  }
}`

func stream(t *testing.T, srv *servertest.Server, run string, body map[string]any) map[string]any {
	t.Helper()
	status, b := do(t, srv, "POST", "/files/local/p/"+run+"/file_stream", body, true)
	if status != 200 {
		t.Fatalf("file_stream: status %d: %s", status, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("file_stream answer: %v", err)
	}
	return out
}

func historyLines(from, n int) []string {
	var out []string
	for i := from; i < from+n; i++ {
		out = append(out, fmt.Sprintf(`{"_step":%d,"loss":%g,"_runtime":%d}`, i, 1/float64(i+1), i))
	}
	return out
}

func TestGraphQLErrors(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	for _, tc := range []struct{ name, body, want string }{
		{"unknown operation", `{"query":"query Org { entity(name: \"x\") { id } }"}`, `unsupported query field \"entity\"`},
		{"syntax error", `{"query":"query { viewer { id "}`, "parse query"},
		{"empty", `{"query":""}`, "missing query"},
		{"two ops no name", `{"query":"query A { viewer { id } } query B { viewer { id } }"}`, "operationName is required"},
		{"wrong op name", `{"query":"query A { viewer { id } }","operationName":"B"}`, `unknown operation \"B\"`},
		{"subscription", `{"query":"subscription { viewer { id } }"}`, "not supported"},
		{"upsert without input", `{"query":"mutation { upsertBucket { inserted } }"}`, "missing input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := do(t, srv, "POST", "/graphql", tc.body, true)
			if status != 200 || !strings.Contains(string(b), tc.want) || !strings.Contains(string(b), `"errors"`) {
				t.Errorf("got %d %s, want 200 with a GraphQL error containing %q", status, b, tc.want)
			}
		})
	}
	status, b := do(t, srv, "POST", "/graphql", `not json`, true)
	if status != 400 || !strings.Contains(string(b), `"errors"`) {
		t.Errorf("bad JSON: got %d %s, want 400 with errors", status, b)
	}
}

func TestGraphQLFragmentsAndAliases(t *testing.T) {
	srv := servertest.Start(t, server.Config{Entity: "team"})
	r := gql(t, srv, `query Viewer { me: viewer { ...U } } fragment U on User { entity flags }`, nil)
	me, _ := r.Data["me"].(map[string]any)
	if len(r.Errors) > 0 || me["entity"] != "team" || me["flags"] != "{}" {
		t.Errorf("got %+v, want me.entity team", r)
	}
}

func TestUpsertResume(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	r := gql(t, srv, upsert, map[string]any{"name": "r1", "project": "p", "config": `{"lr": {"value": 0.1}}`})
	ub := r.Data["upsertBucket"].(map[string]any)
	if len(r.Errors) > 0 || ub["inserted"] != true {
		t.Fatalf("create: got %+v", r)
	}
	stream(t, srv, "r1", map[string]any{"files": map[string]any{
		"wandb-history.jsonl": map[string]any{"offset": 0, "content": historyLines(0, 3)}}})
	r = gql(t, srv, upsert, map[string]any{"name": "r1", "project": "p", "groupName": "seed-sweep"})
	ub = r.Data["upsertBucket"].(map[string]any)
	b := ub["bucket"].(map[string]any)
	if ub["inserted"] != false || b["historyLineCount"] != 3.0 || b["config"] != `{"lr": {"value": 0.1}}` {
		t.Errorf("update: got %+v, want inserted false, historyLineCount 3, config kept", ub)
	}
	rs := gql(t, srv, `query RunResumeStatus($project: String, $entity: String, $name: String!) {
	  model(name: $project, entityName: $entity) { id name entity { id name }
	    bucket(name: $name, missingOk: true) { id name historyLineCount historyTail wandbConfig(keys: ["t"]) config }
	  }
	}`, map[string]any{"project": "p", "entity": "local", "name": "r1"})
	bucket := rs.Data["model"].(map[string]any)["bucket"].(map[string]any)
	var tail []string
	if err := json.Unmarshal([]byte(bucket["historyTail"].(string)), &tail); err != nil || len(tail) != 1 ||
		!strings.Contains(tail[0], `"_step":2`) {
		t.Errorf("historyTail %v, want the row of step 2", bucket["historyTail"])
	}
	if bucket["historyLineCount"] != 3.0 {
		t.Errorf("historyLineCount %v, want 3", bucket["historyLineCount"])
	}
	rs = gql(t, srv, `query { model(name: "p") { bucket(name: "nope", missingOk: true) { id } } }`, nil)
	if m := rs.Data["model"].(map[string]any); m["bucket"] != nil {
		t.Errorf("missing run: got %v, want null", m["bucket"])
	}
}

func TestFileStream(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	gql(t, srv, upsert, map[string]any{"name": "r", "project": "p"})
	h := func(offset int, lines []string) map[string]any {
		return map[string]any{"files": map[string]any{"wandb-history.jsonl": map[string]any{"offset": offset, "content": lines}}}
	}
	stream(t, srv, "r", h(0, historyLines(0, 5)))
	stream(t, srv, "r", h(3, historyLines(3, 4))) // overlaps 3..4 (a retry) and adds 5..6
	stream(t, srv, "r", h(0, historyLines(0, 5))) // a full retry
	stream(t, srv, "r", map[string]any{"files": map[string]any{
		"output.log":         map[string]any{"offset": 0, "content": []string{"epoch 1 [=====", "second"}},
		"wandb-summary.json": map[string]any{"offset": 0, "content": []string{`{"loss": 0.5, "x": NaN}`}},
	}})
	stream(t, srv, "r", map[string]any{"files": map[string]any{
		"output.log":         map[string]any{"offset": 0, "content": []string{"epoch 1 [==========] done"}},
		"wandb-summary.json": map[string]any{"offset": 0, "content": []string{`{"loss": 0.25}`}},
	}})
	var rows []map[string]any
	srv.GetJSON(t, "/api/v1/runs/local/p/r/history", &rows)
	if len(rows) != 7 {
		t.Fatalf("got %d rows, want 7", len(rows))
	}
	for i, r := range rows {
		if r["_step"] != float64(i) {
			t.Errorf("row %d: _step %v", i, r["_step"])
		}
	}
	var logs []struct {
		Line int
		Text string
	}
	srv.GetJSON(t, "/api/v1/runs/local/p/r/logs", &logs)
	if len(logs) != 2 || logs[0].Text != "epoch 1 [==========] done" || logs[1].Text != "second" {
		t.Errorf("got logs %+v, want line 0 overwritten", logs)
	}
	var run server.RunJSON
	srv.GetJSON(t, "/api/v1/runs/local/p/r", &run)
	if run.State != "running" || run.Summary["loss"] != 0.25 || len(run.Summary) != 1 {
		t.Errorf("got state %s summary %v, want running {loss: 0.25}", run.State, run.Summary)
	}
	// NaN history values are kept in the raw row and left out of the metric.
	stream(t, srv, "r", h(7, []string{`{"_step":7,"loss":NaN,"acc":Infinity}`}))
	var sampled []map[string]any
	srv.GetJSON(t, "/api/v1/runs/local/p/r/history?keys=loss", &sampled)
	if len(sampled) != 7 {
		t.Errorf("keys=loss: got %d rows, want 7 (the NaN left out)", len(sampled))
	}
	srv.GetJSON(t, "/api/v1/runs/local/p/r/history", &rows)
	if rows[7]["loss"] != "NaN" || rows[7]["acc"] != "Infinity" {
		t.Errorf("row 7: %v, want NaN and Infinity as strings", rows[7])
	}
	stream(t, srv, "r", map[string]any{"complete": true, "exitcode": 1})
	srv.GetJSON(t, "/api/v1/runs/local/p/r", &run)
	if run.State != "failed" || run.ExitCode == nil || *run.ExitCode != 1 {
		t.Errorf("got state %s exit %v, want failed 1", run.State, run.ExitCode)
	}
	if status, b := do(t, srv, "POST", "/files/local/p/r/file_stream", `{"files": {"wandb-history.jsonl": {"offset": 9, "content": ["not json"]}}}`, true); status != 400 || !strings.Contains(string(b), "line 9") {
		t.Errorf("bad history line: got %d %s, want 400 naming line 9", status, b)
	}
}

func TestStopFromDashboard(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	gql(t, srv, upsert, map[string]any{"name": "r", "project": "p"})
	if got := stream(t, srv, "r", map[string]any{}); got["stopped"] != nil {
		t.Fatalf("before stop: got %v", got)
	}
	if status, _ := do(t, srv, "POST", "/api/v1/runs/local/p/r/stop", nil, false); status != 403 {
		t.Errorf("stop without X-Mami header: got %d, want 403", status)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/runs/local/p/r/stop", nil)
	req.Header.Set("X-Mami", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stop: %v %v", err, resp)
	}
	resp.Body.Close()
	if got := stream(t, srv, "r", map[string]any{}); got["stopped"] != true {
		t.Errorf("after stop: got %v, want stopped true", got)
	}
	stream(t, srv, "r", map[string]any{"complete": true, "exitcode": 0})
	var run server.RunJSON
	srv.GetJSON(t, "/api/v1/runs/local/p/r", &run)
	if run.State != "stopped" {
		t.Errorf("got state %s, want stopped", run.State)
	}
}

func TestCrashDetection(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv := servertest.Start(t, server.Config{CrashAfter: time.Minute, CrashCheck: time.Hour, Clock: clock.Now})
	ctx := context.Background()
	gql(t, srv, upsert, map[string]any{"name": "quiet", "project": "p"})
	gql(t, srv, upsert, map[string]any{"name": "alive", "project": "p"})
	clock.Add(50 * time.Second)
	stream(t, srv, "alive", map[string]any{})
	clock.Add(20 * time.Second) // quiet: 70 s silent; alive: 20 s
	crashed, err := srv.CheckCrashed(ctx)
	if err != nil || len(crashed) != 1 || crashed[0].Name != "quiet" {
		t.Fatalf("got %v %v, want [quiet]", crashed, err)
	}
	var run server.RunJSON
	srv.GetJSON(t, "/api/v1/runs/local/p/quiet", &run)
	if run.State != "crashed" {
		t.Errorf("got %s, want crashed", run.State)
	}
	stream(t, srv, "quiet", map[string]any{}) // a heartbeat revives it
	srv.GetJSON(t, "/api/v1/runs/local/p/quiet", &run)
	if run.State != "running" {
		t.Errorf("after heartbeat: got %s, want running", run.State)
	}
}

func TestAuth(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	for _, p := range []struct{ method, path string }{
		{"POST", "/graphql"}, {"POST", "/files/local/p/r/file_stream"},
	} {
		status, b := do(t, srv, p.method, p.path, `{}`, false)
		var e map[string]string
		if status != 401 || json.Unmarshal(b, &e) != nil || e["error"] == "" {
			t.Errorf("%s %s without key: got %d %s, want 401 JSON error", p.method, p.path, status, b)
		}
	}
	req, _ := http.NewRequest("POST", srv.URL+"/graphql", strings.NewReader(`{"query":"{viewer{id}}"}`))
	req.Header.Set("Authorization", servertest.BasicAuth(strings.Repeat("x", 40)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 401 {
		t.Errorf("wrong key: got %v %v, want 401", resp.StatusCode, err)
	}
	resp.Body.Close()
	if status, _ := do(t, srv, "GET", "/healthz", nil, false); status != 200 {
		t.Errorf("healthz: got %d", status)
	}
	// Loopback: the JSON API is open, but not to a foreign Host header (DNS rebinding).
	if status, _ := do(t, srv, "GET", "/api/v1/projects", nil, false); status != 200 {
		t.Errorf("projects on loopback without key: got %d, want 200", status)
	}
	req, _ = http.NewRequest("GET", srv.URL+"/api/v1/projects", nil)
	req.Host = "evil.example:80"
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 403 {
		t.Errorf("foreign Host: got %v %v, want 403", resp.StatusCode, err)
	}
	resp.Body.Close()
	// Body size limit.
	small := servertest.Start(t, server.Config{MaxBodyBytes: 1024})
	big := `{"files": {"output.log": {"offset": 0, "content": ["` + strings.Repeat("x", 4096) + `"]}}}`
	if status, _ := do(t, small, "POST", "/files/local/p/r/file_stream", big, true); status != 413 {
		t.Errorf("oversized body: got %d, want 413", status)
	}
}

func TestLoginRequiredOffLoopback(t *testing.T) {
	srv := servertest.Start(t, server.Config{Addr: "0.0.0.0:8080"})
	if status, _ := do(t, srv, "GET", "/api/v1/projects", nil, false); status != 401 {
		t.Errorf("API without key: got %d, want 401", status)
	}
	if status, _ := do(t, srv, "GET", "/api/v1/projects", nil, true); status != 200 {
		t.Errorf("API with key: got %d, want 200", status)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(srv.URL + "/")
	if err != nil || resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("dashboard without session: got %v %v, want a redirect to /login", resp, err)
	}
	resp.Body.Close()
	resp, err = client.PostForm(srv.URL+"/login", map[string][]string{"key": {"wrong" + srv.Key}})
	if err != nil || resp.StatusCode != 401 {
		t.Errorf("login with a wrong key: got %v %v, want 401", resp.StatusCode, err)
	}
	resp.Body.Close()
	resp, err = client.PostForm(srv.URL+"/login", map[string][]string{"key": {srv.Key}, "next": {"//evil.example/"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: got %v %v, want a redirect to /", resp, err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "mami_session" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly {
		t.Fatalf("login set no HttpOnly session cookie: %v", resp.Cookies())
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/projects", nil)
	req.AddCookie(session)
	resp, err = client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("API with session: got %v %v, want 200", resp.StatusCode, err)
	}
	resp.Body.Close()
}

func TestUploads(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	gql(t, srv, upsert, map[string]any{"name": "r", "project": "p"})
	q := `mutation CreateRunFiles($files: [String!]!) { createRunFiles(input: {entityName: "local", projectName: "p", runName: "r", files: $files}) { runID uploadHeaders files { name uploadUrl } } }`
	for _, bad := range []string{"../escape.txt", "/etc/passwd", "a/../../b", `a\b`} {
		if r := gql(t, srv, q, map[string]any{"files": []string{bad}}); len(r.Errors) == 0 {
			t.Errorf("file name %q: got %v, want an error", bad, r.Data)
		}
	}
	r := gql(t, srv, q, map[string]any{"files": []string{"media/images/plot 1.png", "config.yaml"}})
	files := r.Data["createRunFiles"].(map[string]any)["files"].([]any)
	if len(files) != 2 {
		t.Fatalf("got %v, want 2 files", r.Data)
	}
	u := files[0].(map[string]any)["uploadUrl"].(string)
	put := func(url string) int {
		req, _ := http.NewRequest("PUT", url, strings.NewReader("\x89PNG fake"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := put(u); got != 200 {
		t.Fatalf("PUT %s: got %d", u, got)
	}
	if got := put(strings.Replace(u, "sig=", "sig=0", 1)); got != 403 {
		t.Errorf("tampered signature: got %d, want 403", got)
	}
	if got := put(strings.Replace(u, "plot%201.png", "other.png", 1)); got != 403 {
		t.Errorf("other name with the same signature: got %d, want 403", got)
	}
	if got := put(srv.URL + "/storage/local/p/r/..%2f..%2fx?sig=1&exp=1"); got != 400 && got != 403 {
		t.Errorf("traversal: got %d, want 400 or 403", got)
	}
	status, b := do(t, srv, "GET", "/api/v1/runs/local/p/r/files/media/images/plot%201.png", nil, true)
	if status != 200 || string(b) != "\x89PNG fake" {
		t.Errorf("read back: got %d %q", status, b)
	}
}
