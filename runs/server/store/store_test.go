package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mami-lab/mami/runs/server/store"
)

func open(t testing.TB, path string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	s := open(t, path)
	k := store.RunKey{Entity: "e", Project: "p", Name: "r"}
	if _, err := s.Stream(ctx, k, store.StreamUpdate{History: &store.Chunk{Offset: 0, Lines: []string{`{"_step":0,"a":1}`}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s = open(t, path) // migrations already applied: must not fail or re-run
	defer s.Close(ctx)
	run, err := s.Run(ctx, k)
	if err != nil || run.HistoryLines != 1 {
		t.Fatalf("after reopen: got %+v %v, want 1 history line", run, err)
	}
	if store.SchemaVersion() < 1 {
		t.Errorf("schema version %d", store.SchemaVersion())
	}
}

// TestConcurrentStreams has 50 runs writing at once: no write may fail (no SQLITE_BUSY) and every row lands.
func TestConcurrentStreams(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "m.db"))
	defer s.Close(ctx)
	const runs, rows = 50, 40
	var wg sync.WaitGroup
	errs := make(chan error, runs*rows)
	for r := range runs {
		wg.Go(func() {
			k := store.RunKey{Entity: "e", Project: "load", Name: fmt.Sprintf("run%02d", r)}
			for i := range rows {
				line := fmt.Sprintf(`{"_step":%d,"loss":%g}`, i, float64(i)/10)
				if _, err := s.Stream(ctx, k, store.StreamUpdate{History: &store.Chunk{Offset: int64(i), Lines: []string{line}}}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("stream: %v", err)
	}
	all, err := s.Runs(ctx, "e", "load")
	if err != nil || len(all) != runs {
		t.Fatalf("got %d runs %v, want %d", len(all), err, runs)
	}
	for _, r := range all {
		se, err := s.Metric(ctx, r.ID, "loss")
		if err != nil || len(se.Values) != rows || r.HistoryLines != rows {
			t.Errorf("run %s: %d values, %d lines, %v; want %d", r.Name, len(se.Values), r.HistoryLines, err, rows)
		}
	}
}

func TestFailedWriteDoesNotAffectOthers(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "m.db"))
	defer s.Close(ctx)
	k := store.RunKey{Entity: "e", Project: "p", Name: "r"}
	_, err := s.Stream(ctx, k, store.StreamUpdate{History: &store.Chunk{Offset: 0, Lines: []string{`{"_step":0}`, `oops`}}})
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("got %v, want an error naming line 1", err)
	}
	if _, err := s.Stream(ctx, k, store.StreamUpdate{History: &store.Chunk{Offset: 0, Lines: []string{`{"_step":0}`}}}); err != nil {
		t.Fatal(err)
	}
	run, _ := s.Run(ctx, k)
	if run.HistoryLines != 1 {
		t.Errorf("got %d lines, want 1 (the bad request wrote nothing)", run.HistoryLines)
	}
	if _, err := s.Stream(ctx, store.RunKey{Entity: "e", Project: "p/q", Name: "r"}, store.StreamUpdate{}); err == nil {
		t.Errorf("project with a slash: got no error")
	}
}

func TestSanitizeJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":NaN,"b":-Infinity,"c":Infinity}`, `{"a":"NaN","b":"-Infinity","c":"Infinity"}`},
		{`{"NaN":"NaN Infinity","x":[NaN]}`, `{"NaN":"NaN Infinity","x":["NaN"]}`},
		{`{"s":"a\"NaN"}`, `{"s":"a\"NaN"}`},
		{`{"a":1}`, `{"a":1}`},
		{`{"a":NaNx}`, `{"a":NaNx}`},
	} {
		if got := string(store.SanitizeJSON([]byte(tc.in))); got != tc.want {
			t.Errorf("SanitizeJSON(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func FuzzSanitizeJSON(f *testing.F) {
	for _, s := range []string{`{"a":NaN}`, `{"s":"\"NaN"}`, `[Infinity,-Infinity]`, `{"a":{"b":[1,2,NaN]}}`, `"\\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := store.SanitizeJSON([]byte(in))
		// Valid JSON stays identical; and what parses after sanitising keeps parsing when sanitised again.
		if json.Valid([]byte(in)) && string(out) != in {
			t.Fatalf("valid JSON changed: %q -> %q", in, out)
		}
		if again := store.SanitizeJSON(out); string(again) != string(out) {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, out, again)
		}
	})
}

func TestCleanFileName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"config.yaml", "config.yaml"},
		{"media/images/a.png", "media/images/a.png"},
		{"./a//b/", "a/b"},
		{"../x", ""}, {"a/../../x", ""}, {"/etc/passwd", ""}, {`a\b`, ""}, {"c:x", ""}, {"", ""}, {"a\x00b", ""}, {".", ""},
	} {
		got, err := store.CleanFileName(tc.in)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("CleanFileName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func FuzzCleanFileName(f *testing.F) {
	for _, s := range []string{"a/b.png", "../x", "a/./b", "//x", "..", "a/..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := store.CleanFileName(in)
		if err != nil {
			return
		}
		if !filepath.IsLocal(got) || strings.Contains(got, "\\") {
			t.Fatalf("CleanFileName(%q) = %q: not a local path", in, got)
		}
		for _, p := range strings.Split(got, "/") {
			if p == ".." || p == "." || p == "" {
				t.Fatalf("CleanFileName(%q) = %q: bad element %q", in, got, p)
			}
		}
	})
}
