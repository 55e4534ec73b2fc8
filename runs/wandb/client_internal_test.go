package wandb

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func TestBackoffIsCappedWithJitter(t *testing.T) {
	p := RetryPolicy{MinBackoff: 2 * time.Second, MaxBackoff: 60 * time.Second}.withDefaults()
	for n, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, 60 * time.Second, 60 * time.Second} {
		lo, hi := want, time.Duration(0)
		for range 200 {
			d := p.backoff(n)
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < want/2 || hi > want || hi-lo < want/4 {
			t.Errorf("backoff(%d) in [%v, %v], want spread over [%v, %v]", n, lo, hi, want/2, want)
		}
	}
	if d := p.backoff(1000); d > p.MaxBackoff {
		t.Errorf("backoff(1000) = %v, want at most %v", d, p.MaxBackoff)
	}
}

func TestRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
		for in, want := range map[string]time.Duration{"": 0, "120": 120 * time.Second, "1.5": 1500 * time.Millisecond,
			"-3": 0, "soon": 0, date: 90 * time.Second} {
			if got := retryAfter(in); got != want {
				t.Errorf("retryAfter(%q) = %v, want %v", in, got, want)
			}
		}
	})
}

func TestRateLimitHeadersCloseTheGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClient(nil, Settings{}, RetryPolicy{}, nil)
		c.noteRateLimit(http.Header{"Ratelimit-Remaining": {"3"}, "Ratelimit-Reset": {"30"}})
		if !c.notUntil.IsZero() {
			t.Fatalf("gate closed with quota left")
		}
		c.noteRateLimit(http.Header{"Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"30"}})
		t0 := time.Now()
		if err := c.waitGate(t.Context()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d != 30*time.Second {
			t.Errorf("waited %v for RateLimit-Reset: 30, want 30s", d)
		}
	})
}

func TestServerDownClassifiesErrors(t *testing.T) {
	addr := refusingAddr(t)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer ts.Close()
	c := newClient(nil, Settings{}, RetryPolicy{MaxAttempts: 1}, slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		url  string
		down bool
	}{
		{"http://" + addr + "/graphql", true},
		{ts.URL + "/graphql", false},
	} {
		_, err := c.do(t.Context(), request{method: http.MethodPost, url: tc.url})
		if err == nil || serverDown(err) != tc.down {
			t.Errorf("POST %s: %v: serverDown %v, want %v", tc.url, err, serverDown(err), tc.down)
		}
	}
	for _, err := range []error{
		&net.DNSError{Err: "no such host", Name: "wandb.invalid", IsNotFound: true},
	} {
		if !serverDown(fmt.Errorf("post: %w", err)) {
			t.Errorf("serverDown(%v) = false, want true", err)
		}
	}
	if serverDown(&net.DNSError{Err: "server misbehaving", Name: "x", IsTemporary: true}) {
		t.Error("a failing resolver is not a missing server")
	}
}

// refusingAddr returns a loopback address where a connection is refused right now: a port that was free,
// checked with a plain dial, since another process may take a freed port at any moment.
func refusingAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		c, err := net.Dial("tcp", addr)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return addr
		}
		if c != nil {
			c.Close()
		}
	}
	t.Fatal("no loopback port refused connections in 20 tries")
	return ""
}
