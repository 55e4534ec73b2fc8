package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mami-lab/mami/runs/wandb"
)

func init() { register(newSyncCmd) }

func newSyncCmd() *cobra.Command {
	var (
		entity, project string
		checkpoints     string
	)
	cmd := &cobra.Command{
		Use:   "sync RUN_DIR...",
		Short: "Upload runs recorded offline, or whose upload did not finish, to a W&B-compatible server",
		Long: `sync uploads each run directory to the server named by WANDB_BASE_URL (or the run's tracking.base_url),
with the key from WANDB_API_KEY, tracking.api_key or ~/.netrc. It sends only what the server has not
acknowledged (wandb-sync.json in the run directory keeps count), so running it twice changes nothing.
A run still in progress is sent as far as it goes; a run whose process died (kill -9) is completed and
marked failed. See docs/tracking.md.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(cmd, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			var failed []string
			for _, dir := range args {
				s, upload, err := syncSettings(dir, entity, project)
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", dir, err)
					failed = append(failed, dir)
					continue
				}
				switch checkpoints {
				case "yes":
					upload = true
				case "no":
					upload = false
				}
				rep, err := wandb.Sync(cmd.Context(), dir, s, wandb.Options{Logger: log, UploadCheckpoints: upload})
				switch {
				case errors.Is(err, wandb.ErrBusy):
					fmt.Fprintf(out, "%s: skipped: its run is streaming it now\n", dir)
				case err != nil:
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", dir, err)
					failed = append(failed, dir)
				default:
					fmt.Fprintln(out, describeSync(rep))
				}
				if cmd.Context().Err() != nil {
					return cmd.Context().Err()
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("sync: %d of %d runs not fully uploaded: %s", len(failed), len(args), strings.Join(failed, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&entity, "entity", "", "entity to upload to (default: WANDB_ENTITY, tracking.entity, else the key's default entity)")
	cmd.Flags().StringVar(&project, "project", "", "project to upload to (default: WANDB_PROJECT, tracking.project, run.project)")
	cmd.Flags().StringVar(&checkpoints, "upload-checkpoints", "config", "upload checkpoints/: yes, no, or config (tracking.upload_checkpoints)")
	return cmd
}

// syncSettings resolves the settings of one run directory: its config.yaml, then WANDB_* variables, then
// the flags. A sync is always online, whatever mode the run was recorded in.
func syncSettings(dir, entity, project string) (wandb.Settings, bool, error) {
	var cfg wandb.Settings
	var upload bool
	b, err := os.ReadFile(filepath.Join(dir, wandb.ConfigFile))
	switch {
	case err == nil:
		if cfg, upload, err = wandb.ConfigSettings(b); err != nil {
			return cfg, false, fmt.Errorf("%s: %w", filepath.Join(dir, wandb.ConfigFile), err)
		}
	case errors.Is(err, os.ErrNotExist):
		if _, serr := os.Stat(dir); serr != nil {
			return cfg, false, serr
		}
	default:
		return cfg, false, err
	}
	cfg.Mode = wandb.ModeOnline
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WANDB_MODE=") {
			env = append(env, kv)
		}
	}
	s, err := wandb.SettingsFrom(env, "", cfg)
	if err != nil {
		return s, false, err
	}
	if entity != "" {
		s.Entity = entity
	}
	if project != "" {
		s.Project = project
	}
	return s, upload, nil
}

func describeSync(r wandb.SyncReport) string {
	skipped := ""
	if n := len(r.Skipped); n > 0 {
		skipped = fmt.Sprintf("; %d records too large for the server were skipped (kept in the run directory, listed in wandb-sync.json)", n)
	}
	if r.UpToDate {
		return fmt.Sprintf("%s: up to date (%s)%s", r.Dir, r.URL, skipped)
	}
	var parts []string
	parts = append(parts, fmt.Sprintf("%d history rows", r.History))
	if r.Events > 0 {
		parts = append(parts, fmt.Sprintf("%d system metrics rows", r.Events))
	}
	if r.Output > 0 {
		parts = append(parts, fmt.Sprintf("%d output lines", r.Output))
	}
	if r.Summary {
		parts = append(parts, "summary")
	}
	if len(r.Files) > 0 {
		parts = append(parts, fmt.Sprintf("%d files", len(r.Files)))
	}
	sent := "sent " + strings.Join(parts, ", ")
	if r.History == 0 && len(parts) == 1 {
		sent = "nothing new to send"
	}
	state := "still in progress, not completed"
	if r.Completed {
		state = fmt.Sprintf("completed, exit code %d", r.ExitCode)
	}
	msg := fmt.Sprintf("%s: %s; %s (%s)", r.Dir, sent, state, r.URL)
	if r.Note != "" {
		msg += "; " + r.Note
	}
	return msg + skipped
}
