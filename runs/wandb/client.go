package wandb

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// RetryPolicy is how requests to the server are retried. The zero value means the defaults below.
//
// A request is retried after a network error, a timeout, an unreadable answer, 408, 429 and every 5xx except
// 501. It is not retried after 400, 401, 403, 404, 409, 410, 413, 422, 501 or any other 4xx. The wait before
// retry n (from 0) is min(MaxBackoff, MinBackoff·2ⁿ) scaled by a random factor in [0.5, 1], or what a
// Retry-After header asks when that is longer (capped at MaxRetryAfter). When an answer says
// RateLimit-Remaining: 0, the next request waits RateLimit-Reset seconds.
type RetryPolicy struct {
	MaxAttempts    int           // 0: until the context ends
	MinBackoff     time.Duration // default 2 s
	MaxBackoff     time.Duration // default 60 s
	AttemptTimeout time.Duration // default 60 s, for one attempt including reading the answer
	MaxRetryAfter  time.Duration // default 10 min
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MinBackoff <= 0 {
		p.MinBackoff = 2 * time.Second
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 60 * time.Second
	}
	if p.MaxBackoff < p.MinBackoff {
		p.MaxBackoff = p.MinBackoff
	}
	if p.AttemptTimeout <= 0 {
		p.AttemptTimeout = 60 * time.Second
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 10 * time.Minute
	}
	return p
}

// backoff is the wait before retry n (0-based), with jitter.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.MaxBackoff
	if n < 30 {
		if e := p.MinBackoff << n; e > 0 && e < d {
			d = e
		}
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// HTTPError is a non-2xx answer; Body holds at most the first 4 KiB.
type HTTPError struct {
	Method, URL string
	Status      int
	Body        string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.URL, e.Status, http.StatusText(e.Status), e.Body)
}

// Retryable reports whether the policy retries this status.
func (e *HTTPError) Retryable() bool { return retryableStatus(e.Status) }

func retryableStatus(code int) bool {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return true
	case code == http.StatusNotImplemented:
		return false
	case code >= 500:
		return true
	}
	return false
}

// ErrUnauthorized is returned when the server rejects the API key (401).
var ErrUnauthorized = errors.New("wandb: the server rejected the API key (401)")

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err is one that retrying will not fix (a refused key, a 4xx, a GraphQL error).
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// serverDown reports whether err says that no server is there at all: the connection was refused, the host
// name does not resolve, or there is no route to it. A server that answers, however badly, is not down.
func serverDown(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsNotFound
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}

// client sends requests to one W&B server with the retry policy.
type client struct {
	http     *http.Client
	base     string
	auth     string
	policy   RetryPolicy
	log      *slog.Logger
	agent    string
	mu       sync.Mutex
	notUntil time.Time // rate-limit gate: no request before this time
	reqs     int       // attempts made, for reports
	// observe, when set, is told the outcome of every attempt (nil for a 2xx answer), on the calling goroutine.
	observe func(err error)
}

func newClient(hc *http.Client, s Settings, p RetryPolicy, log *slog.Logger) *client {
	if hc == nil {
		hc = &http.Client{}
	}
	return &client{
		http: hc, base: s.BaseURL, policy: p.withDefaults(), log: log, agent: "mami-wandb/1",
		auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("api:"+s.APIKey)),
	}
}

// request is one HTTP request the client can replay on retry.
type request struct {
	method, url string
	body        func() (io.ReadCloser, int64, error) // a fresh body for each attempt; nil for none
	header      http.Header
	auth        bool // add the Basic Authorization header (not for upload URLs)
	limit       int64
}

// do sends r until it succeeds, fails permanently, runs out of attempts or ctx ends; it returns the body of
// the 2xx answer (at most r.limit bytes) and its headers.
func (c *client) do(ctx context.Context, r request) ([]byte, error) {
	if r.limit == 0 {
		r.limit = 16 << 20
	}
	var last error
	for attempt := 0; ; attempt++ {
		if err := c.waitGate(ctx); err != nil {
			return nil, errors.Join(err, last)
		}
		body, wait, err := c.attempt(ctx, r)
		if c.observe != nil {
			c.observe(err)
		}
		if err == nil {
			return body, nil
		}
		last = err
		if IsPermanent(err) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		}
		if c.policy.MaxAttempts > 0 && attempt+1 >= c.policy.MaxAttempts {
			return nil, fmt.Errorf("gave up after %d attempts: %w", attempt+1, err)
		}
		d := c.policy.backoff(attempt)
		if wait > d {
			d = min(wait, c.policy.MaxRetryAfter)
		}
		c.log.Debug("wandb: retrying", "method", r.method, "url", r.url, "attempt", attempt+1, "wait", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

func (c *client) waitGate(ctx context.Context) error {
	c.mu.Lock()
	until := c.notUntil
	c.reqs++
	c.mu.Unlock()
	d := time.Until(until)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// attempt makes one try; wait is what Retry-After asked for, if anything.
func (c *client) attempt(ctx context.Context, r request) (body []byte, wait time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.policy.AttemptTimeout)
	defer cancel()
	var rd io.ReadCloser = http.NoBody
	var n int64
	if r.body != nil {
		if rd, n, err = r.body(); err != nil {
			return nil, 0, &permanentError{fmt.Errorf("%s %s: body: %w", r.method, r.url, err)}
		}
		if n == 0 {
			rd.Close()
			rd = http.NoBody
		}
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, rd)
	if err != nil {
		rd.Close()
		return nil, 0, &permanentError{err}
	}
	req.ContentLength = n
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.agent)
	if r.auth {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w", r.method, r.url, err)
	}
	defer resp.Body.Close()
	c.noteRateLimit(resp.Header)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		he := &HTTPError{Method: r.method, URL: r.url, Status: resp.StatusCode, Body: string(bytes.TrimSpace(b))}
		if resp.StatusCode == http.StatusUnauthorized {
			return nil, 0, &permanentError{fmt.Errorf("%w: %w", ErrUnauthorized, he)}
		}
		if !he.Retryable() {
			return nil, 0, &permanentError{he}
		}
		return nil, retryAfter(resp.Header.Get("Retry-After")), he
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, r.limit+1))
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: read answer: %w", r.method, r.url, err)
	}
	if int64(len(body)) > r.limit {
		return nil, 0, &permanentError{fmt.Errorf("%s %s: answer larger than %d bytes", r.method, r.url, r.limit)}
	}
	return body, 0, nil
}

// noteRateLimit closes the gate for RateLimit-Reset seconds when RateLimit-Remaining is 0.
func (c *client) noteRateLimit(h http.Header) {
	rem, err1 := strconv.ParseFloat(h.Get("RateLimit-Remaining"), 64)
	reset, err2 := strconv.ParseFloat(h.Get("RateLimit-Reset"), 64)
	if err1 != nil || err2 != nil || rem > 0 || reset <= 0 {
		return
	}
	d := min(time.Duration(reset*float64(time.Second)), c.policy.MaxRetryAfter)
	c.mu.Lock()
	if t := time.Now().Add(d); t.After(c.notUntil) {
		c.notUntil = t
	}
	c.mu.Unlock()
}

// retryAfter parses a Retry-After value: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

func (c *client) attempts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reqs
}

func jsonBody(b []byte) func() (io.ReadCloser, int64, error) {
	return func() (io.ReadCloser, int64, error) {
		return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
	}
}
