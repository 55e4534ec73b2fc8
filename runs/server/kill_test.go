package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/mami-lab/mami/runs/server"
	"github.com/mami-lab/mami/runs/server/servertest"
)

// TestMain lets the test binary double as a server process (MAMI_TEST_SERVER_DIR set), so that a test can
// kill -9 a real server and restart it.
func TestMain(m *testing.M) {
	if dir := os.Getenv("MAMI_TEST_SERVER_DIR"); dir != "" {
		os.Exit(serveChild(dir, os.Getenv("MAMI_TEST_SERVER_ADDR")))
	}
	os.Exit(m.Run())
}

func serveChild(dir, addr string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	srv, err := server.New(server.Config{DataDir: dir, Addr: addr, APIKeys: []string{servertest.Key}})
	if err == nil {
		err = srv.Open(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	err = srv.Serve(ctx, ln)
	_ = srv.Close(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startChild(t *testing.T, dir, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MAMI_TEST_SERVER_DIR="+dir, "MAMI_TEST_SERVER_ADDR="+addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return cmd
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	t.Fatal("server child did not come up")
	return nil
}

// TestKill9AndRestart streams a run the way the W&B clients do (each request retried until answered),
// kills the server with SIGKILL in the middle, restarts it on the same data, and checks that the run then
// holds every row exactly once.
func TestKill9AndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	child := startChild(t, dir, addr)
	defer func() { child.Process.Kill(); child.Wait() }()

	client := &http.Client{Timeout: 2 * time.Second}
	send := func(path string, body any) {
		b, _ := json.Marshal(body)
		for try := 0; ; try++ {
			req, _ := http.NewRequest("POST", "http://"+addr+path, bytes.NewReader(b))
			req.Header.Set("Authorization", servertest.BasicAuth(servertest.Key))
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return
				}
				t.Fatalf("POST %s: status %d", path, resp.StatusCode)
			}
			if try > 400 {
				t.Fatalf("POST %s: %v", path, err)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	send("/graphql", map[string]any{"query": upsert, "variables": map[string]any{"name": "k9", "project": "p"}})
	const rows, killAt = 300, 120
	killed := false
	for i := 0; i < rows; i++ {
		if i == killAt && !killed {
			killed = true
			// Resend the last few rows after the restart too, as a client does with unanswered requests.
			if err := child.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			child.Wait()
			child = startChild(t, dir, addr)
			i -= 5
		}
		send("/files/local/p/k9/file_stream", map[string]any{"files": map[string]any{"wandb-history.jsonl": map[string]any{
			"offset": i, "content": []string{fmt.Sprintf(`{"_step":%d,"loss":%g}`, i, 1/float64(i+1))}}}})
	}
	send("/files/local/p/k9/file_stream", map[string]any{"complete": true, "exitcode": 0})

	var hist []map[string]any
	resp, err := http.Get("http://" + addr + "/api/v1/runs/local/p/k9/history")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&hist); err != nil {
		t.Fatal(err)
	}
	if len(hist) != rows {
		t.Fatalf("got %d rows, want %d", len(hist), rows)
	}
	for i, r := range hist {
		if r["_step"] != float64(i) {
			t.Fatalf("row %d has _step %v", i, r["_step"])
		}
	}
	var run server.RunJSON
	resp2, err := http.Get("http://" + addr + "/api/v1/runs/local/p/k9")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	json.NewDecoder(resp2.Body).Decode(&run)
	if run.State != "finished" || run.HistoryLines != rows {
		t.Errorf("got state %s, %d lines; want finished, %d", run.State, run.HistoryLines, rows)
	}
}
