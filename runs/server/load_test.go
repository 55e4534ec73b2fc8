package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mami-lab/mami/runs/server"
	"github.com/mami-lab/mami/runs/server/servertest"
)

// BenchmarkFileStreamLoad is the load test: 50 runs stream concurrently, each producing one history row
// every 10 ms; a run's client sends what it has (every row produced since its last answer) in one
// file_stream request as soon as the previous one is answered, like the W&B clients. It reports file_stream
// latency (p50, p99), committed rows per second and errors, and fails on any error or lost row.
//
// Each iteration runs for MAMI_LOAD_SECONDS (default 3); the acceptance run is
//
//	MAMI_LOAD_SECONDS=60 go test -run '^$' -bench FileStreamLoad -benchtime 1x ./runs/server/
func BenchmarkFileStreamLoad(b *testing.B) {
	const runs, every = 50, 10 * time.Millisecond
	dur := 3 * time.Second
	if s := os.Getenv("MAMI_LOAD_SECONDS"); s != "" {
		var n int
		fmt.Sscan(s, &n)
		dur = time.Duration(n) * time.Second
	}
	srv := servertest.Start(b, server.Config{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: runs * 2}, Timeout: 30 * time.Second}
	iter := 0
	for b.Loop() {
		iter++
		var mu sync.Mutex
		var lat []time.Duration
		var errs []string
		var rowsSent int64
		ctx, cancel := context.WithTimeout(context.Background(), dur)
		var wg sync.WaitGroup
		start := time.Now()
		for r := range runs {
			wg.Go(func() {
				name := fmt.Sprintf("load%d-%02d", iter, r)
				produced, sent := 0, 0
				tick := time.NewTicker(every)
				defer tick.Stop()
				flush := func(final bool) bool {
					produced = min(int(time.Since(start)/every), int(dur/every))
					if final {
						produced = int(dur / every)
					}
					if produced <= sent && !final {
						return true
					}
					lines := make([]string, 0, produced-sent)
					for i := sent; i < produced; i++ {
						lines = append(lines, fmt.Sprintf(`{"_step":%d,"_runtime":%g,"loss":%g,"acc":%g}`, i, float64(i)/100, 1/float64(i+1), float64(i%100)/100))
					}
					body := map[string]any{"files": map[string]any{"wandb-history.jsonl": map[string]any{"offset": sent, "content": lines},
						"wandb-summary.json": map[string]any{"offset": 0, "content": []string{fmt.Sprintf(`{"_step":%d}`, produced-1)}}}}
					if final {
						body["complete"], body["exitcode"] = true, 0
					}
					bb, _ := json.Marshal(body)
					req, _ := http.NewRequest("POST", srv.URL+"/files/local/load/"+name+"/file_stream", bytes.NewReader(bb))
					srv.Authorize(req)
					t0 := time.Now()
					resp, err := client.Do(req)
					d := time.Since(t0)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err.Error())
						return false
					}
					msg, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						errs = append(errs, fmt.Sprintf("status %d: %s", resp.StatusCode, msg))
						return false
					}
					lat = append(lat, d)
					rowsSent += int64(produced - sent)
					sent = produced
					return true
				}
				for {
					select {
					case <-ctx.Done():
						flush(true)
						return
					case <-tick.C:
						if !flush(false) {
							return
						}
					}
				}
			})
		}
		wg.Wait()
		cancel()
		elapsed := time.Since(start)
		busy := 0
		for _, e := range errs {
			if strings.Contains(e, "SQLITE_BUSY") || strings.Contains(e, "database is locked") {
				busy++
			}
		}
		if len(errs) > 0 {
			b.Fatalf("%d errors (%d SQLITE_BUSY), first: %s", len(errs), busy, errs[0])
		}
		want := int64(runs) * int64(dur/every)
		if rowsSent != want {
			b.Fatalf("sent %d rows, want %d", rowsSent, want)
		}
		var got []server.RunJSON
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/runs?project=load", nil)
		srv.Authorize(req)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		var stored int64
		for _, r := range got {
			if strings.HasPrefix(r.ID, fmt.Sprintf("load%d-", iter)) {
				stored += r.HistoryLines
				if r.State != "finished" {
					b.Fatalf("run %s: state %s", r.ID, r.State)
				}
			}
		}
		if stored != want {
			b.Fatalf("stored %d rows, want %d", stored, want)
		}
		slices.Sort(lat)
		p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(p(0.50), "p50_ms")
		b.ReportMetric(p(0.99), "p99_ms")
		b.ReportMetric(float64(rowsSent)/elapsed.Seconds(), "rows/s")
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
		b.ReportMetric(float64(busy), "busy")
	}
}
