package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
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
