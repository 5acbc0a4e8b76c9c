// Command fakeproviders runs local stand-ins for the OpenAI and Anthropic
// APIs (rotator/providers/providertest: the endpoints rotator calls, with
// the providers' paths, headers, JSON and errors) on fixed loopback ports,
// so that the demo rotates API keys without real accounts. It is for the
// demo only: keys live in a state folder, in files only the owner reads.
//
//	fakeproviders serve --dir DIR   run both stand-ins until SIGTERM
//	fakeproviders mint --dir DIR    create one new key per provider, as an
//	                                engineer does in the console
//
// On its first start serve creates the keys the sample application uses
// and one admin key per provider, and writes them, for the demo to put in
// Kubernetes Secrets, to DIR/current-keys (openai-api-key=..., one line per
// provider) and DIR/openai-admin, DIR/anthropic-admin (admin-key=...).
// mint writes the new keys to DIR/new-keys in the format `starter
// stage-keys` reads on stdin. The keys, their ids and statuses (revoked
// ones too) are saved in DIR/state.json, so a restart keeps them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, log); err != nil {
		fmt.Fprintln(os.Stderr, "fakeproviders:", err)
		os.Exit(1)
	}
}

const usage = "usage: fakeproviders serve|mint --dir DIR [flags]"

// run parses the command line and runs one subcommand.
func run(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("fakeproviders "+args[0], flag.ContinueOnError)
	fs.SetOutput(out)
	cfg := config{}
	fs.StringVar(&cfg.dir, "dir", "", "state folder (created 0700)")
	switch args[0] {
	case "serve":
		fs.StringVar(&cfg.openAIAddr, "openai", "127.0.0.1:8301", "address of the OpenAI stand-in (rotator.yaml's baseURL)")
		fs.StringVar(&cfg.anthropicAddr, "anthropic", "127.0.0.1:8302", "address of the Anthropic stand-in (rotator.yaml's baseURL)")
		fs.StringVar(&cfg.projectID, "project", "proj_devstack", "the OpenAI project id (rotator.yaml's admin.projectID)")
	case "mint":
	default:
		return fmt.Errorf("unknown command %q; %s", args[0], usage)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if cfg.dir == "" {
		return errors.New("--dir is required")
	}
	if args[0] == "serve" {
		return serve(ctx, cfg, log)
	}
	return mint(ctx, cfg.dir, out)
}
