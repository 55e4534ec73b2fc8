// Package wandbtest is a fake W&B server for tests, like net/http/httptest: it speaks the part of the W&B
// wire protocol the official clients use (GraphQL Viewer, ServerFeaturesQuery, UpsertBucket,
// RunResumeStatus, CreateRunFiles; file_stream; upload PUTs), records every request, checks each against
// the shapes in WANDB-PROTOCOL.md (violations are collected, not fatal), keeps the runs it received, and
// injects faults: 5xx answers, 429 with Retry-After, connections dropped mid-body (before or after the
// request took effect), slow answers, outages and 413 for file_stream bodies over a size limit.
//
// NewServer listens on loopback TCP; NewPipeServer runs on an in-memory network so that tests can use
// testing/synctest's fake clock (create it inside the bubble and use its Client).
package wandbtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultAPIKey is the key the server accepts unless Options.APIKey says otherwise (the dummy key of the
// recordings in shared/testdata/wandb).
const DefaultAPIKey = "0123456789abcdef0123456789abcdef01234567"

// UploadHeader is the header CreateRunFiles asks the client to send with each upload PUT.
const UploadHeader = "X-Wandbtest-Upload"

// Options configure a Server. The zero value accepts DefaultAPIKey, names the viewer's entity "local" and
// injects no faults.
type Options struct {
	APIKey string
	Entity string
	Seed   uint64 // seed of the fault draws
	Faults Faults
	// MaxBodyBytes, when positive, answers a file_stream request whose body is longer with 413 Request
	// Entity Too Large and without effect, as W&B's servers do past their limit (fault "too-large").
	MaxBodyBytes int
}

// Faults are the fractions of requests that fail, drawn independently per request in this order.
type Faults struct {
	Drop       float64       // connection dropped mid-body: half of them before the request took effect (after half its body), half after (the answer is cut)
	Fail       float64       // answered 500, 502 or 503 without effect
	RateLimit  float64       // answered 429 with Retry-After, without effect
	RetryAfter time.Duration // the Retry-After of those 429s; default 1 s
	Slow       float64       // answered (with effect) after SlowDelay
	SlowDelay  time.Duration
}

// Request is one request the server received.
type Request struct {
	Seq      int
	Time     time.Time
	Method   string
	Path     string
	Header   http.Header
	Body     []byte
	Op       string // GraphQL operation name
	Status   int    // 0 when the connection was dropped
	Fault    string // drop-before, drop-after, fail, rate-limit, slow, down, too-large
	Response []byte
}

// Run is what the server holds of one run.
type Run struct {
	Entity, Project, ID                     string
	DisplayName, Group, Notes, Sweep, Host  string
	Program                                 string
	Tags                                    []string
	ConfigJSON                              string
	History, Events, Output                 []string
	Summary                                 string
	Files                                   map[string][]byte // uploaded content by name
	Uploaded                                []string          // names reported in file_stream `uploaded`
	Complete, Preempting                    bool
	ExitCode                                *int
	Upserts, FileStreamPosts, CompletePosts int
	stop                                    bool
}

// Server is a fake W&B server. Its methods are safe for concurrent use.
type Server struct {
	URL string

	mu         sync.Mutex
	opts       Options
	rng        *rand.Rand
	down       bool
	seq        int
	requests   []Request
	runs       map[string]*Run
	forgotten  map[string]bool
	violations []string

	closed    chan struct{}
	closeOnce sync.Once

	ts   *httptest.Server
	hs   *http.Server
	pl   *pipeListener
	tr   *http.Transport
	wait chan struct{}
}

func newServer(opts Options) *Server {
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	if opts.Entity == "" {
		opts.Entity = "local"
	}
	if opts.Faults.RetryAfter == 0 {
		opts.Faults.RetryAfter = time.Second
	}
	return &Server{closed: make(chan struct{}), opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, 0x5eed)), runs: map[string]*Run{}, forgotten: map[string]bool{}}
}

