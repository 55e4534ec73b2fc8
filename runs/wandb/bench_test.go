package wandb_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/mami-lab/mami/runs/wandb"
	"github.com/mami-lab/mami/runs/wandb/wandbtest"
)

// BenchmarkSinkLog measures what the trainer pays per logged row: the local recorder's append plus the
// stream's Log, with tracking disabled, with the server down for the whole run, and with a live server.
// The online cases should cost the same as disabled: Log only wakes the sender.
func BenchmarkSinkLog(b *testing.B) {
	down := func() string { // a port nothing listens on: every connection is refused
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr
	}
	for _, tc := range []struct {
		name string
		mode string
		url  func(*wandbtest.Server) string
	}{
		{"disabled", wandb.ModeDisabled, func(*wandbtest.Server) string { return "http://unused.invalid" }},
		{"server-down", wandb.ModeOnline, func(*wandbtest.Server) string { return down() }},
		{"server-up", wandb.ModeOnline, func(s *wandbtest.Server) string { return s.URL }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := wandbtest.NewServer(wandbtest.Options{})
			defer srv.Close()
			r := newFakeRun(b, "bench")
			s := settings(srv, r.id)
			s.Mode, s.BaseURL = tc.mode, tc.url(srv)
			opts := wandb.Options{HTTPClient: srv.Client(), StartTimeout: time.Second, FlushTimeout: 200 * time.Millisecond,
				SystemMetrics: -1, Interval: 100 * time.Millisecond}
			st, err := wandb.Start(context.Background(), r.dir, s, opts)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			step := 0
			b.Run("append+Log", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					step++
					r.row(step)
					if err := st.Log(ctx, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("Log", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := st.Log(ctx, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
			st.Finish(ctx, 0) // the down server leaves the run for sync: an IncompleteError, expected
		})
	}
}
