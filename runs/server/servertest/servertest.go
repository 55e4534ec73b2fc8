// Package servertest starts a mami tracking server for tests, the way net/http/httptest starts a handler:
// a fresh data directory, a known API key, an httptest listener on loopback, and cleanup at the end of the
// test.
package servertest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mami-lab/mami/runs/server"
)

// Key is the API key every test server accepts.
const Key = "servertest_0123456789abcdef0123456789abcdef"

// Server is a running test server.
type Server struct {
	*server.Server
	URL  string // base URL, e.g. http://127.0.0.1:41234
	Key  string // a valid API key
	HTTP *httptest.Server
}

// Start opens a server with cfg (DataDir defaults to t.TempDir(), Key is added to APIKeys) and serves it
// until the test ends.
func Start(t testing.TB, cfg server.Config) *Server {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.APIKeys = append(cfg.APIKeys, Key)
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("servertest: new server: %v", err)
	}
	if err := srv.Open(context.Background()); err != nil {
		t.Fatalf("servertest: open server: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("servertest: close server: %v", err)
		}
	})
	return &Server{Server: srv, URL: hs.URL, Key: Key, HTTP: hs}
}

// Authorize sets the Basic authorization the W&B clients send ("api" and the key).
func (s *Server) Authorize(r *http.Request) {
	r.Header.Set("Authorization", BasicAuth(s.Key))
}

// GetJSON fetches path with the test key and decodes its JSON answer into v, failing the test on any
// error or a status other than 200.
func (s *Server) GetJSON(t testing.TB, path string, v any) {
	t.Helper()
	req, err := http.NewRequest("GET", s.URL+path, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	s.Authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

// BasicAuth is the Authorization header value W&B clients send for key.
func BasicAuth(key string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte("api:"+key))
}
