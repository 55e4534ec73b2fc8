package server_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/mami-lab/mami/runs/server"
	"github.com/mami-lab/mami/runs/server/servertest"
)

func TestPlainConfig(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]any
	}{
		{"python shape", `{"lr": {"value": 0.001, "desc": null}, "model": {"value": {"fusion": "gmu"}}, "_wandb": {"value": {"t": 1}}}`,
			map[string]any{"lr": 0.001, "model": map[string]any{"fusion": "gmu"}}},
		{"js shape", `{"lr": 0.001, "fusion": "concat"}`, map[string]any{"lr": 0.001, "fusion": "concat"}},
		{"nested plain object that has a value key among others", `{"opt": {"value": 1, "beta": 2}}`,
			map[string]any{"opt": map[string]any{"value": 1.0, "beta": 2.0}}},
		{"mixed stays as sent", `{"a": {"value": 1}, "b": 2}`, map[string]any{"a": map[string]any{"value": 1.0}, "b": 2.0}},
		{"empty", `{}`, map[string]any{}},
		{"not an object", `[1]`, map[string]any{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := server.PlainConfig(json.RawMessage(tc.in)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("PlainConfig(%s) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// TestUploadedHTMLIsInert checks that an uploaded HTML or SVG file cannot run script in the dashboard's
// origin: HTML is served as plain text, and every file carries a sandboxing CSP.
func TestUploadedHTMLIsInert(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	ctx := t.Context()
	err := srv.LogRun(ctx, servertest.RunSpec{Project: "p", ID: "r", Files: map[string][]byte{
		"evil.html": []byte("<script>alert(1)</script>"), "plot.svg": []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, ctype string }{{"evil.html", "text/plain"}, {"plot.svg", "image/svg+xml"}} {
		resp, err := http.Get(srv.URL + "/api/v1/runs/local/p/r/files/" + tc.name)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
			t.Errorf("%s: Content-Type %q, CSP %q; want %s and a sandbox", tc.name, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Security-Policy"), tc.ctype)
		}
	}
}

func TestDashboardPages(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	if err := srv.LogRun(t.Context(), servertest.RunSpec{Project: "p", ID: "r1", Name: `<b>bold</b>`}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"/", 200, `href="/p/local/p"`},
		{"/p/local/p", 200, `data-project="p"`},
		{"/r/local/p/r1", 200, `&lt;b&gt;bold&lt;/b&gt;`},
		{"/r/local/p/nope", 404, "No run local/p/nope"},
		{"/static/workspace.js", 200, "renderCharts"},
		{"/static/../server.go", 404, ""},
	} {
		status, body := do(t, srv, "GET", tc.path, nil, false)
		if status != tc.status || !strings.Contains(string(body), tc.want) {
			t.Errorf("GET %s: got %d, want %d containing %q", tc.path, status, tc.status, tc.want)
		}
	}
}
