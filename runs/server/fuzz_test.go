package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mami-lab/mami/runs/server"
	"github.com/mami-lab/mami/runs/server/servertest"
)

// FuzzGraphQL feeds arbitrary queries and variables to /graphql: every answer must be a JSON object with
// data or errors, never a crash.
func FuzzGraphQL(f *testing.F) {
	f.Add(`query Viewer { viewer { id entity flags teams { edges { node { name } } } } }`, `{}`)
	f.Add(`mutation U($n: String) { upsertBucket(input: {name: $n, modelName: "p"}) { bucket { id name project { name } } inserted } }`, `{"n": "r1"}`)
	f.Add(`query R($p: String) { model(name: $p) { bucket(name: "r1", missingOk: true) { historyTail wandbConfig(keys: ["t"]) } } }`, `{"p": "p"}`)
	f.Add(`{ a: viewer { ...F @skip(if: true) } } fragment F on User { ...F }`, `null`)
	f.Add(`mutation { createRunFiles(input: {entityName: "local", projectName: "p", runName: "r1", files: ["a", "../b"]}) { files { uploadUrl } } }`, `{}`)
	srv := servertest.Start(f, server.Config{})
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, query, vars string) {
		body, _ := json.Marshal(map[string]any{"query": query, "variables": json.RawMessage(validOr(vars))})
		req := httptest.NewRequest("POST", "/graphql", strings.NewReader(string(body)))
		srv.Authorize(req)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("answer is not JSON: %v: %s", err, rec.Body)
		}
		if _, ok := out["data"]; !ok && rec.Code == http.StatusOK {
			t.Fatalf("answer without data: %s", rec.Body)
		}
	})
}

func validOr(s string) string {
	if json.Valid([]byte(s)) && strings.HasPrefix(strings.TrimSpace(s), "{") {
		return s
	}
	return "{}"
}
