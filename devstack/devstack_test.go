package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestRequiredVersion(t *testing.T) {
	tests := []struct {
		name, gomod, module, want string
	}{
		{"single line", "module x\n\nrequire sigs.k8s.io/kwok v0.8.0\n", "sigs.k8s.io/kwok", "v0.8.0"},
		{"block", "module x\nrequire (\n\tfoo v1.0.0 // indirect\n\tk8s.io/kubernetes v1.34.4\n)\n", "k8s.io/kubernetes", "v1.34.4"},
		{"replace is not require", "module x\nreplace k8s.io/api => k8s.io/api v0.34.4\n", "k8s.io/api", ""},
		{"absent", "module x\nrequire foo v1.0.0\n", "bar", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := requiredVersion([]byte(tt.gomod), tt.module); got != tt.want {
				t.Errorf("requiredVersion() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/work/main/.devstack/kubeconfig", "/work/main/.devstack/kubeconfig"},
		{"127.0.0.1:7233", "127.0.0.1:7233"},
		{"/a dir/x", "'/a dir/x'"},
		{"it's", `'it'\''s'`},
		{"", "''"},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.in); got != tt.want {
			t.Errorf("shellQuote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestKubeLDFlags(t *testing.T) {
	got := kubeLDFlags("v1.34.4")
	for _, want := range []string{
		"-X k8s.io/component-base/version.gitVersion=v1.34.4",
		"-X k8s.io/component-base/version.gitMajor=1",
		"-X k8s.io/component-base/version.gitMinor=34",
		"-X k8s.io/client-go/pkg/version.gitVersion=v1.34.4",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("kubeLDFlags() = %q, missing %q", got, want)
		}
	}
}

func TestEnsurePKI(t *testing.T) {
	dir := t.TempDir()
	cas := []string{clusterCA, frontProxyCA}
	leaves := clusterLeaves(net.ParseIP(serviceIP))
	if err := ensurePKI(dir, cas, leaves); err != nil {
		t.Fatal(err)
	}
	before := readAll(t, dir)

	// A second run keeps everything.
	if err := ensurePKI(dir, cas, leaves); err != nil {
		t.Fatal(err)
	}
	if after := readAll(t, dir); !equalMaps(before, after) {
		t.Error("second ensurePKI changed files")
	}

	ca, _, err := loadPair(dir, clusterCA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	admin, _, err := loadPair(dir, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin certificate does not verify against the CA: %v", err)
	}
	if got := admin.Subject.Organization; len(got) != 1 || got[0] != "system:masters" {
		t.Errorf("admin organization = %v, want [system:masters]", got)
	}
	server, _, err := loadPair(dir, "apiserver")
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "localhost", "kubernetes.default.svc", serviceIP} {
		if _, err := server.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
			t.Errorf("apiserver certificate not valid for %s: %v", host, err)
		}
	}
	proxy, _, err := loadPair(dir, "front-proxy-client")
	if err != nil {
		t.Fatal(err)
	}
	if err := proxy.CheckSignatureFrom(ca); err == nil {
		t.Error("front-proxy-client is signed by the cluster CA, want the front-proxy CA")
	}

	// Removing a leaf reissues only that leaf.
	if err := os.Remove(filepath.Join(dir, "scheduler.crt")); err != nil {
		t.Fatal(err)
	}
	if err := ensurePKI(dir, cas, leaves); err != nil {
		t.Fatal(err)
	}
	after := readAll(t, dir)
	for name, data := range before {
		changed := !bytes.Equal(after[name], data)
		if wantChanged := strings.HasPrefix(name, "scheduler."); changed != wantChanged {
			t.Errorf("%s changed = %v, want %v", name, changed, wantChanged)
		}
	}

	block, _ := pem.Decode(after["sa.pub"])
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Errorf("sa.pub is not a PEM public key")
	}
	if info, err := os.Stat(filepath.Join(dir, "ca.key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("ca.key mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
}

func readAll(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = data
	}
	return m
}

func equalMaps(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(b[k], v) {
			return false
		}
	}
	return true
}

func TestKubeconfigData(t *testing.T) {
	dir := t.TempDir()
	if err := ensurePKI(dir, []string{clusterCA, frontProxyCA}, clusterLeaves(net.ParseIP(serviceIP))); err != nil {
		t.Fatal(err)
	}
	data, err := kubeconfigData("https://127.0.0.1:6443", dir, "admin")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"server: https://127.0.0.1:6443", "certificate-authority-data: ", "client-key-data: ", "current-context: devstack"} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("kubeconfig lacks %q", want)
		}
	}
}

