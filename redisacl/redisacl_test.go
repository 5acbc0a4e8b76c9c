package redisacl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// server runs a real redis-server of the test's own, with an admin user,
// the application's user app (one password) and a user without ACL
// rights; the default user is off.
type server struct {
	addr                string
	adminPW, appPW, low string
	// conf is the server's redis.conf, which CONFIG REWRITE rewrites.
	conf string
}

func startServer(t *testing.T) server {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs redis-server (make test-e2e runs it)")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed: apt-get install redis-server (scripts/deps.sh does)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := server{addr: "127.0.0.1:" + strconv.Itoa(port), adminPW: "admin-" + t.Name(), appPW: "app-pw-0", low: "low-pw"}
	dir := t.TempDir()
	conf := fmt.Sprintf("port %d\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir %s\n"+
		"user default off\n"+
		"user admin on #%s ~* &* +@all\n"+
		"user app on #%s ~app:* +@read +@write +@connection\n"+
		"user low on #%s ~* +@read +@connection\n",
		port, dir, Hash(s.adminPW), Hash(s.appPW), Hash(s.low))
	confFile := filepath.Join(dir, "redis.conf")
	s.conf = confFile
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, confFile)
	logs := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", s.addr)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not listen on %s: %s", s.addr, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connectAs logs in as user for the rest of the test.
func connectAs(t *testing.T, ctx context.Context, srv Server, user, password string) *redis.Client {
	t.Helper()
	c, err := Connect(ctx, srv, Credentials{Username: user, Password: password}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// recorder is a TCP proxy that keeps every byte its clients send.
type recorder struct {
	addr string
	mu   sync.Mutex
	sent bytes.Buffer
}

func record(t *testing.T, upstream string) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &recorder{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			go func() { _, _ = io.Copy(c, u); c.Close() }()
			go func() { _, _ = io.Copy(u, io.TeeReader(c, r)); u.Close() }()
		}
	}()
	return r
}

// Write keeps a copy of what a client sent.
func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent.Write(p)
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.sent.Bytes())
}

func TestRotateOneUser(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec := record(t, s.addr)
	srv, proxied := Server{Addr: s.addr}, Server{Addr: rec.addr}
	admin := connectAs(t, ctx, proxied, "admin", s.adminPW)
	old, next := Credentials{"app", s.appPW}, Credentials{"app", "app-pw-1-" + strconv.FormatInt(time.Now().UnixNano(), 36)}

	if err := AddPassword(ctx, admin, "app", next.Password); err != nil {
		t.Fatal(err)
	}
	// Both work while the consumers move: no failed login.
	for _, c := range []Credentials{old, next} {
		if err := CanLogin(ctx, srv, c, nil); err != nil {
			t.Errorf("after AddPassword, %s cannot log in with a password it has: %v", c.Username, err)
		}
	}
	hashes, err := PasswordHashes(ctx, admin, "app")
	if err != nil || len(hashes) != 2 {
		t.Fatalf("app's passwords: %v, %v; want 2", hashes, err)
	}
	// Again: the same password is not added twice.
	if err := AddPassword(ctx, admin, "app", next.Password); err != nil {
		t.Fatal(err)
	}
	if hashes, _ := PasswordHashes(ctx, admin, "app"); len(hashes) != 2 {
		t.Errorf("AddPassword twice: %d passwords", len(hashes))
	}

	if err := RemovePassword(ctx, admin, "app", old.Password); err != nil {
		t.Fatal(err)
	}
	if err := CanLogin(ctx, srv, old, nil); !IsAuthFailure(err) {
		t.Errorf("the removed password: %v, want WRONGPASS", err)
	}
	if err := CanLogin(ctx, srv, next, nil); err != nil {
		t.Errorf("the new password after retire: %v", err)
	}
	// Removing it again changes nothing: retire retried.
	if err := RemovePassword(ctx, admin, "app", old.Password); err != nil {
		t.Errorf("RemovePassword twice: %v", err)
	}

	// Retire after a third password appeared: only the current one stays.
	third := "app-pw-2-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := AddPassword(ctx, admin, "app", third); err != nil {
		t.Fatal(err)
	}
	if n, err := KeepOnly(ctx, admin, "app", next.Password); err != nil || n != 1 {
		t.Errorf("KeepOnly removed %d, %v; want 1", n, err)
	}
	if n, err := KeepOnly(ctx, admin, "app", next.Password); err != nil || n != 0 {
		t.Errorf("KeepOnly again removed %d, %v; want 0", n, err)
	}
	if _, err := KeepOnly(ctx, admin, "app", third); !errors.Is(err, ErrNotAPassword) {
		t.Errorf("KeepOnly of a password the user lacks: %v, want ErrNotAPassword", err)
	}
	if err := CanLogin(ctx, srv, Credentials{"app", third}, nil); !IsAuthFailure(err) {
		t.Errorf("the third password after KeepOnly: %v, want WRONGPASS", err)
	}
	if err := CanLogin(ctx, srv, next, nil); err != nil {
		t.Errorf("the kept password: %v", err)
	}

	// The admin connection carried the hashes, never a password.
	sent := rec.bytes()
	for _, pw := range []string{old.Password, next.Password, third} {
		if bytes.Contains(sent, []byte(pw)) {
			t.Errorf("a password went to the server in clear")
		}
		if !bytes.Contains(sent, []byte(Hash(pw))) {
			t.Errorf("the hash of a password was not sent: the recorder saw nothing")
		}
	}
}

