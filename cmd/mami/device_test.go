package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/models/cuda"
)

// gpuUsable reports whether this binary can train on a GPU here (the mamicuda build on a GPU machine).
func gpuUsable() bool {
	_, err := cuda.Probe()
	return err == nil
}

// TestSelectDevice checks device selection in this build on this machine: cpu trains on the CPU backend;
// auto picks the GPU backend only when one is usable, else the CPU; cuda without one is an error.
func TestSelectDevice(t *testing.T) {
	gpu := gpuUsable()
	autoDevice := map[bool]string{false: "cpu", true: "cuda"}[gpu]
	tests := []struct {
		device      string
		wantDevice  string
		wantBackend bool
		wantErr     string
	}{
		{"", "cpu", false, ""},
		{"cpu", "cpu", false, ""},
		{"auto", autoDevice, gpu, ""},
		{"cuda", "cuda", gpu, map[bool]string{false: "device cuda", true: ""}[gpu]},
	}
	for _, tt := range tests {
		t.Run("device="+tt.device, func(t *testing.T) {
			cfg := configs.Default()
			cfg.Device = tt.device
			newBackend, err := selectDevice(cfg, slog.New(slog.DiscardHandler))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("selectDevice = %v, want an error mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Device != tt.wantDevice || (newBackend != nil) != tt.wantBackend {
				t.Errorf("device %q, backend constructor %v; want %q, %v", cfg.Device, newBackend != nil, tt.wantDevice, tt.wantBackend)
			}
		})
	}
}

// TestTrainDevice trains with device auto (the GPU when usable, else the CPU) and checks that the run's
// config and summary name the device it trained on; device cuda without a GPU fails before a run exists.
func TestTrainDevice(t *testing.T) {
	dataDir, feats := mamiFixture(t, 80, nil)
	work := t.TempDir()
	want := map[bool]string{false: "cpu", true: "cuda"}[gpuUsable()]
	out, err := mami(t, "train", "--set", "workdir="+work, "--set", "run.id=dev", "--set", "device=auto",
		"--set", "data.dataset=mami", "--set", "data.path="+dataDir, "--set", "data.features="+feats,
		"--set", "train.epochs=2", "--set", "model.head=softmax_ce", "--set", "train.batch_size=8")
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	dir := filepath.Join(work, "runs", "dev")
	if got := readSummary(t, dir)["device"]; got != want {
		t.Errorf("summary device = %v, want %s", got, want)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "device: "+want+"\n") {
		t.Errorf("config.yaml does not record device: %s:\n%s", want, cfg)
	}
	if _, ok := readSummary(t, dir)["test/f1_macro"].(float64); !ok {
		t.Errorf("summary has no test/f1_macro: the test split was not scored")
	}

	if gpuUsable() {
		return
	}
	cwork := t.TempDir()
	_, err = mami(t, "train", "--set", "workdir="+cwork, "--set", "run.id=dev", "--set", "device=cuda",
		"--set", "data.dataset=mami", "--set", "data.path="+dataDir, "--set", "data.features="+feats)
	if err == nil || !strings.Contains(err.Error(), "device cuda") {
		t.Errorf("train with device cuda and no GPU = %v, want an error naming device cuda", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(cwork, "runs")); len(entries) > 0 {
		t.Errorf("device cuda without a GPU left a run directory behind")
	}
}