// TestProcessLifecycle starts a real detached process (a shell with a child)
// through procs, finds it by its pid file, and stops its process group.
func TestProcessLifecycle(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	p := &procs{pidDir: filepath.Join(dir, "pids"), logDir: filepath.Join(dir, "logs"), workDir: dir, out: &out}
	marker := filepath.Join(dir, "marker")
	c := &component{
		name:    "sleeper",
		bin:     "/bin/sh",
		args:    []string{"-c", "echo started; sleep 60", marker},
		markers: []string{marker},
		ready: func(context.Context) error {
			data, _ := os.ReadFile(filepath.Join(dir, "logs", "sleeper.log"))
			if !bytes.Contains(data, []byte("started")) {
				return os.ErrNotExist
			}
			return nil
		},
		readyTimeout: 10 * time.Second,
		stopTimeout:  5 * time.Second,
	}
	ctx := context.Background()
	if err := p.ensure(ctx, c); err != nil {
		t.Fatal(err)
	}
	pid, ok := p.running(c)
	if !ok {
		t.Fatal("not running after ensure")
	}
	// A pid reused by another program must not be taken for c.
	other := *c
	other.bin = "/bin/true"
	if isProcess(pid, &other) {
		t.Error("isProcess matched a different executable")
	}
	if err := p.stop(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.pidFile(c)); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
	if isProcess(pid, c) {
		t.Errorf("pid %d still alive after stop", pid)
	}
}

// TestSCRAMVerifierMatchesPostgres recomputes verifiers that a real
// PostgreSQL 15 stored in pg_authid.rolpassword (SET password_encryption =
// 'scram-sha-256'; CREATE ROLE x PASSWORD '...'), with their salt and
// iteration count, and expects them byte for byte.
func TestSCRAMVerifierMatchesPostgres(t *testing.T) {
	tests := []struct{ password, stored string }{
		{"pencil", "SCRAM-SHA-256$4096:PDiTTjCQzfPVv3frdQXT8w==$88xiw1s2Dsv4aStF2/k7aJU2SmlBeWt2j4qLS19wpx0=:dQ/oEo0n/2N/NrEb+FBQaIT/1T3BqEAkrcmaCl2jJSI="},
		{"Zq3-xY_9abcDEF0123456789abcdefgh", "SCRAM-SHA-256$4096:AqeeTCrVY5nGskIvex4opA==$xVVJfqxE4IdHoTEzpo7wWi2+zW+xZpJxvSYlxCd0k10=:lAtMtqUeuI2NlofltlVBelTByucDRbQuxqysC/RtOCg="},
	}
	for _, tt := range tests {
		saltB64 := strings.Split(strings.Split(tt.stored, ":")[1], "$")[0]
		salt, err := base64.StdEncoding.DecodeString(saltB64)
		if err != nil {
			t.Fatal(err)
		}
		got, err := scramVerifierWith(tt.password, salt, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.stored {
			t.Errorf("verifier of %q:\n got %s\nwant %s", tt.password, got, tt.stored)
		}
	}
}

func TestSCRAMVerifier(t *testing.T) {
	a, err := scramVerifier("pencil")
	if err != nil {
		t.Fatal(err)
	}
	b, err := scramVerifier("pencil")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("two verifiers share a salt")
	}
	if !regexp.MustCompile(`^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$`).MatchString(a) {
		t.Errorf("verifier %q is not in PostgreSQL's format", a)
	}
	if strings.Contains(a, "pencil") {
		t.Error("verifier contains the password")
	}
	if _, err := scramVerifier("pässword"); err == nil {
		t.Error("non-ASCII password accepted; PostgreSQL would SASLprep it first")
	}
}

