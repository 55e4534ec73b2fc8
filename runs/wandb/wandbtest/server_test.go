package wandbtest_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mami-lab/mami/runs/wandb/wandbtest"
)

type recorded struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
	Op      string            `json:"op"`
}

// replay sends the requests of a recording of an official client to srv and returns the answers' statuses.
func replay(t *testing.T, srv *wandbtest.Server, name string) []int {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "..", "..", "shared", "testdata", "wandb", name))
	if err != nil {
		t.Skipf("recordings not available: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var statuses []int
	for sc.Scan() {
		var r recorded
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		body := []byte(r.Body)
		var s string
		if json.Unmarshal(r.Body, &s) == nil && r.Method == "PUT" {
			body = []byte(s) // a text upload recorded as a JSON string
		}
		req, err := http.NewRequest(r.Method, srv.URL+r.Path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range r.Headers {
			if !strings.EqualFold(k, "Content-Length") && !strings.EqualFold(k, "Host") {
				req.Header.Set(k, v)
			}
		}
		if r.Method == "PUT" { // the recording stub handed out no upload headers
			req.Header.Set(wandbtest.UploadHeader, strings.Split(r.Path, "/")[4])
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	return statuses
}

// TestOfficialClientsAreAccepted replays the recordings of the official Python and JS clients: the fake
// server must take them without a protocol violation, and hold the runs they logged.
func TestOfficialClientsAreAccepted(t *testing.T) {
	for _, tc := range []struct{ file, run string }{
		{"py-transcript.jsonl", "urw4k2r5"},
		{"js-transcript.jsonl", "q6zqzwpm"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			srv := wandbtest.NewServer(wandbtest.Options{})
			defer srv.Close()
			for i, st := range replay(t, srv, tc.file) {
				if st != http.StatusOK {
					t.Errorf("request %d answered %d", i+1, st)
				}
			}
			for _, v := range srv.Violations() {
				t.Errorf("violation: %s", v)
			}
			run, ok := srv.GetRun("local", "p", tc.run)
			if !ok {
				t.Fatal("run not held")
			}
			if len(run.History) != 10 || !run.Complete || run.ExitCode == nil || *run.ExitCode != 0 {
				t.Errorf("run: %d history rows, complete %v, exit %v; want 10, true, 0", len(run.History), run.Complete, run.ExitCode)
			}
			var buf bytes.Buffer
			if err := srv.WriteTranscript(&buf); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(buf.String(), "\n"); n != len(srv.Requests()) {
				t.Errorf("transcript has %d lines for %d requests", n, len(srv.Requests()))
			}
		})
	}
}

func TestViolationsAreReported(t *testing.T) {
	srv := wandbtest.NewServer(wandbtest.Options{})
	defer srv.Close()
	post := func(path, auth, body string) int {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := "Basic YXBpOjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc="
	if st := post("/graphql", "Bearer x", `{"query":"query Viewer { viewer { id } }","variables":{},"operationName":"Viewer"}`); st != 401 {
		t.Errorf("bad auth answered %d, want 401", st)
	}
	post("/graphql", good, `{"query":"mutation UpsertBucket { x }","variables":{"name":"r","project":"p","config":"{}"},"operationName":"UpsertBucket"}`)
	post("/files/local/p/r/file_stream", good, `{"files":{"wandb-history.jsonl":{"offset":0,"content":["{\"_step\":1}"]}}}`)
	post("/files/local/p/r/file_stream", good, `{"files":{"wandb-history.jsonl":{"offset":0,"content":["{\"_step\":2}"]}}}`)
	post("/files/local/p/r/file_stream", good, `{"files":{"wandb-history.jsonl":{"offset":5,"content":["{\"x\":1}"]}},"complete":true}`)
	want := []string{"not Basic", "re-sent with other content", "leaves a gap", "no integer _step", "complete and exitcode"}
	got := strings.Join(srv.Violations(), "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("no violation mentioning %q in:\n%s", w, got)
		}
	}
}

func TestMaxBodyBytesAnswers413WithoutEffect(t *testing.T) {
	srv := wandbtest.NewServer(wandbtest.Options{MaxBodyBytes: 300})
	defer srv.Close()
	post := func(path, body string) int {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Basic YXBpOjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc=")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	post("/graphql", `{"query":"mutation UpsertBucket { x }","variables":{"name":"r","project":"p"},"operationName":"UpsertBucket"}`)
	row := func(step int, pad int) string {
		return `{"files":{"wandb-history.jsonl":{"offset":` + fmt.Sprint(step-1) + `,"content":["{\"_step\":` + fmt.Sprint(step) + `,\"x\":\"` + strings.Repeat("a", pad) + `\"}"]}}}`
	}
	for _, tc := range []struct {
		body string
		want int
	}{
		{row(1, 10), 200}, {row(2, 400), 413}, {row(2, 20), 200},
	} {
		if got := post("/files/local/p/r/file_stream", tc.body); got != tc.want {
			t.Errorf("a body of %d bytes answered %d, want %d", len(tc.body), got, tc.want)
		}
	}
	srv.SetMaxBodyBytes(0)
	if got := post("/files/local/p/r/file_stream", row(3, 400)); got != 200 {
		t.Errorf("without a limit: %d, want 200", got)
	}
	run, _ := srv.GetRun("local", "p", "r")
	if len(run.History) != 3 || !strings.Contains(run.History[1], `"x":"aaaaaaaaaaaaaaaaaaaa"`) {
		t.Errorf("history %q: want three rows, the refused one without effect", run.History)
	}
	var faults []string
	for _, q := range srv.Requests() {
		faults = append(faults, q.Fault)
	}
	if strings.Join(faults, ",") != ",,too-large,," {
		t.Errorf("faults %q, want too-large on the third request only", faults)
	}
	if v := srv.Violations(); len(v) != 0 {
		t.Errorf("violations: %v", v)
	}
}
