package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mami-lab/mami/runs/server"
	"github.com/mami-lab/mami/runs/server/servertest"
)

// transcriptLine is one recorded request of an official W&B client.
type transcriptLine struct {
	Seq     int               `json:"seq"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
	Op      string            `json:"op"`
}

func readTranscript(t *testing.T, name string) []transcriptLine {
	t.Helper()
	p := filepath.Join("..", "..", "..", "shared", "testdata", "wandb", name)
	f, err := os.Open(p)
	if err != nil {
		t.Skipf("transcript %s not available: %v", p, err)
	}
	defer f.Close()
	var out []transcriptLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for n := 1; sc.Scan(); n++ {
		var l transcriptLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s line %d: %v", p, n, err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return out
}

// replayer sends a transcript to a live server, substituting the key, the entity and the upload URLs.
type replayer struct {
	t         *testing.T
	srv       *servertest.Server
	oldEntity string
	entity    string
	uploads   map[string]string // file name -> upload URL handed out
}

func (rp *replayer) body(l transcriptLine) []byte {
	if len(l.Body) > 0 && l.Body[0] == '"' { // a raw text body, recorded as a JSON string
		var s string
		if err := json.Unmarshal(l.Body, &s); err != nil {
			rp.t.Fatalf("seq %d: body: %v", l.Seq, err)
		}
		return []byte(s)
	}
	if l.Method == "POST" && l.Path == "/graphql" && rp.oldEntity != "" {
		var req map[string]any
		if err := json.Unmarshal(l.Body, &req); err != nil {
			rp.t.Fatalf("seq %d: body: %v", l.Seq, err)
		}
		if vars, ok := req["variables"].(map[string]any); ok {
			for k, v := range vars {
				if v == rp.oldEntity {
					vars[k] = rp.entity
				}
			}
		}
		b, _ := json.Marshal(req)
		return b
	}
	return l.Body
}

func (rp *replayer) send(l transcriptLine) (int, []byte) {
	target := rp.srv.URL + l.Path
	if rp.oldEntity != "" {
		target = rp.srv.URL + strings.Replace(l.Path, "/"+rp.oldEntity+"/", "/"+rp.entity+"/", 1)
	}
	if l.Method == "PUT" {
		u, ok := rp.uploads[path.Base(l.Path)]
		if !ok {
			rp.t.Fatalf("seq %d: PUT %s: no upload URL was handed out for it", l.Seq, l.Path)
		}
		target = u
	}
	req, err := http.NewRequest(l.Method, target, bytes.NewReader(rp.body(l)))
	if err != nil {
		rp.t.Fatal(err)
	}
	for k, v := range l.Headers {
		switch strings.ToLower(k) {
		case "content-type", "user-agent":
			req.Header.Set(k, v)
		case "authorization":
			rp.srv.Authorize(req)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		rp.t.Fatalf("seq %d: %s %s: %v", l.Seq, l.Method, l.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// supported are the operations the server must answer without a GraphQL error.
var supported = map[string]bool{"Viewer": true, "ServerFeaturesQuery": true, "UpsertBucket": true,
	"CreateRunFiles": true, "RunResumeStatus": true, "ServerInfo": true}

func replay(t *testing.T, srv *servertest.Server, lines []transcriptLine) (runID string, lastSummary map[string]any) {
	rp := &replayer{t: t, srv: srv, uploads: map[string]string{}}
	for _, l := range lines {
		status, body := rp.send(l)
		if status/100 != 2 {
			t.Fatalf("seq %d %s %s (%s): status %d: %s", l.Seq, l.Method, l.Path, l.Op, status, body)
		}
		if l.Path == "/graphql" {
			var resp struct {
				Data   map[string]json.RawMessage `json:"data"`
				Errors []struct{ Message string } `json:"errors"`
			}
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatalf("seq %d %s: answer is not JSON: %v: %s", l.Seq, l.Op, err, body)
			}
			if supported[l.Op] && len(resp.Errors) > 0 {
				t.Fatalf("seq %d %s: GraphQL errors %v", l.Seq, l.Op, resp.Errors)
			}
			if !supported[l.Op] && len(resp.Errors) == 0 {
				t.Errorf("seq %d %s: got data %s, want a GraphQL error for an unsupported operation", l.Seq, l.Op, body)
			}
			switch l.Op {
			case "Viewer":
				var v struct{ Entity string }
				_ = json.Unmarshal(resp.Data["viewer"], &v)
				if v.Entity == "" {
					t.Fatalf("seq %d: Viewer answered no entity: %s", l.Seq, body)
				}
				rp.oldEntity, rp.entity = "local", v.Entity // the recordings' stub said "local"
			case "UpsertBucket":
				var u struct {
					Bucket struct {
						Name    string
						Project struct {
							Name   string
							Entity struct{ Name string }
						}
					}
				}
				_ = json.Unmarshal(resp.Data["upsertBucket"], &u)
				runID = u.Bucket.Name
				if u.Bucket.Project.Entity.Name != rp.entity {
					t.Errorf("seq %d: bucket entity %q, want %q", l.Seq, u.Bucket.Project.Entity.Name, rp.entity)
				}
			case "CreateRunFiles":
				var c struct {
					Files []struct {
						Name      string `json:"name"`
						UploadURL string `json:"uploadUrl"`
					}
				}
				_ = json.Unmarshal(resp.Data["createRunFiles"], &c)
				for _, f := range c.Files {
					rp.uploads[f.Name] = f.UploadURL
				}
			}
		}
		if strings.HasSuffix(l.Path, "/file_stream") {
			var req struct {
				Files map[string]struct{ Content []string }
			}
			_ = json.Unmarshal(l.Body, &req)
			if s, ok := req.Files["wandb-summary.json"]; ok && len(s.Content) > 0 {
				lastSummary = map[string]any{}
				_ = json.Unmarshal([]byte(s.Content[len(s.Content)-1]), &lastSummary)
			}
		}
	}
	return runID, lastSummary
}

func TestReplayTranscripts(t *testing.T) {
	for _, tc := range []struct {
		file    string
		uploads []string
	}{
		{"py-transcript.jsonl", []string{"config.yaml", "requirements.txt", "wandb-metadata.json", "wandb-summary.json"}},
		{"js-transcript.jsonl", nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			srv := servertest.Start(t, server.Config{Entity: "lab"})
			lines := readTranscript(t, tc.file)
			runID, summary := replay(t, srv, lines)
			// Replaying a second time (every request a retry) must not duplicate anything.
			replay(t, srv, lines)

			var runs []server.RunJSON
			srv.GetJSON(t, "/api/v1/runs?project=p&entity=lab", &runs)
			if len(runs) != 1 {
				t.Fatalf("got %d runs, want 1", len(runs))
			}
			run := runs[0]
			if run.ID != runID || run.State != "finished" || run.Entity != "lab" || run.Project != "p" {
				t.Errorf("got run %s %s/%s state %s, want %s lab/p finished", run.ID, run.Entity, run.Project, run.State, runID)
			}
			wantCfg := map[string]any{"lr": 0.001, "fusion": "concat"}
			if !reflect.DeepEqual(run.Config, wantCfg) {
				t.Errorf("got config %v, want %v", run.Config, wantCfg)
			}
			delete(summary, "_wandb")
			if !reflect.DeepEqual(run.Summary, summary) {
				t.Errorf("got summary %v, want %v", run.Summary, summary)
			}
			var rows []map[string]any
			srv.GetJSON(t, "/api/v1/runs/lab/p/"+url.PathEscape(runID)+"/history", &rows)
			if len(rows) != 10 {
				t.Fatalf("got %d history rows, want 10", len(rows))
			}
			for i, r := range rows {
				if r["_step"] != float64(i) {
					t.Errorf("row %d: _step %v, want %d", i, r["_step"], i)
				}
			}
			if rows[9]["loss"] != 0.1 || rows[9]["acc"] != 0.9 {
				t.Errorf("last row %v, want loss 0.1 acc 0.9", rows[9])
			}
			var files []struct {
				Name     string
				Uploaded bool
			}
			srv.GetJSON(t, "/api/v1/runs/lab/p/"+runID+"/files", &files)
			var names []string
			for _, f := range files {
				names = append(names, f.Name)
			}
			if !reflect.DeepEqual(names, tc.uploads) && !(len(names) == 0 && len(tc.uploads) == 0) {
				t.Errorf("got files %v, want %v", names, tc.uploads)
			}
		})
	}
}
