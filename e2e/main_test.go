// Package e2e runs rotations end to end: the real workflow on the devstack's
// Temporal server, the real activities against its kube-apiserver, and the
// real starter CLI. `make test` brings the devstack up first.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/sdk/client"
	"k8s.io/client-go/kubernetes"

	vaultapi "github.com/hashicorp/vault/api"

	"rotator/clients"
	"rotator/internal/leakscan"
)

// The clients and the CLI binary every test shares.
type stack struct {
	temporal client.Client
	kube     kubernetes.Interface
	vault    *vaultapi.Client
	starter  string
	env      []string
	// logs holds everything the in-process workers logged, at debug level.
	logs *lockedBuffer
	// notices holds the bodies of every notification the tests'
	// receivers got; the same scan covers them.
	notices *lockedBuffer
	// secrets are the values tests saw generated or staged; none may
	// appear in logs.
	mu      sync.Mutex
	secrets [][]byte
}

// lockedBuffer is a log sink that workers write to concurrently.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// remember records secret values for the log scan at the end of the run.
func (s *stack) remember(values ...[]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets = append(s.secrets, values...)
}

// leakedIntoLogs returns how many remembered values appear in the workers'
// logs or the notifications, in raw, base64 or hex form, and how many
// values were searched.
func (s *stack) leakedIntoLogs() (leaks, searched int) {
	logs := append(s.logs.bytes(), s.notices.bytes()...)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.secrets {
		for _, form := range leakscan.Forms(v) {
			if bytes.Contains(logs, form) {
				leaks++
			}
		}
	}
	return leaks, len(s.secrets)
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
	logged := len(s.logs.bytes())
	if leaks, searched := s.leakedIntoLogs(); leaks > 0 {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: %d secret values found in the workers' logs\n", leaks)
		code = 1
	} else if code == 0 && (searched == 0 || logged == 0) {
		fmt.Fprintln(os.Stderr, "e2e: FAIL: the log scan searched nothing")
		code = 1
	} else {
		fmt.Fprintf(os.Stderr, "e2e: %d secret values searched in %d bytes of worker logs and %d bytes of notifications: none found\n",
			searched, logged, len(s.notices.bytes()))
	}
	cleanup()
	os.Exit(code)
}

func setup() (*stack, func(), error) {
	kc, err := clients.Kube(50, 100)
	if err != nil {
		return nil, nil, err
	}
	logs := &lockedBuffer{}
	tc, err := clients.TemporalFromEnv().Dial(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		return nil, nil, err
	}
	vc, stopVault, err := clients.Vault(context.Background(), nil, nil)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "rotator-e2e")
	if err != nil {
		return nil, nil, err
	}
	bin := filepath.Join(dir, "starter")
	build := goBuild(context.Background(), bin, "rotator/starter")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, nil, fmt.Errorf("build starter: %w", err)
	}
	return &stack{temporal: tc, kube: kc, vault: vc, starter: bin, env: os.Environ(), logs: logs, notices: &lockedBuffer{}}, func() {
		stopVault()
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
	return s.runStarterIn(ctx, "", catalogPath, taskQueue, args...)
}

// runStarterIn is runStarter with stdin, for stage-keys.
func (s *stack) runStarterIn(ctx context.Context, stdin, catalogPath, taskQueue string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.starter, append([]string{"--catalog", catalogPath, "--task-queue", taskQueue}, args...)...)
	cmd.Env = s.env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// goBuild builds a binary of rotator into out from the repository's root
// module, the one the image builds from: e2e is a module of its own, which
// needs none of the binaries' dependencies.
func goBuild(ctx context.Context, out, pkg string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = ".."
	return cmd
}
