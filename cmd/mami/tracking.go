package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/runs/wandb"
)

// trackingSettings resolves where a run is streamed: the run's config (tracking.*, run.*) under the W&B
// variables users already have (WANDB_BASE_URL, WANDB_API_KEY or ~/.netrc, WANDB_MODE, ...). It returns
// nil when the run is not streamed. tracking.mode auto (the default) streams when a server is named —
// WANDB_BASE_URL, or a tracking.base_url other than the default wandb.ai: naming a server is asking to use
// it — and records locally otherwise, so nothing goes to wandb.ai unless asked for (online or
// WANDB_MODE=online). offline stays offline even with a server named. WANDB_MODE overrides the config.
// WANDB_RUN_ID, when set, also names the local run. The config ends up recording the mode the run had.
func trackingSettings(ctx context.Context, cfg *configs.Config, log *slog.Logger) (*wandb.Settings, bool, error) {
	environ := os.Environ()
	if cfg.Tracking.Mode == "auto" {
		cfg.Tracking.Mode = "offline"
		named := strings.TrimRight(cfg.Tracking.BaseURL, "/") != strings.TrimRight(configs.Default().Tracking.BaseURL, "/")
		if named || os.Getenv("WANDB_BASE_URL") != "" {
			cfg.Tracking.Mode = "online"
		}
	}
	if cfg.Tracking.Mode != "online" && os.Getenv("WANDB_MODE") == "" {
		return nil, false, nil
	}
	b, err := cfg.Marshal()
	if err != nil {
		return nil, false, err
	}
	fromConfig, upload, err := wandb.ConfigSettings(b)
	if err != nil {
		return nil, false, err
	}
	fromConfig.APIKey = cfg.Tracking.APIKey // Marshal keeps keys out of run records
	s, err := wandb.SettingsFrom(environ, "", fromConfig)
	if err != nil {
		return nil, false, fmt.Errorf("tracking: %w", err)
	}
	if s.Mode != wandb.ModeOnline {
		cfg.Tracking.Mode = s.Mode // WANDB_MODE said offline or disabled: record that
		return nil, false, nil
	}
	cfg.Tracking.Mode = "online"
	cfg.Tracking.BaseURL = s.BaseURL // the recorded config says where the run really went
	if s.RunID != "" {
		cfg.Run.ID = s.RunID
	}
	// One clear error at start for a wrong or missing key; a server that is down is not an error here:
	// the run is recorded locally and sent when the server is back (or by mami sync).
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := wandb.Viewer(vctx, s, wandb.Options{Logger: log}); err != nil {
		if errors.Is(err, wandb.ErrUnauthorized) || wandb.IsPermanent(err) {
			return nil, false, fmt.Errorf("tracking to %s: %w", s.BaseURL, err)
		}
		log.Warn("tracking server not reachable yet; recording locally and sending in the background", "url", s.BaseURL, "err", err)
	}
	return &s, upload, nil
}

// startStream starts streaming the run in dir; training never waits on it.
func startStream(ctx context.Context, dir string, s *wandb.Settings, upload bool, log *slog.Logger) (*wandb.Stream, error) {
	st, err := wandb.Start(ctx, dir, *s, wandb.Options{Logger: log, UploadCheckpoints: upload})
	if err != nil {
		return nil, fmt.Errorf("tracking to %s: %w", s.BaseURL, err)
	}
	log.Info("tracking", "url", strings.TrimRight(s.BaseURL, "/"), "entity", s.Entity, "project", s.Project, "run", s.RunID)
	return st, nil
}
