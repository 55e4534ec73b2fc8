package main

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/runs/wandb/wandbtest"
)

// TestTrackingMode: tracking.mode auto streams when a server is named (in the config or WANDB_BASE_URL)
// and records locally otherwise; an explicit offline stays offline even with WANDB_BASE_URL set; WANDB_MODE
// overrides the config; the config is left saying what the run really does.
func TestTrackingMode(t *testing.T) {
	srv := wandbtest.NewServer(wandbtest.Options{})
	defer srv.Close()
	for _, tc := range []struct {
		name       string
		mode       string
		configURL  bool              // tracking.base_url (and tracking.api_key) set to the server
		env        map[string]string // besides a clean WANDB_* environment
		wantStream bool
		wantMode   string
	}{
		{"auto, no server named", "auto", false, nil, false, "offline"},
		{"auto, WANDB_MODE=offline beats WANDB_BASE_URL", "auto", false, map[string]string{"WANDB_MODE": "offline", "WANDB_BASE_URL": "https://api.wandb.ai"}, false, "offline"},
		{"auto, WANDB_BASE_URL", "auto", false, map[string]string{"WANDB_BASE_URL": srv.URL, "WANDB_API_KEY": wandbtest.DefaultAPIKey}, true, "online"},
		{"auto, tracking.base_url", "auto", true, nil, true, "online"},
		{"offline, WANDB_BASE_URL", "offline", false, map[string]string{"WANDB_BASE_URL": srv.URL, "WANDB_API_KEY": wandbtest.DefaultAPIKey}, false, "offline"},
		{"offline, tracking.base_url", "offline", true, nil, false, "offline"},
		{"disabled, WANDB_BASE_URL", "disabled", false, map[string]string{"WANDB_BASE_URL": srv.URL, "WANDB_API_KEY": wandbtest.DefaultAPIKey}, false, "disabled"},
		{"online, WANDB_MODE=offline", "online", true, map[string]string{"WANDB_MODE": "offline"}, false, "offline"},
		{"offline, WANDB_MODE=online", "offline", true, map[string]string{"WANDB_MODE": "online"}, true, "online"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"WANDB_BASE_URL", "WANDB_API_KEY", "WANDB_MODE", "WANDB_RUN_ID", "WANDB_PROJECT", "WANDB_ENTITY"} {
				t.Setenv(k, "")
			}
			t.Setenv("HOME", t.TempDir()) // no ~/.netrc
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg := configs.Default()
			cfg.Tracking.Mode = tc.mode
			if tc.configURL {
				cfg.Tracking.BaseURL, cfg.Tracking.APIKey = srv.URL, wandbtest.DefaultAPIKey
			}
			s, _, err := trackingSettings(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if (s != nil) != tc.wantStream {
				t.Errorf("streamed: %v, want %v", s != nil, tc.wantStream)
			}
			if s != nil && s.BaseURL != srv.URL {
				t.Errorf("streams to %q, want %q", s.BaseURL, srv.URL)
			}
			if cfg.Tracking.Mode != tc.wantMode {
				t.Errorf("config records tracking.mode %q, want %q", cfg.Tracking.Mode, tc.wantMode)
			}
		})
	}
}
