package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestVaultComponent(t *testing.T) {
	dir := t.TempDir()
	v := &vaultServer{dir: filepath.Join(dir, "vault"), bin: "/nonexistent/vault", port: 18200,
		logFile: filepath.Join(dir, "logs", "vault.log"), markers: []string{dir + string(os.PathSeparator)}, out: io.Discard}
	c := v.component()
	if err := c.prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(v.tokenFile())
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != 32 {
		t.Errorf("token has %d characters, want 32", len(token))
	}
	for path, want := range map[string]os.FileMode{v.tokenFile(): 0o600, v.dir: 0o700} {
		if info, err := os.Stat(path); err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", path, info.Mode().Perm(), err, want)
		}
	}
	cmdline := strings.Join(append([]string{c.bin}, c.args...), " ")
	if strings.Contains(cmdline, string(token)) {
		t.Error("the root token is in argv, which every user can read")
	}
	for _, m := range c.markers {
		if !strings.Contains(cmdline, m) {
			t.Errorf("marker %q not in the command line %q: status would not find the process", m, cmdline)
		}
	}
	for _, want := range []string{"-dev-listen-address=127.0.0.1:18200", "-dev-no-store-token"} {
		if !slices.Contains(c.args, want) {
			t.Errorf("args %q lack %q", c.args, want)
		}
	}
	for _, want := range []string{"VAULT_DEV_ROOT_TOKEN_ID=" + string(token), "GODEBUG=x509negativeserial=1"} {
		if !slices.Contains(c.env, want) {
			t.Errorf("env lacks %q", strings.SplitN(want, "=", 2)[0])
		}
	}
	if !slices.Equal(c.ports, []int{18200, 18201}) {
		t.Errorf("ports = %v, want the API port and the cluster port after it", c.ports)
	}

	// The token is generated once.
	c2 := v.component()
	if err := c2.prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(v.tokenFile()); !bytes.Equal(again, token) || !slices.Equal(c2.env, c.env) {
		t.Error("a second prepare changed the root token")
	}

	// The log that will receive the dev banner is private from the start.
	if err := os.MkdirAll(filepath.Dir(v.logFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(v.logFile, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.beforeStart(); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(v.logFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v, %v; want 0600", info.Mode().Perm(), err)
	}
}

func TestVaultToolset(t *testing.T) {
	ts := vaultToolset(".")
	version, key, err := toolKey(ts)
	if err != nil {
		t.Fatal(err)
	}
	// Newer releases do not build from the module proxy (see the tools
	// module's go.mod).
	if version != "v1.13.0" {
		t.Errorf("tools/vault requires Vault %s, want v1.13.0", version)
	}
	if !strings.HasPrefix(key, "github.com/hashicorp/vault@v1.13.0 ") {
		t.Errorf("stamp key = %q", key)
	}
}

const devBanner = `==> Vault server started! Log data will stream in below:

2026-11-25T20:56:25.568Z [INFO]  core: successful mount: namespace="" path=secret/ type=kv version=""
WARNING! dev mode is enabled! In this mode, Vault runs entirely in-memory

Unseal Key: bjIttsmohR9j/y6RWwRqkPCn008/cAlw3bB6iWOrR3Q=
Root Token: Zq3-xY_9abcDEF0123456789abcdefgh

Development mode should NOT be used in production installations!
`

func TestRedactVaultLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.log")
	first := "\n==== 2026-11-25T20:56:25Z devstack: starting vault server -dev\n" + devBanner
	if err := os.WriteFile(path, []byte(first), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := redactVaultLog(ctx, path, time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(first) {
		t.Errorf("length changed from %d to %d: Vault's appends would leave a gap", len(first), len(got))
	}
	for _, secret := range []string{"Zq3-xY_9abcDEF0123456789abcdefgh", "bjIttsmohR9j"} {
		if bytes.Contains(got, []byte(secret)) {
			t.Errorf("%q still in the log", secret)
		}
	}
	for _, keep := range []string{"Root Token: ********************************\n", "Unseal Key: ****", "successful mount", "production installations!\n"} {
		if !bytes.Contains(got, []byte(keep)) {
			t.Errorf("log lacks %q:\n%s", keep, got)
		}
	}
	if spans := vaultSecretSpans(got); len(spans) != 0 {
		t.Errorf("blanked values found again: %v", spans)
	}

	// A restart whose banner is not written yet: the older one does not count.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n==== 2026-11-25T21:00:00Z devstack: starting vault server -dev\n==> Vault server started!\n"); err != nil {
		t.Fatal(err)
	}
	if err := redactVaultLog(ctx, path, 300*time.Millisecond); err == nil {
		t.Error("no error although the latest start has no banner")
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		_, _ = f.WriteString(strings.ReplaceAll(devBanner, "Zq3-xY_9", "Other-99"))
	}()
	if err := redactVaultLog(ctx, path, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); bytes.Contains(got, []byte("Other-99")) {
		t.Error("the second banner's token is still in the log")
	}
}

func TestVaultSecretSpansPartialLine(t *testing.T) {
	// The value may still be being written: only whole lines count.
	if spans := vaultSecretSpans([]byte("x\nRoot Token: abc")); len(spans) != 0 {
		t.Errorf("spans = %v, want none for a partial line", spans)
	}
	data := []byte("x\nRoot Token: abc\n")
	spans := vaultSecretSpans(data)
	if len(spans) != 1 || string(data[spans[0].start:spans[0].end]) != "abc" {
		t.Errorf("spans = %v", spans)
	}
}

// TestVaultClient checks the request shape against a recording server: the
// token only in the X-Vault-Token header, LIST as GET ?list=true, Vault's
// error list in the error.
func TestVaultClient(t *testing.T) {
	const token = "tok-3f9a1c"
	var seen []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r)
		switch r.URL.Path {
		case "/v1/pki/issuers":
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"errors":[]}`)
		case "/v1/sys/mounts/pki":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"errors":["path is already in use at pki/"]}`)
		default:
			_, _ = io.WriteString(w, `{"request_id":"x","data":{"type":"kv","options":{"version":"2"}}}`)
		}
	}))
	defer srv.Close()
	c := &vaultClient{addr: srv.URL, token: token, http: srv.Client()}
	ctx := context.Background()

	var m vaultMount
	if err := c.do(ctx, http.MethodGet, "sys/mounts/secret", nil, &m); err != nil {
		t.Fatal(err)
	}
	if m.Type != "kv" || m.Options["version"] != "2" {
		t.Errorf("decoded %+v", m)
	}
	err := c.do(ctx, "LIST", "pki/issuers", nil, &struct{}{})
	if !isStatus(err, http.StatusNotFound) {
		t.Errorf("LIST error = %v, want a 404", err)
	}
	err = c.do(ctx, http.MethodPost, "sys/mounts/pki", map[string]string{"type": "pki"}, nil)
	if !isStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "path is already in use at pki/") {
		t.Errorf("POST error = %v, want 400 with Vault's message", err)
	}
	if len(seen) != 3 {
		t.Fatalf("%d requests", len(seen))
	}
	if seen[1].Method != http.MethodGet || seen[1].URL.RawQuery != "list=true" {
		t.Errorf("LIST sent as %s ?%s", seen[1].Method, seen[1].URL.RawQuery)
	}
	for _, r := range seen {
		if r.Header.Get("X-Vault-Token") != token {
			t.Errorf("%s %s: no token header", r.Method, r.URL)
		}
		if strings.Contains(r.URL.String(), token) {
			t.Errorf("token in the URL %s", r.URL)
		}
	}
}

