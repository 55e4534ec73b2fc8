package wandb

import (
	"net/http"
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
