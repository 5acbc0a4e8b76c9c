// Package e2e runs rotations end to end: the real workflow on the devstack's
// Temporal server, the real activities against its kube-apiserver, and the
// real starter CLI. `make test` brings the devstack up first.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
	"k8s.io/client-go/kubernetes"

	"rotator/clients"
)

// The clients and the CLI binary every test shares.
type stack struct {
	temporal client.Client
	kube     kubernetes.Interface
	starter  string
	env      []string
}

var (
	devstack *stack
	record   = flag.String("record-histories", "", "write the happy paths' histories into this folder, for the replay test")
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: -short: end-to-end tests need the devstack and are left out")
		os.Exit(0)
	}
	if os.Getenv("ROTATOR_DEVSTACK") == "" {
		fmt.Fprintln(os.Stderr, "e2e: the devstack is not up: run `make test` (or `make devstack` then `. .devstack/env`)")
		os.Exit(1)
	}
	s, cleanup, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	devstack = s
	code := m.Run()
	cleanup()
	os.Exit(code)
}

func setup() (*stack, func(), error) {
	kc, err := clients.Kube(50, 100)
	if err != nil {
		return nil, nil, err
	}
	tc, err := clients.TemporalFromEnv().Dial(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "rotator-e2e")
	if err != nil {
		return nil, nil, err
	}
	bin := filepath.Join(dir, "starter")
	build := exec.Command("go", "build", "-o", bin, "rotator/starter")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, nil, fmt.Errorf("build starter: %w", err)
	}
	return &stack{temporal: tc, kube: kc, starter: bin, env: os.Environ()}, func() {
		tc.Close()
		os.RemoveAll(dir)
	}, nil
}

func randomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// starter runs the CLI against the test's catalog and task queue.
func (s *stack) runStarter(ctx context.Context, catalogPath, taskQueue string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.starter, append([]string{"--catalog", catalogPath, "--task-queue", taskQueue}, args...)...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}
