package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/mami-lab/mami/runs/server"
)

func init() { register(newServeCmd) }

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run the W&B-compatible tracking server with its dashboard",
		Long: `serve runs mami's tracking server: the official W&B SDKs and mami's own client log to it with
WANDB_BASE_URL=http://ADDR and an API key, and its dashboard at http://ADDR/ compares runs.

The first start creates an API key and prints it once (only its hash is stored); --api-key or
MAMI_API_KEY adds a key of your choice (at least 40 characters of A-Z a-z 0-9 _ -). On a loopback
address the dashboard is open; on any other address it asks for a key.`,
		Args: cobra.NoArgs,
		RunE: runServe,
	}
	addConfigFlags(cmd)
	f := cmd.Flags()
	f.String("addr", server.DefaultAddr, "listen address (host:port); a non-loopback host makes the dashboard ask for a key")
	f.String("data", "", "data directory (default <workdir>/server)")
	f.String("api-key", "", "add this API key (or set MAMI_API_KEY)")
	f.Duration("crash-after", server.DefaultCrashAfter, "mark a running run crashed after this long without a heartbeat")
	f.String("entity", server.DefaultEntity, "the entity clients log to by default")
	f.String("public-url", "", "base URL clients reach the server at, for upload URLs (default: from each request)")
	return cmd
}

func runServe(cmd *cobra.Command, _ []string) error {
	log, err := newLogger(cmd, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	f := cmd.Flags()
	addr, _ := f.GetString("addr")
	dataDir, _ := f.GetString("data")
	key, _ := f.GetString("api-key")
	crashAfter, _ := f.GetDuration("crash-after")
	entity, _ := f.GetString("entity")
	publicURL, _ := f.GetString("public-url")
	if dataDir == "" {
		cfg, err := loadConfig(cmd)
		if err != nil {
			return err
		}
		dataDir = filepath.Join(cfg.Workdir, "server")
	}
	if key == "" {
		key = os.Getenv("MAMI_API_KEY")
	}
	var keys []string
	if key != "" {
		if err := server.CheckKey(key); err != nil {
			return fmt.Errorf("--api-key / MAMI_API_KEY: %w", err)
		}
		keys = append(keys, key)
	}
	srv, err := server.New(server.Config{
		Addr: addr, DataDir: dataDir, APIKeys: keys, CrashAfter: crashAfter, Entity: entity,
		PublicURL: publicURL, Logger: log,
	})
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if err := srv.Open(ctx); err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if cerr := srv.Close(cctx); cerr != nil {
			log.Error("close server", "err", cerr)
		}
	}()
	// The server is also the sweep controller for `mami agent` (W&B's UpsertSweep, CreateAgent, Heartbeat).
	if _, err := srv.EnableSweeps(ctx, server.SweepOptions{}); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	url := "http://" + ln.Addr().String()
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "mami serve: dashboard %s/  (data %s)\n", url, dataDir)
	switch {
	case srv.FirstKey() != "":
		fmt.Fprintf(out, "API key (shown once, only its hash is stored): %s\n", srv.FirstKey())
		fmt.Fprintf(out, "log to it: WANDB_BASE_URL=%s WANDB_API_KEY=%s\n", url, srv.FirstKey())
	case key != "":
		fmt.Fprintf(out, "log to it: WANDB_BASE_URL=%s WANDB_API_KEY=<the --api-key / MAMI_API_KEY key>\n", url)
	default:
		fmt.Fprintf(out, "log to it: WANDB_BASE_URL=%s WANDB_API_KEY=<the key printed at the first start>\n", url)
	}
	if srv.RequireLogin() {
		fmt.Fprintln(out, "the dashboard asks for an API key (non-loopback address)")
	}
	if err := srv.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
