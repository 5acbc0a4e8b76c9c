package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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

// vaultClient calls Vault's HTTP API with a token, which travels only in the
// X-Vault-Token header: never in a URL, an argument or a message.
type vaultClient struct {
	addr  string
	token string
	http  *http.Client
}

// client reads the root token from its file.
func (v *vaultServer) client() (*vaultClient, error) {
	data, err := os.ReadFile(v.tokenFile())
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	return &vaultClient{addr: v.addr(), token: strings.TrimSpace(string(data)), http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// vaultError is a non-2xx answer; Vault's messages never contain the token.
type vaultError struct {
	method, path string
	status       int
	errors       []string
}

// Error implements error.
func (e *vaultError) Error() string {
	msg := strings.Join(e.errors, "; ")
	if msg == "" {
		msg = http.StatusText(e.status)
	}
	return fmt.Sprintf("vault: %s /v1/%s: %d %s", e.method, e.path, e.status, strings.TrimSpace(msg))
}

// do sends body (JSON, if not nil) to /v1/<path> and decodes the response's
// data field into out (if not nil). Non-2xx answers are *vaultError.
func (c *vaultClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	// LIST is Vault's own verb; GET with list=true is the same request
	// without a method that proxies and Go's client may not expect.
	query := ""
	if method == "LIST" {
		method, query = http.MethodGet, "?list=true"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.addr+"/v1/"+path+query, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-Vault-Token", c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("vault: %s /v1/%s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("vault: %s /v1/%s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &vaultError{method: method, path: path, status: resp.StatusCode}
		var eb struct{ Errors []string }
		if json.Unmarshal(raw, &eb) == nil {
			e.errors = eb.Errors
		}
		return e
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	var env struct{ Data json.RawMessage }
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("vault: %s /v1/%s: %w", method, path, err)
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return fmt.Errorf("vault: %s /v1/%s: no data in the response", method, path)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("vault: %s /v1/%s: %w", method, path, err)
	}
	return nil
}

// isStatus reports whether err is a Vault answer with the given status.
func isStatus(err error, status int) bool {
	var ve *vaultError
	return errors.As(err, &ve) && ve.status == status
}

// vaultMount is one entry of sys/mounts.
type vaultMount struct {
	Type    string            `json:"type"`
	Options map[string]string `json:"options"`
}

// seed makes Vault hold what rotator expects, creating only what is absent:
// KV v2 at secret/ (dev mode mounts it already), the PKI engine at pki/ with
// a root CA and the devstack role. Then it blanks the secrets Vault printed
// in its log.
func (v *vaultServer) seed(ctx context.Context) error {
	c, err := v.client()
	if err != nil {
		return err
	}
	var mounts map[string]json.RawMessage
	if err := c.do(ctx, http.MethodGet, "sys/mounts", nil, &mounts); err != nil {
		if isStatus(err, http.StatusForbidden) {
			return fmt.Errorf("%w: the running Vault was started with another root token than %s; `devstack down && devstack up` restarts it", err, v.tokenFile())
		}
		return err
	}
	mount := func(path string) (*vaultMount, error) {
		raw, ok := mounts[path+"/"]
		if !ok {
			return nil, nil
		}
		var m vaultMount
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("vault: sys/mounts %s/: %w", path, err)
		}
		return &m, nil
	}
	var done []string

	// KV v2: rotator records secret versions (and custom_metadata) there.
	kv, err := mount("secret")
	switch {
	case err != nil:
		return err
	case kv == nil:
		if err := c.do(ctx, http.MethodPost, "sys/mounts/secret", map[string]any{
			"type": "kv", "options": map[string]string{"version": "2"},
			"description": "key/value secret storage (devstack)",
		}, nil); err != nil {
			return err
		}
		done = append(done, "KV v2 enabled at secret/")
	case kv.Type != "kv" || kv.Options["version"] != "2":
		return fmt.Errorf("vault: secret/ is a %s mount (options %v), rotator needs KV version 2: `devstack down && devstack up` starts a fresh dev Vault", kv.Type, kv.Options)
	default:
		done = append(done, "KV v2 at secret/ (present)")
	}

	pki, err := mount(vaultPKIMount)
	switch {
	case err != nil:
		return err
	case pki == nil:
		if err := c.do(ctx, http.MethodPost, "sys/mounts/"+vaultPKIMount, map[string]any{
			"type": "pki", "description": "TLS certificates (devstack)",
			"config": map[string]string{"max_lease_ttl": vaultPKIMaxTTL},
		}, nil); err != nil {
			return err
		}
		done = append(done, "PKI enabled at "+vaultPKIMount+"/")
	case pki.Type != "pki":
		return fmt.Errorf("vault: %s/ is a %s mount, not pki: `devstack down && devstack up` starts a fresh dev Vault", vaultPKIMount, pki.Type)
	default:
		// Tuning to the same value is a no-op; it repairs a hand-tuned mount.
		if err := c.do(ctx, http.MethodPost, "sys/mounts/"+vaultPKIMount+"/tune", map[string]string{"max_lease_ttl": vaultPKIMaxTTL}, nil); err != nil {
			return err
		}
		done = append(done, "PKI at "+vaultPKIMount+"/ (present)")
	}

	var issuers struct {
		KeyInfo map[string]struct {
			IssuerName string `json:"issuer_name"`
		} `json:"key_info"`
	}
	if err := c.do(ctx, "LIST", vaultPKIMount+"/issuers", nil, &issuers); err != nil && !isStatus(err, http.StatusNotFound) {
		return err // 404 means no issuer yet
	}
	haveRoot := false
	for _, info := range issuers.KeyInfo {
		haveRoot = haveRoot || info.IssuerName == vaultRootIssuer
	}
	if haveRoot {
		done = append(done, fmt.Sprintf("root CA %q (present)", vaultRootCN))
	} else {
		if err := c.do(ctx, http.MethodPost, vaultPKIMount+"/root/generate/internal", map[string]any{
			"common_name": vaultRootCN,
			"issuer_name": vaultRootIssuer,
			"ttl":         vaultPKIMaxTTL,
		}, nil); err != nil {
			return err
		}
		// An earlier issuer (made by hand) would otherwise stay the default
		// that roles issue from.
		if err := c.do(ctx, http.MethodPost, vaultPKIMount+"/config/issuers", map[string]string{"default": vaultRootIssuer}, nil); err != nil {
			return err
		}
		done = append(done, fmt.Sprintf("root CA %q generated", vaultRootCN))
	}

	// Writing a role replaces it, so this is idempotent and also restores
	// a role edited by hand.
	if err := c.do(ctx, http.MethodPost, vaultPKIMount+"/roles/"+vaultPKIRole, vaultRoleConfig(), nil); err != nil {
		return err
	}
	done = append(done, fmt.Sprintf("role %s: %s and their subdomains, max %s", vaultPKIRole, strings.Join(vaultPKIDomains, ", "), vaultRoleMaxTTL))

	for _, d := range done {
		fmt.Fprintf(v.out, "  %s\n", d)
	}
	return redactVaultLog(ctx, v.logFile, 10*time.Second)
}

// vaultRoleConfig is the devstack PKI role: server and client certificates
// for in-cluster Service names and localhost, IP SANs allowed (127.0.0.1).
func vaultRoleConfig() map[string]any {
	return map[string]any{
		"issuer_ref":         vaultRootIssuer,
		"allowed_domains":    vaultPKIDomains,
		"allow_subdomains":   true,
		"allow_bare_domains": true,
		"allow_localhost":    true,
		"allow_ip_sans":      true,
		"max_ttl":            vaultRoleMaxTTL,
	}
}

// vaultLogSecrets are the lines in which Vault's dev mode prints credentials.
var vaultLogSecrets = []string{"Root Token: ", "Unseal Key: ", "Recovery Key: "}

// redactVaultLog overwrites, in place and with as many '*', the values Vault
// printed after vaultLogSecrets: the root token must be only in its 0600
// file, not in a log that gets copied into bug reports. Vault appends to
// the file (O_APPEND), so same-length writes behind its offset are safe.
// Vault prints the banner once the log has been quiet for 100 ms, i.e. just
// after seeding; so if the last start has no "Root Token:" line yet, this
// waits for it up to wait.
func redactVaultLog(ctx context.Context, path string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("vault: %w", err)
		}
		spans := vaultSecretSpans(data)
		if err := blankSpans(path, spans); err != nil {
			return fmt.Errorf("vault: redacting %s: %w", path, err)
		}
		// The banner of the latest start is the last "Root Token:" line
		// after the last line devstack wrote when starting Vault.
		last := bytes.LastIndex(data, []byte("\n==== "))
		if bytes.Contains(data[max(last, 0):], []byte("\nRoot Token: ")) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault: no root token banner in %s after %s; it may hold the token in clear (mode 0600)", path, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// span is a byte range [start, end) of a file.
type span struct{ start, end int }

// vaultSecretSpans returns the not yet blanked values of vaultLogSecrets
// lines in data.
func vaultSecretSpans(data []byte) []span {
	var spans []span
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 {
			// A partial last line may be a value still being written;
			// the next pass sees it whole.
			break
		}
		line := data[off : off+end]
		for _, prefix := range vaultLogSecrets {
			if value, ok := bytes.CutPrefix(line, []byte(prefix)); ok && len(bytes.Trim(value, "*")) > 0 {
				spans = append(spans, span{off + len(prefix), off + end})
			}
		}
		off += end + 1
	}
	return spans
}

// blankSpans overwrites each span of the file at path with '*'.
func blankSpans(path string, spans []span) error {
	if len(spans) == 0 {
		return nil
	}
	// Not O_APPEND: WriteAt must land where the value is.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	for _, s := range spans {
		if _, err := f.WriteAt(bytes.Repeat([]byte{'*'}, s.end-s.start), int64(s.start)); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
