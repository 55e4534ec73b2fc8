package store_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mami-lab/mami/runs/server/store"
)

// TestMain lets the test binary double as a writer process (MAMI_STORE_WRITER set to a database path),
// so that a test can kill -9 it in the middle of writing and packing.
func TestMain(m *testing.M) {
	if path := os.Getenv("MAMI_STORE_WRITER"); path != "" {
		os.Exit(writeUntilKilled(path))
	}
	os.Exit(m.Run())
}

const (
	killRuns  = 4
	killBlock = 8
)

func killRunKey(r int) store.RunKey {
	return store.RunKey{Entity: "e", Project: "kill", Name: fmt.Sprintf("r%d", r)}
}

// killRow is line i of every run.
func killRow(i int) string {
	return fmt.Sprintf(`{"_step":%d,"v":%v,"w":{"x":%d}}`, i, float64(i)/7, -i)
}

// writeUntilKilled streams rows to killRuns runs at once, each from the line after its last stored one,
// in requests of 1 to 23 rows, and prints "ack RUN LINES" once a request's write has committed.
func writeUntilKilled(path string) int {
	ctx := context.Background()
	s, err := store.OpenTuned(ctx, path, killBlock, false, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for r := range killRuns {
		wg.Go(func() {
			k := killRunKey(r)
			next := int64(0)
			if run, err := s.Run(ctx, k); err == nil {
				next = run.HistoryLines
			}
			for n := 1; next < 100000; n = n%23 + 1 {
				lines := make([]string, n)
				for i := range lines {
					lines[i] = killRow(int(next) + i)
				}
				if _, err := s.Stream(ctx, k, store.StreamUpdate{History: &store.Chunk{Offset: next, Lines: lines}}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				next += int64(n)
				mu.Lock()
				fmt.Printf("ack %d %d\n", r, next)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return 0
}

// TestKill9KeepsAcknowledgedMetrics kills a writing (and packing) process with SIGKILL three times, each
// time at a different moment, and checks after each restart that every acknowledged value is there exactly
// once, equal to its history row; then resends everything, finishes the runs and checks them complete.
func TestKill9KeepsAcknowledgedMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts writer processes")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	acked := make([]int64, killRuns)
	for round, after := range []int{60, 150, 300} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "MAMI_STORE_WRITER="+path)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		acks := 0
		read := func() bool {
			if !sc.Scan() {
				return false
			}
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "ack" {
				r, _ := strconv.Atoi(f[1])
				n, _ := strconv.ParseInt(f[2], 10, 64)
				acked[r] = max(acked[r], n)
				acks++
			}
			return true
		}
		for acks < after && read() {
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		for read() { // what it printed before it died was acknowledged too
		}
		cmd.Wait()
		if acks < after {
			t.Fatalf("round %d: the writer stopped after %d acknowledgements", round, acks)
		}
		s := openTuned(t, path, killBlock, false, 0)
		for r := range killRuns {
			checkKillRun(t, s, r, acked[r], fmt.Sprintf("round %d", round))
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Resend every row (a client that lost track), then finish: each run holds each line once.
	s := openTuned(t, path, killBlock, false, 0)
	defer s.Close(ctx)
	const total = 300
	for r := range killRuns {
		k := killRunKey(r)
		for off := 0; off < total; off += 50 {
			lines := make([]string, 50)
			for i := range lines {
				lines[i] = killRow(off + i)
			}
			if _, err := s.Stream(ctx, k, store.StreamUpdate{History: &store.Chunk{Offset: int64(off), Lines: lines}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Stream(ctx, k, store.StreamUpdate{Complete: true}); err != nil {
			t.Fatal(err)
		}
		checkKillRun(t, s, r, total, "finished")
	}
	if rows, _, err := s.Layout(ctx); err != nil || rows != 0 {
		t.Errorf("finished: %d metric rows unpacked (%v), want 0", rows, err)
	}
}

// checkKillRun checks that run r holds lines 0 .. N-1 for some N >= acked (its history lines), each once,
// with the values of its history rows.
func checkKillRun(t *testing.T, s *store.Store, r int, acked int64, when string) {
	t.Helper()
	ctx := context.Background()
	run, err := s.Run(ctx, killRunKey(r))
	if err != nil {
		t.Fatalf("%s: run %d: %v", when, r, err)
	}
	if run.HistoryLines < acked {
		t.Fatalf("%s: run %d has %d history lines, %d were acknowledged", when, r, run.HistoryLines, acked)
	}
	hist, err := s.HistoryRows(ctx, run.ID, 0, 0)
	if err != nil || int64(len(hist)) != run.HistoryLines {
		t.Fatalf("%s: run %d: %d history rows (%v), want %d", when, r, len(hist), err, run.HistoryLines)
	}
	for _, key := range []string{"v", "w.x"} {
		se, err := s.Metric(ctx, run.ID, key)
		if err != nil {
			t.Fatalf("%s: run %d %s: %v", when, r, key, err)
		}
		if int64(len(se.Lines)) != run.HistoryLines {
			t.Fatalf("%s: run %d %s: %d values, want %d", when, r, key, len(se.Lines), run.HistoryLines)
		}
		for i, l := range se.Lines {
			var row struct {
				V float64
				W struct{ X float64 }
			}
			json.Unmarshal(hist[i], &row)
			want := row.V
			if key == "w.x" {
				want = row.W.X
			}
			if l != int64(i) || se.Steps[i] != int64(i) || se.Values[i] != want {
				t.Fatalf("%s: run %d %s value %d: line %d step %d value %g, want line %d step %d value %g",
					when, r, key, i, l, se.Steps[i], se.Values[i], i, i, want)
			}
		}
	}
}
