// Package chaos kills what rotations run on — the worker process at every
// step boundary, the Temporal server during grace — against the devstack,
// and checks that each rotation still ends with one live version, used by
// every consumer, and nothing left behind. `make chaos` runs it.
package chaos

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
	"go.temporal.io/sdk/client"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"rotator/clients"
)

// stack holds the devstack clients and the worker binary every test shares.
type stack struct {
	kube     kubernetes.Interface
	kubeCfg  *rest.Config
	temporal client.Client
	vault    *vaultapi.Client
	worker   string
	dir      string
}

var devstack *stack

// tally counts worker kills over the whole run, for the summary line.
var tally struct {
	sync.Mutex
	made, survived int
}

func countKills(made, survived int) {
	tally.Lock()
	defer tally.Unlock()
	tally.made += made
	tally.survived += survived
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("chaos: -short: the chaos tests need the devstack and are left out")
		os.Exit(0)
	}
	if os.Getenv("ROTATOR_DEVSTACK") == "" {
		fmt.Fprintln(os.Stderr, "chaos: the devstack is not up: run `make chaos` (or `make devstack` then `. .devstack/env`)")
		os.Exit(1)
	}
	s, cleanup, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	devstack = s
	code := m.Run()
	cleanup()
	tally.Lock()
	fmt.Printf("chaos: worker kills survived %d/%d\n", tally.survived, tally.made)
	if tally.survived != tally.made {
		code = 1
	}
	tally.Unlock()
	os.Exit(code)
}

func setup() (*stack, func(), error) {
	cfg, err := clients.KubeConfig(50, 100)
	if err != nil {
		return nil, nil, err
	}
	kc, err := clients.KubeFor(cfg)
	if err != nil {
		return nil, nil, err
	}
	tc, err := clients.TemporalFromEnv().Dial(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, nil, err
	}
	vc, stopVault, err := clients.Vault(context.Background(), nil, nil)
	if err != nil {
		tc.Close()
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "rotator-chaos")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		stopVault()
		tc.Close()
		os.RemoveAll(dir)
	}
	// The worker runs as its own process, built once, so that a SIGKILL
	// kills exactly what a crash in production would.
	bin := filepath.Join(dir, "worker")
	build := exec.Command("go", "build", "-o", bin, "rotator/worker")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("build worker: %w", err)
	}
	return &stack{kube: kc, kubeCfg: cfg, temporal: tc, vault: vc, worker: bin, dir: dir}, cleanup, nil
}
