//go:build demo

// This file is a manual aid, not a check: built only with -tags demo, it serves the demo study for a look at
// the dashboard (MAMI_HOLD=600 go test -tags demo -run HoldDemo ./runs/server/e2e/).

package e2e_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/mami-lab/mami/runs/server"
	"github.com/mami-lab/mami/runs/server/servertest"
)

// TestHoldDemo serves the demo study for MAMI_HOLD seconds (a manual aid for looking at the dashboard).
func TestHoldDemo(t *testing.T) {
	secs := 600
	fmt.Sscan(os.Getenv("MAMI_HOLD"), &secs)
	srv := servertest.Start(t, server.Config{})
	for _, r := range servertest.DemoRuns("study", 1) {
		if err := srv.LogRun(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	runs := servertest.DemoRuns("study", 1)
	live := runs[0]
	live.ID, live.Name, live.Finish, live.Rows = "live1", "concat-lr0.001-live", false, live.Rows[:250]
	live.Files = map[string][]byte{"plots/loss.svg": []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="320" height="160" viewBox="0 0 320 160">` +
		`<rect width="320" height="160" fill="#fff"/><polyline fill="none" stroke="#2f6fed" stroke-width="2" points="10,20 60,70 110,100 160,118 210,128 260,133 310,135"/>` +
		`<text x="12" y="150" font-family="sans-serif" font-size="11">train/loss</text></svg>`), "config.yaml": []byte("train:\n  lr: 0.001\n")}
	if err := srv.LogRun(context.Background(), live); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(os.Getenv("MAMI_HOLD_URL_FILE"), []byte(srv.URL), 0o644)
	time.Sleep(time.Duration(secs) * time.Second)
}
