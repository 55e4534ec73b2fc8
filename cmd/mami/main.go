// Command mami is the research workbench for multimodal misogyny detection in memes (SemEval-2022 Task 5,
// MAMI): it trains CLIP-fusion classifiers, records every run locally, streams runs to W&B-compatible
// servers, runs sweeps and renders report figures.
//
// Each subcommand lives in its own file and registers itself with register.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/spf13/cobra"
)

// commands holds the constructors of every subcommand, filled by the init functions of this package's files.
var commands []func() *cobra.Command

// register adds a subcommand constructor; call it from an init function.
func register(newCmd func() *cobra.Command) { commands = append(commands, newCmd) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "mami",
		Short:         "A research workbench for multimodal misogyny detection in memes (SemEval-2022 MAMI)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn, error")
	for _, newCmd := range commands {
		root.AddCommand(newCmd())
	}
	return root
}

// exitCoder is implemented by errors that carry a specific process exit status.
type exitCoder interface{ ExitCode() int }

// terminated is set when the process got SIGTERM, which schedulers such as Slurm send before preempting a
// job; tracking then marks the run as preempted rather than stopped by a user.
var terminated atomic.Bool

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		if sig == syscall.SIGTERM {
			terminated.Store(true)
		}
		fmt.Fprintf(os.Stderr, "\nmami: %v: stopping after the current step (again to quit at once)\n", sig)
		cancel()
		<-sigs
		os.Exit(130)
	}()
	err := newRootCmd().ExecuteContext(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mami:", err)
		var ec exitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}
