package redisacl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/redis/go-redis/v9"
)

// TLSConfig is the client TLS of srv: nil without TLS, else verification
// against CAFile (the system's CAs when empty) for ServerName, by default
// the host of Addr.
func TLSConfig(srv Server) (*tls.Config, error) {
	if !srv.TLS {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: srv.ServerName}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(srv.Addr)
		if err != nil {
			return nil, fmt.Errorf("redis address %q: %w", srv.Addr, err)
		}
		cfg.ServerName = host
	}
	if srv.CAFile != "" {
		pem, err := os.ReadFile(srv.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redis CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis CA file %s holds no PEM certificate", srv.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// How the server keeps its ACL users across a restart. A password that
// only the running server knows would be gone after a restart, and every
// consumer on it locked out.
const (
	// PersistACLSave writes the users to the server's aclfile (ACL SAVE).
	PersistACLSave = "acl-save"
	// PersistConfigRewrite writes them into redis.conf (CONFIG REWRITE),
	// for servers that define users in their configuration file.
	PersistConfigRewrite = "config-rewrite"
	// PersistNone leaves it to the service, as managed Redis services do.
	PersistNone = "none"
)

// PersistModes lists the modes in the order errors name them.
func PersistModes() []string { return []string{PersistACLSave, PersistConfigRewrite, PersistNone} }

// ErrNotPersisted is a server that cannot keep its users the way the
// catalog says.
var ErrNotPersisted = errors.New("the server cannot persist its ACL users this way")

// Persist makes the server keep its current users across a restart.
func Persist(ctx context.Context, admin *redis.Client, mode string) error {
	var err error
	switch mode {
	case PersistNone:
		return nil
	case PersistACLSave:
		err = admin.Do(ctx, "ACL", "SAVE").Err()
	case PersistConfigRewrite:
		err = admin.ConfigRewrite(ctx).Err()
	default:
		return fmt.Errorf("persist %q: %w", mode, ErrNotPersisted)
	}
	if err == nil {
		return nil
	}
	if IsPermissionDenied(err) {
		return fmt.Errorf("%s: the admin user may not run it: %w", mode, redact(err))
	}
	// ACL SAVE without an aclfile, CONFIG REWRITE without a config file.
	return fmt.Errorf("%s: %w: %w", mode, ErrNotPersisted, redact(err))
}

// ErrNotAllowed is an admin user the server's ACL does not let change a
// user's passwords.
var ErrNotAllowed = errors.New("the admin user may not change this user's passwords")

// CanManage reports, as the server sees it (ACL DRYRUN), why the admin
// user could not change user's passwords, or nil when it can.
func CanManage(ctx context.Context, admin *redis.Client, adminUser, user string) error {
	for _, cmd := range [][]any{{"ACL", "SETUSER", user}, {"ACL", "GETUSER", user}} {
		reply, err := admin.Do(ctx, append([]any{"ACL", "DRYRUN", adminUser}, cmd...)...).Text()
		if IsPermissionDenied(err) {
			return fmt.Errorf("%w: %s may not run ACL DRYRUN (nor, then, ACL SETUSER): %w", ErrNotAllowed, adminUser, redact(err))
		}
		if err != nil {
			return fmt.Errorf("ACL DRYRUN %s %s %s: %w", adminUser, cmd[0], cmd[1], redact(err))
		}
		if reply != "OK" {
			return fmt.Errorf("%w: %s may not run %s %s: %s", ErrNotAllowed, adminUser, cmd[0], cmd[1], redact(errors.New(reply)))
		}
	}
	return nil
}