// TestVaultServer runs the real Vault built by devstack (skipped when it is
// not built yet) on free ports in a temporary state directory: start, seed
// twice, KV v2 round trip, a short-lived certificate from the devstack
// role, the role's limits, and a restart, after which dev mode has forgotten
// everything and seeding must recreate it.
func TestVaultServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Vault server")
	}
	bin := os.Getenv("DEVSTACK_VAULT_BIN")
	if bin == "" {
		bin = filepath.Join("..", ".devstack", "bin", "vault")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("Vault not built (%v): `devstack up` builds it, or set DEVSTACK_VAULT_BIN", err)
	}
	dir := t.TempDir()
	var out bytes.Buffer
	p := &procs{pidDir: filepath.Join(dir, "pids"), logDir: filepath.Join(dir, "logs"), workDir: dir, out: &out}
	v := &vaultServer{dir: filepath.Join(dir, "vault"), bin: bin, port: freePortPair(t),
		logFile: filepath.Join(dir, "logs", "vault.log"), markers: []string{dir + string(os.PathSeparator)}, out: &out}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if err := p.stop(context.Background(), v.component()); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("devstack output:\n%s\nvault log:\n%s", out.String(), tail(v.logFile, 40))
		}
	})

	up := func() {
		t.Helper()
		out.Reset()
		if err := p.ensure(ctx, v.component()); err != nil {
			t.Fatal(err)
		}
		if err := v.seed(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wantOut := func(lines ...string) {
		t.Helper()
		for _, l := range lines {
			if !strings.Contains(out.String(), l) {
				t.Errorf("output lacks %q:\n%s", l, out.String())
			}
		}
	}
	up()
	wantOut("KV v2 at secret/ (present)", "PKI enabled at pki/", `root CA "rotator devstack root CA" generated`)
	up()
	wantOut("running (pid", "PKI at pki/ (present)", `root CA "rotator devstack root CA" (present)`)

	c, err := v.client()
	if err != nil {
		t.Fatal(err)
	}
	// KV v2 with custom_metadata, as rotator records versions.
	if err := c.do(ctx, http.MethodPost, "secret/data/devstack-test", map[string]any{"data": map[string]string{"value": "v1"}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.do(ctx, http.MethodPost, "secret/metadata/devstack-test", map[string]any{"custom_metadata": map[string]string{"stage": "PENDING"}}, nil); err != nil {
		t.Fatal(err)
	}
	var kv struct {
		Data     map[string]string
		Metadata struct {
			Version        int
			CustomMetadata map[string]string `json:"custom_metadata"`
		}
	}
	if err := c.do(ctx, http.MethodGet, "secret/data/devstack-test", nil, &kv); err != nil {
		t.Fatal(err)
	}
	if kv.Data["value"] != "v1" || kv.Metadata.Version != 1 || kv.Metadata.CustomMetadata["stage"] != "PENDING" {
		t.Errorf("KV v2 read back %+v", kv)
	}

	// A five-minute certificate for a Service name, chaining to the root.
	var issued struct {
		Certificate string
		IssuingCA   string `json:"issuing_ca"`
		PrivateKey  string `json:"private_key"`
	}
	if err := c.do(ctx, http.MethodPost, "pki/issue/"+vaultPKIRole, map[string]string{
		"common_name": "orchestrator.llm-orchestrator.svc",
		"alt_names":   "orchestrator.llm-orchestrator.svc.cluster.local,localhost",
		"ip_sans":     "127.0.0.1",
		"ttl":         "5m",
	}, &issued); err != nil {
		t.Fatal(err)
	}
	cert, ca := parseCert(t, issued.Certificate), parseCert(t, issued.IssuingCA)
	if ca.Subject.CommonName != vaultRootCN || !ca.IsCA {
		t.Errorf("issuing CA %q (CA %v)", ca.Subject.CommonName, ca.IsCA)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, name := range []string{"orchestrator.llm-orchestrator.svc", "orchestrator.llm-orchestrator.svc.cluster.local", "localhost", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("certificate not valid for %s: %v", name, err)
		}
	}
	if life := time.Until(cert.NotAfter); life > 6*time.Minute || life < 4*time.Minute {
		t.Errorf("certificate valid for another %s, want about 5m", life)
	}
	if !strings.Contains(issued.PrivateKey, "PRIVATE KEY") {
		t.Error("no private key issued")
	}
	err = c.do(ctx, http.MethodPost, "pki/issue/"+vaultPKIRole, map[string]string{"common_name": "example.com", "ttl": "5m"}, nil)
	if !isStatus(err, http.StatusBadRequest) {
		t.Errorf("example.com: err = %v, want the role to refuse it", err)
	}

	// A missing KV mount is recreated.
	if err := c.do(ctx, http.MethodDelete, "sys/mounts/secret", nil, nil); err != nil {
		t.Fatal(err)
	}
	up()
	wantOut("KV v2 enabled at secret/")

	// down, then up: dev mode starts empty and seeding makes it whole again.
	if err := p.stop(ctx, v.component()); err != nil {
		t.Fatal(err)
	}
	up()
	wantOut("started (pid", "KV v2 at secret/ (present)", "PKI enabled at pki/", `root CA "rotator devstack root CA" generated`)
	if err := c.do(ctx, http.MethodGet, "secret/data/devstack-test", nil, &kv); !isStatus(err, http.StatusNotFound) {
		t.Errorf("after restart: err = %v, want 404 (dev mode keeps nothing)", err)
	}

	token, err := os.ReadFile(v.tokenFile())
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(v.logFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(log, []byte("\nRoot Token: ***")); n != 2 {
		t.Errorf("%d blanked root token lines in the log, want one per start", n)
	}
	if bytes.Contains(log, token) || strings.Contains(out.String(), string(token)) {
		t.Error("the root token is in the log or in devstack's output")
	}
	if info, err := os.Stat(v.logFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v, %v; want 0600", info.Mode().Perm(), err)
	}
}

func parseCert(t *testing.T, pemData string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(pemData))
	if block == nil {
		t.Fatalf("no PEM in %q", pemData)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// freePortPair returns a port on 127.0.0.1 that is free, as is the next one
// (Vault's cluster listener).
func freePortPair(t *testing.T) int {
	t.Helper()
	for range 20 {
		port := freePort(t)
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+1))); err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal(errors.New("no two consecutive free ports"))
	return 0
}
