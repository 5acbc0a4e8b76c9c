// Command devstack starts rotator's local stack — Temporal, PostgreSQL, Vault,
// Kubernetes (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
// kwok) and the demo workload — as plain local processes, without Docker.
//
// Usage:
//
//	devstack [--state DIR] up                 build what is missing, start what is not running, wait until ready
//	devstack [--state DIR] down [--purge]     stop what up started; --purge also deletes the state (not bin/)
//	devstack [--state DIR] status             one line per component; exit status 1 unless all are ready
//	devstack [--state DIR] env                print the shell exports written by up
//	devstack temporal [flags]                 run the embedded Temporal server in the foreground
//
// Everything lives under the state directory (default .devstack): bin/, logs/,
// pids/, etcd data, certificates, kubeconfig, the Temporal database,
// postgres/ (data, socket and the generated initial passwords) and vault/
// (the root token; Vault runs in dev mode and keeps its data in memory).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: devstack [--state DIR] [--src DIR] <command> [flags]

commands:
  up                 build missing tools, (re)start stopped components, wait until ready,
                     seed the demo roles, Vault's mounts and the workload and
                     write <state>/env
  down [--purge]     stop exactly what up started; --purge also removes the state
                     directory except bin/
  status             one line per component; exit status 1 unless all are running and ready
  env                print the shell exports written by up (eval "$(devstack env)")
  temporal [flags]   run the embedded Temporal server in the foreground (used by up)

global flags:
  --state DIR        state directory (default .devstack, relative to the working directory)
  --src DIR          devstack source directory holding tools/ (default: found from the
                     working directory or the binary's build path)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var exit exitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		os.Exit(int(exit))
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "devstack: %v\n", err)
		os.Exit(1)
	}
}

// exitError ends the command with the given status without printing anything.
type exitError int

// Error implements error.
func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// run parses the command line and runs one command.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	global := flag.NewFlagSet("devstack", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() { fmt.Fprint(stderr, usage) }
	stateDir := global.String("state", ".devstack", "state directory")
	srcDir := global.String("src", "", "devstack source directory")
	if err := global.Parse(args); err != nil {
		return err
	}
	if global.NArg() == 0 {
		global.Usage()
		return flag.ErrHelp
	}
	cmd, cmdArgs := global.Arg(0), global.Args()[1:]

	if cmd == "temporal" {
		return runTemporal(ctx, cmdArgs, stderr)
	}

	sub := flag.NewFlagSet("devstack "+cmd, flag.ContinueOnError)
	sub.SetOutput(stderr)
	purge := false
	switch cmd {
	case "down":
		sub.BoolVar(&purge, "purge", false, "also remove the state directory except bin/")
	case "up", "status", "env":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "devstack: unknown command %q\n\n", cmd)
		global.Usage()
		return flag.ErrHelp
	}
	if err := sub.Parse(cmdArgs); err != nil {
		return err
	}
	if sub.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", cmd, sub.Args())
	}

	s, err := newStack(*stateDir, *srcDir, stdout)
	if err != nil {
		return err
	}
	switch cmd {
	case "up":
		return s.up(ctx)
	case "down":
		return s.down(ctx, purge)
	case "status":
		return s.status(ctx)
	default: // env
		return s.printEnv()
	}
}
