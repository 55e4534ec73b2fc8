package e2e_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/mami-lab/mami/runs/server"
	"github.com/mami-lab/mami/runs/server/servertest"
)

func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed: apt-get install -y chromium (or set CHROMIUM)")
	return ""
}

// TestDashboardInChromium logs a small study plus a run whose name holds a <script> tag, then drives the
// dashboard in headless Chromium: the table lists the runs, the name shows as text, and selecting two runs
// draws two curves. MAMI_SHOTS=dir also saves screenshots there.
func TestDashboardInChromium(t *testing.T) {
	needNode(t, "playwright-core")
	chromium := chromiumPath(t)
	srv := servertest.Start(t, server.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	runs := servertest.DemoRuns("study", 1)
	if os.Getenv("MAMI_SHOTS") == "" {
		runs = runs[:6] // enough for the checks; the screenshots want the whole study
	}
	xss := servertest.RunSpec{Project: "study", ID: "xss1", Name: `<script>alert("x")</script>`, Config: map[string]any{"train": map[string]any{"lr": 0.01}},
		Rows: runs[0].Rows[:120], Summary: map[string]any{"train/loss": 0.5}}
	runs = append(runs, xss)
	var names []string
	for _, r := range runs {
		if err := srv.LogRun(ctx, r); err != nil {
			t.Fatalf("log run %s: %v", r.ID, err)
		}
		names = append(names, r.Name)
	}
	expect, _ := json.Marshal(map[string]any{"names": names, "pick": []string{runs[0].ID, runs[3].ID}, "xss": "xss1", "panel": "train/loss"})
	cmd := exec.CommandContext(ctx, "node", "browser.mjs")
	cmd.Env = append(os.Environ(), "MAMI_URL="+srv.URL, "MAMI_ENTITY=local", "MAMI_PROJECT=study", "EXPECT="+string(expect),
		"CHROMIUM="+chromium, "SHOTS="+os.Getenv("MAMI_SHOTS"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node browser.mjs: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
