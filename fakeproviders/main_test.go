package main

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rotator/providers"
)

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs serve until the test ends or the returned stop is called.
func start(t *testing.T, cfg config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(filepath.Join(cfg.dir, controlSock)); err == nil {
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("serve ended: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("serve did not come up")
		}
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// keyFile reads a KEY=value file and checks that only its owner may read it.
func keyFile(t *testing.T, path string) map[string]string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", path, fi.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok || v == "" {
			t.Fatalf("%s: line %q is not KEY=value", path, sc.Text())
		}
		out[k] = v
	}
	return out
}

// TestServeMintRestart: the seeded keys and minted keys are accepted by the
// stand-ins as rotator's provider client calls them, the admin keys revoke,
// and a restart keeps keys, ids and revocations.
func TestServeMintRestart(t *testing.T) {
	ctx := context.Background()
	cfg := config{dir: filepath.Join(t.TempDir(), "fp"), openAIAddr: freeAddr(t), anthropicAddr: freeAddr(t), projectID: "proj_test"}
	stop := start(t, cfg)
	base := map[string]string{"openai": "http://" + cfg.openAIAddr, "anthropic": "http://" + cfg.anthropicAddr}
	client := func(name string) *providers.Client {
		c, err := providers.New(name, base[name], http.DefaultClient)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	current := keyFile(t, filepath.Join(cfg.dir, currentFile))
	var out bytes.Buffer
	if err := mint(ctx, cfg.dir, &out); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != filepath.Join(cfg.dir, newKeysFile) {
		t.Errorf("mint printed %q, want the file's path", got)
	}
	minted := keyFile(t, filepath.Join(cfg.dir, newKeysFile))
	ids := map[string]string{}
	for _, name := range []string{"openai", "anthropic"} {
		c := client(name)
		cur, fresh := current[name+"-api-key"], minted[name+"-api-key"]
		if cur == "" || fresh == "" || cur == fresh {
			t.Fatalf("%s: current and minted keys must be two different keys", name)
		}
		for _, k := range []string{cur, fresh} {
			if err := c.VerifyKey(ctx, k); err != nil {
				t.Errorf("%s: VerifyKey: %v", name, err)
			}
		}
		admin := providers.AdminKey{Key: keyFile(t, filepath.Join(cfg.dir, name+"-admin"))["admin-key"]}
		if name == "openai" {
			admin.ProjectID = cfg.projectID
		}
		id, err := c.FindKeyID(ctx, admin, cur)
		if err != nil {
			t.Fatalf("%s: FindKeyID: %v", name, err)
		}
		ids[name] = id
		if err := c.RevokeKey(ctx, admin, id); err != nil {
			t.Fatalf("%s: RevokeKey: %v", name, err)
		}
		if err := c.VerifyKey(ctx, cur); !providers.IsPermanent(err) {
			t.Errorf("%s: a revoked key must be refused, got %v", name, err)
		}
	}

	stop()
	start(t, cfg)
	if got := keyFile(t, filepath.Join(cfg.dir, currentFile)); got["openai-api-key"] != current["openai-api-key"] {
		t.Error("a restart must not create new current keys")
	}
	for _, name := range []string{"openai", "anthropic"} {
		c := client(name)
		if err := c.VerifyKey(ctx, minted[name+"-api-key"]); err != nil {
			t.Errorf("%s: after a restart the minted key must still work: %v", name, err)
		}
		if err := c.VerifyKey(ctx, current[name+"-api-key"]); !providers.IsPermanent(err) {
			t.Errorf("%s: after a restart the revoked key must stay revoked, got %v", name, err)
		}
		admin := providers.AdminKey{Key: keyFile(t, filepath.Join(cfg.dir, name+"-admin"))["admin-key"], ProjectID: cfg.projectID}
		if name == "anthropic" {
			admin.ProjectID = ""
		}
		id, err := c.FindKeyID(ctx, admin, minted[name+"-api-key"])
		if err != nil {
			t.Fatalf("%s: FindKeyID after restart: %v", name, err)
		}
		if id == ids[name] {
			t.Errorf("%s: the minted key has the revoked key's id", name)
		}
	}
}

func TestRunRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"serve"}, {"mint"}} {
		if err := run(context.Background(), args, &bytes.Buffer{}, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("run(%q) must fail", args)
		}
	}
}
