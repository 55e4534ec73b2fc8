package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mami-lab/mami/configs"
)

// addConfigFlags adds the flags every command that reads an experiment config shares:
// -c FILE (a YAML file, or the name of an embedded preset) and repeatable --set key=value.
func addConfigFlags(cmd *cobra.Command) {
	cmd.Flags().StringP("config", "c", "", "experiment config: a YAML file or an embedded preset name (default, seed, bench-seed-head)")
	cmd.Flags().StringArray("set", nil, "override one config key, e.g. --set train.lr=3e-4 (repeatable)")
}

// loadConfig resolves the experiment config of cmd: defaults < -c file < MAMI_* environment < --set.
func loadConfig(cmd *cobra.Command) (*configs.Config, error) {
	file, _ := cmd.Flags().GetString("config")
	sets, _ := cmd.Flags().GetStringArray("set")
	cfg, err := configs.Load(configs.LoadOptions{File: file, Sets: sets, Environ: os.Environ()})
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// newLogger returns a text logger on w at the level named by the --log-level flag.
func newLogger(cmd *cobra.Command, w io.Writer) (*slog.Logger, error) {
	name, _ := cmd.Flags().GetString("log-level")
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToLower(name))); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", name)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), nil
}
