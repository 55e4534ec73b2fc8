package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/mami-lab/mami/runs/server"
	"github.com/mami-lab/mami/runs/server/servertest"
)

// needNode skips the test when node or the npm packages it needs are missing.
func needNode(t *testing.T, pkgs ...string) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed: install Node.js 20 to run this test")
	}
	for _, p := range pkgs {
		if _, err := os.Stat(filepath.Join("node_modules", p, "package.json")); err != nil {
			t.Skipf("node_modules/%s missing: run `npm ci` in runs/server/e2e to run this test", p)
		}
	}
}

// TestJSSDK runs the official W&B JS SDK against a live server: wandb.init, 10 x log, finish.
func TestJSSDK(t *testing.T) {
	needNode(t, "@wandb/sdk")
	srv := servertest.Start(t, server.Config{Entity: "lab"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "sdk.mjs")
	cmd.Env = append(os.Environ(), "WANDB_BASE_URL="+srv.URL, "WANDB_API_KEY="+srv.Key,
		"MAMI_PROJECT=js-sdk", "HOME="+t.TempDir(), "WANDB_MODE=online")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node sdk.mjs: %v\n%s", err, out)
	}
	var runs []server.RunJSON
	srv.GetJSON(t, "/api/v1/runs?project=js-sdk", &runs)
	if len(runs) != 1 {
		t.Fatalf("got %d runs, want 1 (sdk output:\n%s)", len(runs), out)
	}
	run := runs[0]
	if run.State != "finished" || run.Entity != "lab" {
		t.Errorf("got state %s entity %s, want finished lab", run.State, run.Entity)
	}
	wantCfg := map[string]any{"lr": 0.001, "fusion": "concat", "model": map[string]any{"hidden": 512.0}}
	if !reflect.DeepEqual(run.Config, wantCfg) {
		t.Errorf("got config %v, want %v", run.Config, wantCfg)
	}
	if run.Summary["loss"] != 0.1 || run.Summary["acc"] != 0.9 {
		t.Errorf("got summary %v, want loss 0.1 acc 0.9", run.Summary)
	}
	var rows []map[string]any
	srv.GetJSON(t, "/api/v1/runs/lab/js-sdk/"+run.ID+"/history", &rows)
	if len(rows) != 10 {
		t.Fatalf("got %d history rows, want 10", len(rows))
	}
	for i, r := range rows {
		if r["_step"] != float64(i) || r["loss"] != 1/float64(i+1) {
			t.Errorf("row %d: %v, want _step %d loss %g", i, r, i, 1/float64(i+1))
		}
	}
}