func TestNewPassword(t *testing.T) {
	pw, err := newPassword()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{32}$`).MatchString(pw) {
		t.Errorf("password %q: want 32 URL-safe characters", pw)
	}
}

func TestPGBinDir(t *testing.T) {
	lib := t.TempDir()
	for _, v := range []string{"9.6", "13", "15"} {
		mkfile(t, filepath.Join(lib, v, "bin", "postgres"), "")
	}
	mkfile(t, filepath.Join(lib, "16", "lib", "plugin.so"), "") // client-only leftovers: no server
	data := filepath.Join(t.TempDir(), "data")

	if got, err := pgBinDir(lib, data); err != nil || got != filepath.Join(lib, "15", "bin") {
		t.Errorf("fresh data dir: pgBinDir() = %q, %v; want the newest server, 15", got, err)
	}
	mkfile(t, filepath.Join(data, "PG_VERSION"), "13\n")
	if got, err := pgBinDir(lib, data); err != nil || got != filepath.Join(lib, "13", "bin") {
		t.Errorf("PG_VERSION 13: pgBinDir() = %q, %v; want 13, the version that made it", got, err)
	}
	mkfile(t, filepath.Join(data, "PG_VERSION"), "12\n")
	if _, err := pgBinDir(lib, data); err == nil || !strings.Contains(err.Error(), "postgresql-12") {
		t.Errorf("PG_VERSION 12 not installed: err = %v, want the package to install", err)
	}
	if _, err := pgBinDir(t.TempDir(), data); err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Errorf("nothing installed: err = %v", err)
	}
}

func mkfile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWriteEnv(t *testing.T) {
	s, err := newStack(t.TempDir(), "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.initDirs(); err != nil {
		t.Fatal(err)
	}
	if err := s.writeEnv(); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(s.path("env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"export PGHOST=127.0.0.1\n",
		"export PGPORT=5432\n",
		"export ROTATOR_PG_SUPERUSER_PASSWORD_FILE=" + shellQuote(s.path("postgres", "superuser.password")) + "\n",
		"export ROTATOR_REDIS_ADDR=127.0.0.1:6380\n",
		"export ROTATOR_REDIS_ADMIN_PASSWORD_FILE=" + shellQuote(s.path("redis", "rotator_admin.password")) + "\n",
		"export VAULT_ADDR=http://127.0.0.1:8200\n",
		"export VAULT_TOKEN_FILE=" + shellQuote(s.path("vault", "root-token")) + "\n",
	} {
		if !strings.Contains(string(env), want) {
			t.Errorf("env lacks %q:\n%s", want, env)
		}
	}
	if strings.Contains(string(env), "PASSWORD=") && !strings.Contains(string(env), "PASSWORD_FILE=") {
		t.Error("env sets a password instead of naming its file")
	}
	if strings.Contains(string(env), "VAULT_TOKEN=") {
		t.Error("env sets the Vault token instead of naming its file")
	}
}

func TestSecretSpec(t *testing.T) {
	sp := secretSpec{namespace: "rotator", name: "rotator-postgres-admin", app: "rotator",
		data: map[string]string{"username": "rotator_admin", "password": "s3cr3t-value"}}
	raw, err := sp.manifest()
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		Kind     string
		Metadata struct{ Name, Namespace string }
		// stringData, so that kubectl stores the values as given.
		StringData map[string]string `json:"stringData"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	if obj.Kind != "Secret" || obj.Metadata.Name != sp.name || obj.Metadata.Namespace != sp.namespace ||
		obj.StringData["username"] != "rotator_admin" || obj.StringData["password"] != "s3cr3t-value" {
		t.Errorf("manifest = %s", raw)
	}
	got := sp.redact(`secret/rotator-postgres-admin created; "s3cr3t-value" for rotator_admin`)
	if strings.Contains(got, "s3cr3t-value") || !strings.Contains(got, "rotator_admin") {
		t.Errorf("redact() = %q: want the password hidden, the username kept", got)
	}
}