func TestRefusals(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := Server{Addr: s.addr}
	admin := connectAs(t, ctx, srv, "admin", s.adminPW)
	if err := AddPassword(ctx, admin, "nobody", "x"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("a user the server lacks: %v, want ErrNoSuchUser", err)
	}
	if _, err := Connect(ctx, srv, Credentials{Username: "admin", Password: "wrong"}, nil); !IsAuthFailure(err) {
		t.Errorf("a wrong admin password: %v, want an auth failure", err)
	}
	low := connectAs(t, ctx, srv, "low", s.low)
	err := AddPassword(ctx, low, "app", "x")
	if !IsPermissionDenied(err) {
		t.Errorf("an admin without ACL rights: %v, want NOPERM", err)
	}
	if err != nil && strings.Contains(err.Error(), Hash("x")) {
		t.Error("the error quotes the password's hash")
	}
}

func TestRedact(t *testing.T) {
	h := Hash("secret")
	err := redact(fmt.Errorf("ERR Error in ACL SETUSER modifier '#%s': boom", h))
	if strings.Contains(err.Error(), h) || !strings.Contains(err.Error(), "<hash>") {
		t.Fatalf("redact: %v", err)
	}
	if got := URL(Server{Addr: "r:6379", TLS: true}, Credentials{"app", "p@ss"}); got != "rediss://app:p%40ss@r:6379" {
		t.Errorf("URL = %s", got)
	}
}

// TestPersistAndRights: a server configured by redis.conf keeps its users
// with CONFIG REWRITE and refuses ACL SAVE (it has no aclfile), which
// Persist reports as ErrNotPersisted; ACL DRYRUN tells an admin user that
// may change passwords from one that may not.
func TestPersistAndRights(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := Server{Addr: s.addr}
	admin := connectAs(t, ctx, srv, "admin", s.adminPW)
	if err := Persist(ctx, admin, PersistACLSave); !errors.Is(err, ErrNotPersisted) {
		t.Errorf("ACL SAVE without an aclfile: %v, want ErrNotPersisted", err)
	}
	next := "app-pw-persisted"
	if err := AddPassword(ctx, admin, "app", next); err != nil {
		t.Fatal(err)
	}
	if err := Persist(ctx, admin, PersistConfigRewrite); err != nil {
		t.Fatalf("CONFIG REWRITE: %v", err)
	}
	conf, err := os.ReadFile(s.conf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), Hash(next)) {
		t.Errorf("redis.conf lacks the new password's hash after CONFIG REWRITE:\n%s", conf)
	}
	if err := Persist(ctx, admin, PersistNone); err != nil {
		t.Errorf("none: %v", err)
	}
	if err := CanManage(ctx, admin, "admin", "app"); err != nil {
		t.Errorf("the admin user: %v", err)
	}
	low := connectAs(t, ctx, srv, "low", s.low)
	if err := CanManage(ctx, admin, "low", "app"); !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "low may not run ACL SETUSER") {
		t.Errorf("a user without ACL rights: %v", err)
	}
	if err := CanManage(ctx, low, "low", "app"); !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "low may not run ACL DRYRUN") {
		t.Errorf("ACL DRYRUN as a user without ACL rights: %v", err)
	}
	if err := Persist(ctx, low, PersistConfigRewrite); !IsPermissionDenied(err) {
		t.Errorf("CONFIG REWRITE as low: %v, want NOPERM", err)
	}
}

func TestTLSConfig(t *testing.T) {
	if cfg, err := TLSConfig(Server{Addr: "r:6379"}); cfg != nil || err != nil {
		t.Errorf("no TLS: %v, %v", cfg, err)
	}
	cfg, err := TLSConfig(Server{Addr: "redis.data.svc:6380", TLS: true})
	if err != nil || cfg.ServerName != "redis.data.svc" || cfg.RootCAs != nil {
		t.Errorf("system CAs: %+v, %v", cfg, err)
	}
	bad := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := TLSConfig(Server{Addr: "r:6380", TLS: true, CAFile: bad}); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("a CA file without a certificate: %v", err)
	}
}
