package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/runs/server"
	"github.com/mami-lab/mami/runs/server/servertest"
	"github.com/mami-lab/mami/runs/wandb"
)

func TestAgentTrialConfig(t *testing.T) {
	tr := &agentTrial{base: configs.Default(), sweepID: "sw1", settings: wandb.Settings{BaseURL: "http://h:1", APIKey: "k"}}
	cfg, err := tr.config(wandb.AgentCommand{Type: "run", RunID: "sw1-t3", Args: map[string]any{"train.lr": 0.003, "model.fusion": "late", "train.epochs": 2.0}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Train.LR != 0.003 || cfg.Model.Fusion != "late" || cfg.Train.Epochs != 2 {
		t.Errorf("params not applied: lr %g fusion %s epochs %d", cfg.Train.LR, cfg.Model.Fusion, cfg.Train.Epochs)
	}
	if cfg.Run.ID != "sw1-t3" || cfg.Run.SweepID != "sw1" || cfg.Tracking.Mode != "online" || cfg.Tracking.BaseURL != "http://h:1" {
		t.Errorf("run %s sweep %s tracking %s %s, want sw1-t3 sw1 online http://h:1", cfg.Run.ID, cfg.Run.SweepID, cfg.Tracking.Mode, cfg.Tracking.BaseURL)
	}
	if tr.base.Train.LR == 0.003 {
		t.Error("the base config was changed")
	}
	for _, args := range []map[string]any{{"train.lrr": 0.1}, {"train.lr": "fast"}} {
		if _, err := tr.config(wandb.AgentCommand{RunID: "x", Args: args}); err == nil || !strings.Contains(err.Error(), "train.lr") {
			t.Errorf("args %v: error %v, want one naming the key", args, err)
		}
	}
}

func TestAgentCreateSweep(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	hosted, err := srv.EnableSweeps(context.Background(), server.SweepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("WANDB_BASE_URL", srv.URL)
	t.Setenv("WANDB_API_KEY", srv.Key)
	file := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(file, []byte("method: grid\nmetric: {name: val/f1_macro, goal: maximize}\nparameters:\n  train.lr: {values: [0.001, 0.003]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := mami(t, "agent", "--create", file)
	if err != nil {
		t.Fatalf("agent --create: %v\n%s", err, out)
	}
	id := strings.TrimSpace(strings.Split(out, "\n")[0])
	st, ok := hosted.State(id)
	if !ok || st.Total != 2 {
		t.Fatalf("sweep %q on the server: %v %+v, want 2 trials", id, ok, st)
	}
	if err := os.WriteFile(file, []byte("method: grid\nparameters:\n  train.lrr: {values: [1]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := mami(t, "agent", "--create", file); err == nil || !strings.Contains(err.Error(), "train.lrr") {
		t.Errorf("bad sweep file: error %v, want one naming train.lrr", err)
	}
	if _, err := mami(t, "agent", "nosuchsweep", "--interval", "10ms"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown sweep: error %v, want not found", err)
	}
}
