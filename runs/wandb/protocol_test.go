package wandb_test

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/mami-lab/mami/runs/wandb"
	"github.com/mami-lab/mami/runs/wandb/wandbtest"
)

// recorded is one line of the recordings of official clients in shared/testdata/wandb.
type recorded struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
	Op      string            `json:"op"`
}

func readRecording(t *testing.T, name string) []recorded {
	t.Helper()
	path := filepath.Join("..", "..", "..", "shared", "testdata", "wandb", name)
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("recordings not available: %v", err)
	}
	defer f.Close()
	var out []recorded
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r recorded
		must(t, json.Unmarshal(sc.Bytes(), &r))
		out = append(out, r)
	}
	must(t, sc.Err())
	return out
}

func header(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// TestRequestsMatchOfficialClients runs a small run and compares every request with the shapes the official
// Python client sends (py-transcript.jsonl, recorded with the same dummy key).
func TestRequestsMatchOfficialClients(t *testing.T) {
	py := readRecording(t, "py-transcript.jsonl")
	pyVars := map[string][]string{} // operation → sorted variable names
	var pyAuth string
	for _, r := range py {
		if r.Op != "" {
			var b struct{ Variables map[string]any }
			must(t, json.Unmarshal(r.Body, &b))
			pyVars[r.Op] = slices.Sorted(maps.Keys(b.Variables))
		}
		if r.Method == "POST" {
			pyAuth = header(r.Headers, "Authorization")
		}
	}
	synctest.Test(t, func(t *testing.T) {
		srv := wandbtest.NewPipeServer(wandbtest.Options{})
		defer srv.Close()
		r := newFakeRun(t, "shapes")
		must(t, os.WriteFile(filepath.Join(r.dir, "plots", "loss.svg"), []byte("<svg/>"), 0o644))
		st, err := wandb.Start(context.Background(), r.dir, settings(srv, r.id), fastOptions(srv))
		must(t, err)
		simulate(t, r, st, 1000, nil)
		r.finish(0)
		must(t, st.Finish(context.Background(), 0))
		checkNoViolations(t, srv)

		var ops []string
		reqs := srv.Requests()
		for i, q := range reqs {
			switch {
			case q.Method == "PUT":
				if q.Header.Get("Authorization") != "" {
					t.Errorf("PUT %s carries Authorization", q.Path)
				}
				continue
			case q.Header.Get("Authorization") != pyAuth:
				t.Errorf("%s %s: Authorization %q, want %q as the Python client sends", q.Method, q.Path, q.Header.Get("Authorization"), pyAuth)
			}
			if q.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s %s: Content-Type %q", q.Method, q.Path, q.Header.Get("Content-Type"))
			}
			var body map[string]json.RawMessage
			must(t, json.Unmarshal(q.Body, &body))
			if q.Path == "/graphql" {
				ops = append(ops, q.Op)
				if got := slices.Sorted(maps.Keys(body)); !slices.Equal(got, []string{"operationName", "query", "variables"}) {
					t.Errorf("graphql body keys %v", got)
				}
				var vars map[string]any
				must(t, json.Unmarshal(body["variables"], &vars))
				if want, ok := pyVars[q.Op]; ok && !slices.Equal(slices.Sorted(maps.Keys(vars)), want) {
					t.Errorf("%s variables %v, want %v", q.Op, slices.Sorted(maps.Keys(vars)), want)
				}
				if q.Op == "UpsertBucket" {
					checkUpsert(t, vars)
				}
				continue
			}
			for k := range body {
				if !slices.Contains([]string{"files", "uploaded", "preempting", "complete", "exitcode"}, k) {
					t.Errorf("file_stream key %q", k)
				}
			}
			_, complete := body["complete"]
			if last := i == len(reqs)-1; complete != last {
				t.Errorf("request %d of %d: complete=%v; it belongs on the final request only", i+1, len(reqs), complete)
			}
		}
		want := []string{"Viewer", "ServerFeaturesQuery", "UpsertBucket", "CreateRunFiles"}
		if !slices.Equal(ops, want) {
			t.Errorf("GraphQL operations %v, want %v", ops, want)
		}
	})
}

func checkUpsert(t *testing.T, vars map[string]any) {
	t.Helper()
	for k, want := range map[string]any{"name": "shapes", "project": "mami", "displayName": "seed-run",
		"groupName": "study", "notes": "first try", "program": "mami"} {
		if vars[k] != want {
			t.Errorf("UpsertBucket %s = %v, want %v", k, vars[k], want)
		}
	}
	if tags, _ := vars["tags"].([]any); len(tags) != 2 || tags[0] != "seed" {
		t.Errorf("UpsertBucket tags %v", vars["tags"])
	}
	cs, ok := vars["config"].(string)
	if !ok {
		t.Fatalf("config %T, want a JSON string", vars["config"])
	}
	if strings.Contains(cs, "secret-key") || strings.Contains(cs, "api_key") {
		t.Errorf("the API key leaked into the config: %s", cs)
	}
	var cfg map[string]map[string]any
	if err := json.Unmarshal([]byte(cs), &cfg); err != nil {
		t.Fatalf("config is not {key: {value: v}}: %v", err)
	}
	for k, v := range cfg {
		if _, ok := v["value"]; !ok || len(v) != 1 {
			t.Errorf("config[%q] = %v, want {\"value\": v}", k, v)
		}
	}
	if lr := cfg["train"]["value"].(map[string]any)["lr"]; lr != 0.001 {
		t.Errorf("config train.lr %v, want 0.001", lr)
	}
}