// NewServer starts a server on loopback TCP.
func NewServer(opts Options) *Server {
	s := newServer(opts)
	s.ts = httptest.NewServer(s)
	s.URL = s.ts.URL
	return s
}

// NewPipeServer starts a server on an in-memory network; only its Client reaches it. While it is down,
// dials are refused.
func NewPipeServer(opts Options) *Server {
	s := newServer(opts)
	s.pl = newPipeListener(func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.down
	})
	s.hs = &http.Server{Handler: s}
	s.wait = make(chan struct{})
	go func() {
		defer close(s.wait)
		s.hs.Serve(s.pl)
	}()
	s.tr = &http.Transport{DialContext: s.pl.dial}
	s.URL = "http://wandbtest.invalid"
	return s
}

// Client returns an HTTP client that reaches the server.
func (s *Server) Client() *http.Client {
	if s.tr != nil {
		return &http.Client{Transport: s.tr}
	}
	return s.ts.Client()
}

// Close stops the server and closes its connections.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	if s.ts != nil {
		s.ts.CloseClientConnections()
		s.ts.Close()
		return
	}
	s.hs.Close()
	s.tr.CloseIdleConnections()
	<-s.wait
}

// SetDown starts (true) or ends an outage: every connection is refused or dropped.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
	if down && s.ts != nil {
		s.ts.CloseClientConnections()
	}
}

// SetFaults changes the injected faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.RetryAfter == 0 {
		f.RetryAfter = time.Second
	}
	s.opts.Faults = f
}

// SetMaxBodyBytes changes Options.MaxBodyBytes: later file_stream requests with a longer body are answered 413.
func (s *Server) SetMaxBodyBytes(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.MaxBodyBytes = n
}

// StopRun makes every later file_stream answer for the run say {"stopped": true}.
func (s *Server) StopRun(entity, project, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.run(entity, project, id).stop = true
}

// ForgetRun drops a run, as a server that lost its data would: later requests for it answer 404 until a
// client creates it again.
func (s *Server) ForgetRun(entity, project, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.runs, entity+"/"+project+"/"+id)
	s.forgotten[entity+"/"+project+"/"+id] = true
}

// GetRun returns a copy of a run the server holds.
func (s *Server) GetRun(entity, project, id string) (Run, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[entity+"/"+project+"/"+id]
	if !ok {
		return Run{}, false
	}
	return r.copy(), true
}

// Runs returns copies of all runs, ordered by entity/project/id.
func (s *Server) Runs() []Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.runs))
	for k := range s.runs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Run, len(keys))
	for i, k := range keys {
		out[i] = s.runs[k].copy()
	}
	return out
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Violations returns the protocol violations seen so far, one sentence each.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

func (r *Run) copy() Run {
	c := *r
	c.Tags = append([]string(nil), r.Tags...)
	c.History = append([]string(nil), r.History...)
	c.Events = append([]string(nil), r.Events...)
	c.Output = append([]string(nil), r.Output...)
	c.Uploaded = append([]string(nil), r.Uploaded...)
	c.Files = make(map[string][]byte, len(r.Files))
	for k, v := range r.Files {
		c.Files[k] = append([]byte(nil), v...)
	}
	return c
}

// run returns the run, creating it; s.mu is held.
func (s *Server) run(entity, project, id string) *Run {
	k := entity + "/" + project + "/" + id
	r, ok := s.runs[k]
	if !ok {
		r = &Run{Entity: entity, Project: project, ID: id, Files: map[string][]byte{}}
		s.runs[k] = r
	}
	return r
}