// TestPostgresServer runs the real component on a free port in a temporary
// state directory: initdb, start, seed twice, log in with the generated
// passwords, exercise rotator_admin's rights, stop and restart with the data
// kept. It needs Debian's postgresql and, as root, its postgres user.
func TestPostgresServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	if _, err := pgBinDir(pgLibDir, t.TempDir()); err != nil {
		t.Skip(err)
	}
	if _, err := pgUser(); err != nil {
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "devstack-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The server's user must be able to enter the state directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	p := &procs{pidDir: filepath.Join(dir, "pids"), logDir: filepath.Join(dir, "logs"), workDir: dir, out: &out}
	pki := filepath.Join(dir, "pki")
	if err := ensurePKI(pki, []string{servicesCA}, serviceLeaves()); err != nil {
		t.Fatal(err)
	}
	pg := &pgServer{dir: filepath.Join(dir, "postgres"), pki: pki, port: freePort(t), logFile: filepath.Join(dir, "logs", "postgres.log"),
		markers: []string{dir + string(os.PathSeparator)}, out: &out}
	if err := os.MkdirAll(p.logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := pg.component()
	t.Cleanup(func() {
		if err := p.stop(context.Background(), c); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("devstack output:\n%s\npostgres log:\n%s", out.String(), tail(pg.logFile, 40))
		}
	})
	if err := p.ensure(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := pg.seed(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "role orchestrator created") || !strings.Contains(out.String(), "database orchestrator created") {
		t.Errorf("first seed output:\n%s", out.String())
	}
	// It serves TLS with the services CA's certificate.
	su, err := os.ReadFile(pg.passwordFile(pgSuperuser))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := pg.psql(ctx, pgSuperuser, string(su), "postgres", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid();\n"); err != nil || strings.TrimSpace(got) != "t" {
		t.Errorf("the connection is not TLS: %q, %v", got, err)
	}
	for _, f := range []string{"superuser.password", "orchestrator.password", "rotator_admin.password"} {
		if info, err := os.Stat(filepath.Join(pg.dir, f)); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", f, info, err)
		}
	}
	creds, err := pg.credentials()
	if err != nil {
		t.Fatal(err)
	}
	superPW, err := os.ReadFile(pg.passwordFile(pgSuperuser))
	if err != nil {
		t.Fatal(err)
	}

	// Idempotent: nothing to create the second time, passwords unchanged.
	out.Reset()
	if err := p.ensure(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := pg.seed(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "exist (left as is)") {
		t.Errorf("second seed output:\n%s", out.String())
	}
	if again, _ := pg.credentials(); again != creds {
		t.Error("second up changed the passwords")
	}

	got, err := pg.psql(ctx, orchestratorRole, creds.orchestratorPassword, orchestratorDB,
		"SELECT current_user, current_database(), (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database());\n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(got) != "orchestrator|orchestrator|orchestrator" {
		t.Errorf("orchestrator login: %q", got)
	}
	if _, err := pg.psql(ctx, orchestratorRole, "wrong-password", orchestratorDB, "SELECT 1;\n"); err == nil {
		t.Error("a wrong password logged in")
	}
	stored, err := pg.psql(ctx, pgSuperuser, string(superPW), "postgres",
		"SELECT rolname || ' ' || rolpassword FROM pg_authid WHERE rolname IN ('orchestrator', 'rotator_admin', 'postgres') ORDER BY 1;\n")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Fields(stored); len(lines) != 6 || !strings.HasPrefix(lines[1], "SCRAM-SHA-256$4096:") {
		t.Errorf("stored passwords are not SCRAM verifiers: %d fields", len(lines))
	}

	// What the alternating-users strategy does as rotator_admin.
	va, err := scramVerifier("alt-user-password")
	if err != nil {
		t.Fatal(err)
	}
	vo, err := scramVerifier(creds.orchestratorPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pg.psql(ctx, rotatorAdminRole, creds.adminPassword, "postgres", fmt.Sprintf(`
CREATE ROLE orchestrator_a LOGIN PASSWORD '%s';
GRANT orchestrator TO orchestrator_a;
ALTER ROLE orchestrator_a PASSWORD '%s';
ALTER ROLE orchestrator PASSWORD '%s';
`, va, va, vo)); err != nil {
		t.Fatalf("rotator_admin cannot manage the alternating users: %v", err)
	}
	got, err = pg.psql(ctx, "orchestrator_a", "alt-user-password", orchestratorDB,
		"CREATE TABLE t (x int); SELECT pg_has_role('orchestrator', 'USAGE');\n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(got) != "t" {
		t.Errorf("orchestrator_a is not a member of orchestrator: %q", got)
	}

	// down, then up: data and passwords kept.
	if err := p.stop(ctx, c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tail(pg.logFile, 20), "database system is shut down") {
		t.Errorf("no clean shutdown in the log:\n%s", tail(pg.logFile, 20))
	}
	if err := p.ensure(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := pg.psql(ctx, "orchestrator_a", "alt-user-password", orchestratorDB, "SELECT count(*) FROM t;\n"); err != nil || strings.TrimSpace(got) != "0" {
		t.Errorf("after restart: %q, %v", got, err)
	}

	log, err := os.ReadFile(pg.logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{string(superPW), creds.orchestratorPassword, creds.adminPassword, "alt-user-password"} {
		if bytes.Contains(log, []byte(secret)) || strings.Contains(out.String(), secret) {
			t.Error("a password reached the server log or devstack's output")
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestWithReadyDelay(t *testing.T) {
	stage := []byte("kind: Stage\nmetadata:\n  name: pod-ready\nspec:\n  resourceRef:\n    kind: Pod\n")
	got, err := withReadyDelay(stage)
	if err != nil {
		t.Fatal(err)
	}
	want := "kind: Stage\nmetadata:\n  name: pod-ready\nspec:\n  delay:\n    durationMilliseconds: 0\n    durationFrom:\n" +
		"      expressionFrom: '.metadata.annotations[\"pod-ready.stage.kwok.x-k8s.io/delay\"]'\n  resourceRef:\n    kind: Pod\n"
	if string(got) != want {
		t.Errorf("withReadyDelay =\n%s\nwant\n%s", got, want)
	}
	if _, err := withReadyDelay([]byte("kind: Stage\n  spec:\n")); err == nil {
		t.Error("withReadyDelay accepted a stage without a top-level spec")
	}
}

// TestInstallKwokStagesDelaysReadyOnly reads kwok's own stage files from the
// module cache: only the pod-ready stage gets the delay, once.
func TestInstallKwokStagesDelaysReadyOnly(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "stages.yaml")
	if err := installKwokStages(context.Background(), filepath.Join("tools", "kwok"), dst); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(data), "\n---\n")
	delayed := 0
	for _, doc := range docs {
		if !strings.Contains(doc, readyDelayAnnotation) {
			continue
		}
		delayed++
		if !strings.Contains(doc, "\n  name: pod-ready\n") {
			t.Errorf("the ready delay was added to another stage:\n%s", doc)
		}
	}
	if delayed != 1 {
		t.Errorf("%d stages read the ready delay annotation, want 1 (pod-ready)", delayed)
	}
}
