package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	// redisPort serves TLS only: the plain-text port is off.
	redisPort = 6380
	// redisAdminUser is rotator's admin credential for the redis kind: it
	// may run ACL SETUSER and ACL SAVE.
	redisAdminUser = "rotator_admin"
)

// redisServer is the stack's Redis (Debian's redis-server): ACL users in
// <dir>/users.acl, which ACL SAVE rewrites, so that passwords rotator sets
// survive a restart as they would on a server in production.
type redisServer struct {
	dir string
	// pki holds redis.crt and redis.key (serviceLeaves) and the services CA.
	pki     string
	port    int
	markers []string
}

func (s *stack) redis() *redisServer {
	return &redisServer{dir: s.path("redis"), pki: s.path("pki"), port: redisPort, markers: s.markers()}
}

func (r *redisServer) aclFile() string { return filepath.Join(r.dir, "users.acl") }

// adminPasswordFile is what ROTATOR_REDIS_ADMIN_PASSWORD_FILE points at.
func (r *redisServer) adminPasswordFile() string {
	return filepath.Join(r.dir, redisAdminUser+".password")
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// component describes redis-server, configured by flags alone: no
// redis.conf, so CONFIG REWRITE has nothing to write and ACL SAVE is the one
// way users persist.
func (r *redisServer) component() *component {
	bin, binErr := exec.LookPath("redis-server")
	if binErr != nil {
		bin = "redis-server" // status and down still work; prepare reports it
	}
	return &component{
		name: "redis",
		bin:  bin,
		args: []string{
			"--bind", "127.0.0.1",
			"--port", "0",
			"--tls-port", strconv.Itoa(r.port),
			"--tls-cert-file", filepath.Join(r.pki, "redis.crt"),
			"--tls-key-file", filepath.Join(r.pki, "redis.key"),
			"--tls-ca-cert-file", filepath.Join(r.pki, servicesCA+".crt"),
			// Clients prove who they are with AUTH, not certificates.
			"--tls-auth-clients", "no",
			"--aclfile", r.aclFile(),
			"--dir", r.dir,
			"--save", "",
			"--appendonly", "no",
			// Keep the command line, which ties the process to this state
			// directory (component.markers).
			"--set-proc-title", "no",
		},
		addr:     r.addr() + " (TLS)",
		ports:    []int{r.port},
		portHint: " (another redis-server? `pgrep -a redis-server`)",
		markers:  r.markers,
		prepare: func(context.Context) error {
			if binErr != nil {
				return fmt.Errorf("redis: redis-server is not installed: apt-get install redis-server (make deps does): %w", binErr)
			}
			return r.prepare()
		},
		ready:        r.ready,
		readyTimeout: 30 * time.Second,
		stopTimeout:  10 * time.Second,
	}
}

// prepare creates the admin password and, the first time, the ACL file: the
// default user off, the admin user with every right. An existing file is
// kept, since it holds the passwords rotations set since.
func (r *redisServer) prepare() error {
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	pw, err := ensureSecretFile(r.adminPasswordFile())
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if _, err := os.Stat(r.aclFile()); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("redis: %w", err)
	}
	sum := sha256.Sum256([]byte(pw))
	acl := "user default off\n" +
		fmt.Sprintf("user %s on #%s ~* &* +@all\n", redisAdminUser, hex.EncodeToString(sum[:]))
	if err := os.WriteFile(r.aclFile(), []byte(acl), 0o600); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// ensureSecretFile returns the password kept in path, creating it (mode
// 0600) the first time.
func ensureSecretFile(path string) (string, error) {
	if data, err := os.ReadFile(path); err == nil && len(data) > 0 {
		return string(data), nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	pw, err := newPassword()
	if err != nil {
		return "", err
	}
	return pw, os.WriteFile(path, []byte(pw), 0o600)
}

// ready logs in as the admin user over TLS, verified against the services
// CA, and sends PING: the server then serves the clients rotator is.
func (r *redisServer) ready(ctx context.Context) error {
	caPEM, err := os.ReadFile(filepath.Join(r.pki, servicesCA+".crt"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	pw, err := os.ReadFile(r.adminPasswordFile())
	if err != nil {
		return err
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 3 * time.Second}, Config: &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", r.addr())
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "%s%s", resp("AUTH", redisAdminUser, string(pw)), resp("PING")); err != nil {
		return err
	}
	br := bufio.NewReader(conn)
	for _, want := range []string{"+OK", "+PONG"} {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(line); got != want {
			// A reply never holds the password; it may say WRONGPASS.
			return fmt.Errorf("redis: %s", got)
		}
	}
	return nil
}

// resp encodes one command in the Redis protocol.
func resp(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}
