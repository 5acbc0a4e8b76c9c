package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	// vaultPort is Vault's API port; Vault's cluster listener takes the next.
	vaultPort = 8200

	// vaultPKIMount is where devstack enables the PKI secrets engine.
	vaultPKIMount = "pki"
	// vaultPKIMaxTTL caps every certificate of the PKI mount, the root CA
	// included.
	vaultPKIMaxTTL = "8760h"
	// vaultRootIssuer names the root CA as a PKI issuer, so that seeding
	// finds the one it made rather than any issuer.
	vaultRootIssuer = "devstack-root"
	vaultRootCN     = "rotator devstack root CA"
	// vaultPKIRole is the role rotator's TLS rotations issue from.
	vaultPKIRole    = "devstack"
	vaultRoleMaxTTL = "720h"
)

// vaultPKIDomains are the names the devstack role issues for, with their
// subdomains: in-cluster Service names (orchestrator.llm-orchestrator.svc and
// the .svc.cluster.local form) and localhost for tests.
var vaultPKIDomains = []string{"svc.cluster.local", "svc", "localhost"}

// vaultServer is the stack's Vault, in dev mode: storage in memory, unsealed
// at start, with the root token devstack generated once and keeps in
// <dir>/root-token. Dev mode forgets everything on restart, so seed runs on
// every up.
type vaultServer struct {
	// dir holds the root token file and the (empty) plugin directory.
	dir     string
	bin     string
	port    int
	logFile string
	// markers tie the running server to this state directory (see
	// component.markers); the plugin directory argument contains them.
	markers []string
	out     io.Writer
}

func (s *stack) vault() *vaultServer {
	return &vaultServer{
		dir:     s.path("vault"),
		bin:     s.bin("vault"),
		port:    vaultPort,
		logFile: s.procs.logFile(&component{name: "vault"}),
		markers: s.markers(),
		out:     s.out,
	}
}

// vaultToolset builds the Vault server.
func vaultToolset(src string) toolset {
	return toolset{
		name:     "vault",
		dir:      filepath.Join(src, "tools", "vault"),
		module:   "github.com/hashicorp/vault",
		pkgs:     []string{"github.com/hashicorp/vault"},
		bins:     []string{"vault"},
		estimate: "~7 min",
		// Without symbols the binary is a quarter smaller (about 245 MB
		// otherwise); devstack never debugs Vault.
		ldflags: func(string) string { return "-s -w" },
	}
}

// addr returns Vault's base URL.
func (v *vaultServer) addr() string { return "http://127.0.0.1:" + strconv.Itoa(v.port) }

// tokenFile is where the root token is kept; VAULT_TOKEN_FILE points at it.
func (v *vaultServer) tokenFile() string { return filepath.Join(v.dir, "root-token") }

func (v *vaultServer) pluginDir() string { return filepath.Join(v.dir, "plugins") }

// component returns the Vault server process. Its prepare hook creates the
// root token file the first time and hands the token to the process.
func (v *vaultServer) component() *component {
	c := &component{
		name: "vault",
		bin:  v.bin,
		args: []string{
			"server", "-dev",
			"-dev-listen-address=127.0.0.1:" + strconv.Itoa(v.port),
			// Otherwise dev mode writes the token to ~/.vault-token, outside
			// the state directory, where `down --purge` would leave it.
			"-dev-no-store-token",
			// Empty unless a developer adds plugins; its path also ties the
			// process to this state directory.
			"-dev-plugin-dir=" + v.pluginDir(),
		},
		// The cluster listener takes the port after the API's.
		ports:   []int{v.port, v.port + 1},
		addr:    v.addr(),
		markers: v.markers,
		beforeStart: func() error {
			// Vault prints the root token and the unseal key at start;
			// seed blanks them out, and until then only the owner reads it.
			if err := os.MkdirAll(filepath.Dir(v.logFile), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(v.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			if err != nil {
				return err
			}
			return errors.Join(f.Chmod(0o600), f.Close())
		},
		ready: func(ctx context.Context) error {
			// 200 means initialised, unsealed and active.
			return httpProbe(ctx, v.addr()+"/v1/sys/health", false)
		},
		readyTimeout: time.Minute,
		stopTimeout:  20 * time.Second,
	}
	c.prepare = func(context.Context) error {
		token, err := ensureTokenFile(v.tokenFile())
		if err != nil {
			return err
		}
		if err := os.MkdirAll(v.pluginDir(), 0o700); err != nil {
			return err
		}
		c.env = []string{
			// The root token goes in through the environment, which only
			// its user and root can read, not through -dev-root-token-id,
			// which every user sees in /proc/<pid>/cmdline.
			"VAULT_DEV_ROOT_TOKEN_ID=" + token,
			// A dependency's init (gosnowflake) parses a bundled CA
			// certificate with a negative serial number, which Go 1.23+
			// rejects by default: without this Vault panics before main.
			"GODEBUG=x509negativeserial=1",
		}
		return nil
	}
	return c
}

// ensureTokenFile returns the token kept in path, generating it the first
// time: 32 URL-safe random characters, mode 0600, in a 0700 directory.
func ensureTokenFile(path string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := os.Chmod(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if data, err := os.ReadFile(path); err == nil && len(data) > 0 {
		return strings.TrimSpace(string(data)), os.Chmod(path, 0o600)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	token, err := newPassword()
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(path, []byte(token), 0o600); err != nil {
		return "", err
	}
	return token, nil
}

// upVault builds Vault if needed, starts it unless it runs, and seeds it.
func (s *stack) upVault(ctx context.Context) error {
	fmt.Fprintln(s.out, "vault:")
	if s.src != "" {
		b := &builder{binDir: s.path("bin"), logDir: s.path("logs"), out: s.out}
		if err := b.ensure(ctx, vaultToolset(s.src)); err != nil {
			return err
		}
	}
	v := s.vault()
	if err := s.procs.ensure(ctx, v.component()); err != nil {
		return err
	}
	return v.seed(ctx)
}