func (s *Server) violate(format string, args ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

// ServeHTTP answers one request; faults are drawn first.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.seq++
	rec := Request{Seq: s.seq, Time: time.Now(), Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()}
	f, down, maxBody := s.opts.Faults, s.down, s.opts.MaxBodyBytes
	x := s.rng.Float64()
	code := []int{500, 502, 503}[s.rng.IntN(3)]
	fault := ""
	switch {
	case down:
		fault = "down"
	case x < f.Drop/2:
		fault = "drop-before"
	case x < f.Drop:
		fault = "drop-after"
	case x < f.Drop+f.Fail:
		fault = "fail"
	case x < f.Drop+f.Fail+f.RateLimit:
		fault = "rate-limit"
	case x < f.Drop+f.Fail+f.RateLimit+f.Slow:
		fault = "slow"
	}
	rec.Fault = fault
	s.requests = append(s.requests, rec)
	idx := len(s.requests) - 1
	s.mu.Unlock()

	defer func() {
		s.mu.Lock()
		s.requests[idx] = rec
		s.mu.Unlock()
	}()
	switch fault {
	case "down":
		hijackClose(w, "")
		return
	case "drop-before":
		if r.ContentLength > 1 {
			rec.Body, _ = io.ReadAll(io.LimitReader(r.Body, r.ContentLength/2))
		}
		hijackClose(w, "")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	rec.Body = body
	if err != nil {
		rec.Status = http.StatusBadRequest
		http.Error(w, "read body: "+err.Error(), rec.Status)
		return
	}
	if maxBody > 0 && len(body) > maxBody && strings.HasSuffix(r.URL.Path, "/file_stream") {
		rec.Status, rec.Fault = http.StatusRequestEntityTooLarge, "too-large"
		http.Error(w, fmt.Sprintf("wandbtest: request body of %d bytes, limit %d", len(body), maxBody), rec.Status)
		return
	}
	switch fault {
	case "fail":
		rec.Status = code
		http.Error(w, "wandbtest: injected failure", code)
		return
	case "rate-limit":
		rec.Status = http.StatusTooManyRequests
		w.Header().Set("Retry-After", fmt.Sprint(int(f.RetryAfter.Seconds()+0.999)))
		http.Error(w, "wandbtest: injected rate limit", rec.Status)
		return
	case "slow": // the answer comes late, and the request takes effect even if the client gave up
		t := time.NewTimer(f.SlowDelay)
		select {
		case <-t.C:
		case <-s.closed:
			t.Stop()
			return
		}
	}
	status, ans := s.handle(r, body, &rec)
	rec.Status, rec.Response = status, ans
	if fault == "drop-after" {
		rec.Status = 0
		hijackClose(w, fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			status, http.StatusText(status), len(ans)+100, ans[:len(ans)/2]))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(ans)
}

// handle routes a request with its body read; it returns the status and the JSON answer.
func (s *Server) handle(r *http.Request, body []byte, rec *Request) (int, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := r.URL.Path
	switch {
	case r.Method == http.MethodPost && path == "/graphql":
		if st, ans, ok := s.checkAuth(r); !ok {
			return st, ans
		}
		return s.graphql(r, body, rec)
	case r.Method == http.MethodPost && strings.HasPrefix(path, "/files/") && strings.HasSuffix(path, "/file_stream"):
		if st, ans, ok := s.checkAuth(r); !ok {
			return st, ans
		}
		parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(path, "/files/"), "/file_stream"), "/")
		if len(parts) != 3 {
			return http.StatusNotFound, jsonMsg("no such path")
		}
		return s.fileStream(parts[0], parts[1], parts[2], r, body)
	case r.Method == http.MethodPut && strings.HasPrefix(path, "/storage/"):
		return s.upload(r, body)
	}
	s.violate("%s %s: unknown endpoint", r.Method, path)
	return http.StatusNotFound, jsonMsg("no such endpoint")
}

func jsonMsg(msg string) []byte {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return b
}

// checkAuth wants Basic base64("api:" + key); s.mu is held.
func (s *Server) checkAuth(r *http.Request) (int, []byte, bool) {
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("api:"+s.opts.APIKey))
	got := r.Header.Get("Authorization")
	if got == want {
		return 0, nil, true
	}
	if user, _, ok := r.BasicAuth(); !ok || user != "api" {
		s.violate("%s %s: Authorization %q is not Basic base64(api:<key>)", r.Method, r.URL.Path, got)
	}
	return http.StatusUnauthorized, jsonMsg("invalid API key"), false
}
