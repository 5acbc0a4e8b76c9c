// Command starter is the operator CLI for rotator: start a rotation,
// approve or abort it, show its status, and list the running ones.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"rotator/catalog"
	"rotator/clients"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// app holds what every command needs; it dials Temporal lazily so that
// argument errors are reported without a server.
type app struct {
	out, errOut io.Writer
	temporal    clients.Temporal
	catalogPath string
	uiAddress   string
	client      client.Client
}

func (a *app) dial() (client.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	// The SDK's own logs would drown the CLI's output; errors reach the user as return values.
	c, err := a.temporal.Dial(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, err
	}
	a.client = c
	return c, nil
}

func (a *app) catalog() (*catalog.Catalog, error) {
	return catalog.Load(a.catalogPath)
}

// target loads the catalog and finds a target in it.
func (a *app) target(name string) (*catalog.Catalog, catalog.Target, error) {
	cat, err := a.catalog()
	if err != nil {
		return nil, catalog.Target{}, err
	}
	t, err := cat.Target(name)
	return cat, t, err
}

func newRoot(out, errOut io.Writer) *cobra.Command {
	a := &app{out: out, errOut: errOut, temporal: clients.TemporalFromEnv()}
	root := &cobra.Command{
		Use:           "starter",
		Short:         "Start, approve, abort and inspect secret rotations",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPostRun: func(*cobra.Command, []string) {
			if a.client != nil {
				a.client.Close()
			}
		},
	}
	f := root.PersistentFlags()
	a.temporal.Register(f)
	f.StringVar(&a.temporal.TaskQueue, "task-queue", a.temporal.TaskQueue, "worker task queue (env ROTATOR_TASK_QUEUE)")
	f.StringVar(&a.catalogPath, "catalog", envOr("ROTATOR_CATALOG", "rotator.yaml"), "catalog file (env ROTATOR_CATALOG)")
	f.StringVar(&a.uiAddress, "ui", envOr("TEMPORAL_UI", "http://127.0.0.1:8233"), "Temporal Web UI address, for links (env TEMPORAL_UI)")
	root.AddCommand(a.rotateCmd(), a.decideCmd("approve"), a.decideCmd("abort"), a.decideCmd("retry"), a.statusCmd(), a.listCmd(), a.waitCmd(), a.postgresCmd(), a.stageKeysCmd(), a.planCmd(), a.reportCmd(), a.schedulesCmd(), a.codecCmd(), a.codecServerCmd())
	return root
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
