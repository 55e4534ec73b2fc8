// Package server is mami's tracking server: it speaks the W&B wire protocol (GraphQL at /graphql, the
// file_stream endpoint and file uploads), so the official W&B SDKs and runs/wandb log to it unchanged; it
// keeps everything in one SQLite database (package store) and serves a dashboard for comparing runs and a
// small JSON API.
//
// # Use
//
//	srv, err := server.New(server.Config{DataDir: dir})
//	err = srv.Open(ctx)           // opens the database, creates the first API key
//	http.ListenAndServe(addr, srv.Handler())
//	err = srv.Close(ctx)
//
// Serve does the listening with a graceful shutdown. Tests can use package servertest.
//
// # Authentication
//
// W&B protocol and JSON API requests carry an API key (HTTP Basic, user "api", the key as password; or a
// Bearer token). Keys are at least 40 characters and stored as sha256 hashes. On a loopback address the
// dashboard and its JSON API are open, like MLflow's or TensorBoard's; on any other address they ask for
// a key once and keep a session cookie.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/mami-lab/mami/runs/server/store"
)

// Defaults for Config's zero fields.
const (
	DefaultAddr           = "127.0.0.1:8080"
	DefaultEntity         = "local"
	DefaultCrashAfter     = 5 * time.Minute
	DefaultCrashCheck     = 10 * time.Second
	DefaultMaxBodyBytes   = 32 << 20
	DefaultMaxUploadBytes = 1 << 30
	DefaultSessionTTL     = 30 * 24 * time.Hour
)

// Config configures a Server. DataDir is required; every other zero field takes its default.
type Config struct {
	// Addr is the address the server will listen on; it decides whether the dashboard asks for a key
	// (any non-loopback address does). Empty means DefaultAddr.
	Addr string
	// DataDir holds the database (mami.db) and the uploaded files (files/).
	DataDir string
	// APIKeys are added to the stored keys at Open (each at least 40 characters of [A-Za-z0-9_-]).
	APIKeys []string
	// Entity is the entity Viewer reports, the default for runs that name none.
	Entity string
	// CrashAfter is how long a running run may stay silent before it is marked crashed.
	CrashAfter time.Duration
	// CrashCheck is how often silent runs are looked for.
	CrashCheck time.Duration
	// RequireLogin makes the dashboard ask for a key even on a loopback address.
	RequireLogin bool
	// PublicURL, if set, is the base of the upload URLs handed out (else taken from each request).
	PublicURL string
	// MaxBodyBytes limits GraphQL, file_stream and API request bodies; MaxUploadBytes limits uploads.
	MaxBodyBytes   int64
	MaxUploadBytes int64
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Clock is the time source (tests inject one); nil means time.Now.
	Clock func() time.Time
}

// Server is a tracking server. Create it with New, then Open it; its methods are safe for concurrent use.
type Server struct {
	cfg          Config
	log          *slog.Logger
	now          func() time.Time
	requireLogin bool
	started      time.Time

	store    *store.Store
	signKey  []byte
	firstKey string

	mu      sync.RWMutex
	keys    map[string]bool // sha256 hex of valid keys
	extra   map[string]Resolver
	stop    chan struct{}
	stopped chan struct{}
	handler http.Handler
}

// New checks cfg and returns an unopened Server.
func New(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("server config: data_dir: must be set")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("server config: addr %q: %w", cfg.Addr, err)
	}
	if cfg.Entity == "" {
		cfg.Entity = DefaultEntity
	}
	if cfg.CrashAfter <= 0 {
		cfg.CrashAfter = DefaultCrashAfter
	}
	if cfg.CrashCheck <= 0 {
		cfg.CrashCheck = min(DefaultCrashCheck, cfg.CrashAfter/2)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = DefaultMaxUploadBytes
	}
	for i, k := range cfg.APIKeys {
		if err := CheckKey(k); err != nil {
			return nil, fmt.Errorf("server config: api_keys[%d]: %w", i, err)
		}
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Clock, keys: map[string]bool{}, extra: map[string]Resolver{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.requireLogin = cfg.RequireLogin || !IsLoopback(cfg.Addr)
	s.handler = s.routes()
	return s, nil
}

// IsLoopback reports whether addr (host:port) names a loopback host.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Open opens the database under DataDir, adds the configured keys, creates a first key when there is none
// (FirstKey returns it) and starts the crash monitor.
func (s *Server) Open(ctx context.Context) error {
	st, err := store.Open(ctx, filepath.Join(s.cfg.DataDir, "mami.db"), store.Options{Logger: s.log, Clock: s.now})
	if err != nil {
		return fmt.Errorf("open server store: %w", err)
	}
	s.store = st
	secret, err := st.Setting(ctx, "upload_signing_key", func() string { return randomHex(32) })
	if err != nil {
		return errors.Join(err, st.Close(ctx))
	}
	s.signKey = []byte(secret)
	for _, k := range s.cfg.APIKeys {
		if err := st.AddKey(ctx, HashKey(k), "configured"); err != nil {
			return errors.Join(err, st.Close(ctx))
		}
	}
	hashes, err := st.KeyHashes(ctx)
	if err != nil {
		return errors.Join(err, st.Close(ctx))
	}
	if len(hashes) == 0 {
		k := NewKey()
		if err := st.AddKey(ctx, HashKey(k), "first start"); err != nil {
			return errors.Join(err, st.Close(ctx))
		}
		s.firstKey = k
		hashes = []string{HashKey(k)}
	}
	s.mu.Lock()
	for _, h := range hashes {
		s.keys[h] = true
	}
	s.mu.Unlock()
	s.started = s.now()
	s.stop = make(chan struct{})
	s.stopped = make(chan struct{})
	go s.monitor()
	return nil
}

// FirstKey returns the API key created by this Open because the database had none ("" otherwise). It is
// shown once: only its hash is stored.
func (s *Server) FirstKey() string { return s.firstKey }

// Store returns the server's database (nil before Open).
func (s *Server) Store() *store.Store { return s.store }

// RequireLogin reports whether the dashboard asks for a key.
func (s *Server) RequireLogin() bool { return s.requireLogin }

// Close stops the crash monitor and closes the database.
func (s *Server) Close(ctx context.Context) error {
	if s.store == nil {
		return nil
	}
	close(s.stop)
	<-s.stopped
	err := s.store.Close(ctx)
	s.store = nil
	return err
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers requests on ln until ctx ends, then shuts down gracefully (waiting up to 10 s).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// CheckCrashed marks the running runs that have been silent for longer than CrashAfter as crashed. The
// monitor calls it every CrashCheck; it does nothing until the server itself has run for CrashAfter, so a
// restart does not condemn runs whose clients were retrying meanwhile.
func (s *Server) CheckCrashed(ctx context.Context) ([]store.RunKey, error) {
	now := s.now()
	if now.Sub(s.started) < s.cfg.CrashAfter {
		return nil, nil
	}
	keys, err := s.store.MarkCrashed(ctx, now.Add(-s.cfg.CrashAfter))
	for _, k := range keys {
		s.log.Info("run crashed: no heartbeat", "run", k.String(), "after", s.cfg.CrashAfter)
	}
	return keys, err
}

func (s *Server) monitor() {
	defer close(s.stopped)
	t := time.NewTicker(s.cfg.CrashCheck)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if _, err := s.CheckCrashed(ctx); err != nil {
				s.log.Warn("crash check", "err", err)
			}
			cancel()
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}
