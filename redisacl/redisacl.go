// Package redisacl changes the passwords of Redis ACL users (Redis 6 and
// later) the way rotator rotates them: a user holds several passwords at
// once, so the new one is added beside the old, proven with AUTH, and the
// old one removed only once nothing uses it. Passwords reach the server
// as their SHA-256 (ACL SETUSER <user> #<hex>), never in clear, except in
// the AUTH that proves one, which goes over TLS unless the server says
// otherwise.
package redisacl

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server says where a Redis server is; it holds no credential.
type Server struct {
	// Addr is host:port as the worker reaches it.
	Addr string `json:"addr"`
	// TLS connects over TLS, verifying the server's certificate against
	// the system's CAs or CAFile, for ServerName (default Addr's host).
	TLS        bool   `json:"tls"`
	CAFile     string `json:"caFile,omitempty"`
	ServerName string `json:"serverName,omitempty"`
}

// Credentials is a login. It never leaves an activity.
type Credentials struct {
	Username string
	Password string
}

// dialTimeout bounds one connection attempt; a rotation step retries.
const dialTimeout = 10 * time.Second

// options are the client options for srv and c; tlsConfig is nil without
// TLS.
func options(srv Server, c Credentials, tlsConfig *tls.Config) *redis.Options {
	return &redis.Options{
		Addr: srv.Addr, Username: c.Username, Password: c.Password, TLSConfig: tlsConfig,
		DialTimeout: dialTimeout, ReadTimeout: dialTimeout, WriteTimeout: dialTimeout,
		// RESP2: the replies parsed below keep one shape across servers.
		Protocol: 2,
		// One connection per client: rotator sends a few commands per step.
		PoolSize: 1, MaxRetries: -1,
		// The client name shows in CLIENT LIST, as application_name does
		// in pg_stat_activity.
		ClientName: "rotator",
		// Without it go-redis sends CLIENT SETINFO, which an ACL user
		// limited to what it needs may not run.
		DisableIdentity: true,
	}
}

// Connect opens a client logged in with c and checks the login with PING.
func Connect(ctx context.Context, srv Server, c Credentials, tlsConfig *tls.Config) (*redis.Client, error) {
	client := redis.NewClient(options(srv, c, tlsConfig))
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("connect to redis at %s as %s: %w", srv.Addr, c.Username, redact(err))
	}
	return client, nil
}

// CanLogin logs in with c on a connection of its own: the proof that a
// password works, as a consumer would use it.
func CanLogin(ctx context.Context, srv Server, c Credentials, tlsConfig *tls.Config) error {
	client, err := Connect(ctx, srv, c, tlsConfig)
	if err != nil {
		return err
	}
	return client.Close()
}

// IsAuthFailure tells a refused login (WRONGPASS: no such user, a wrong
// password, a disabled user) from a server that cannot be reached.
func IsAuthFailure(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "WRONGPASS") || strings.Contains(err.Error(), "NOAUTH"))
}

// IsPermissionDenied tells an admin user the ACL does not allow a command.
func IsPermissionDenied(err error) bool {
	return err != nil && strings.Contains(err.Error(), "NOPERM")
}

// Hash is the form a password takes in ACL SETUSER and ACL GETUSER: the
// hex SHA-256 of the password.
func Hash(password string) string {
	sum := sha256.Sum256([]byte(password))
	return hex.EncodeToString(sum[:])
}

// AddPassword adds a password to the user (which must exist), beside the
// ones it has: the user logs in with any of them.
func AddPassword(ctx context.Context, admin *redis.Client, user, password string) error {
	if err := checkUser(ctx, admin, user); err != nil {
		return err
	}
	if err := admin.ACLSetUser(ctx, user, "#"+Hash(password)).Err(); err != nil {
		return fmt.Errorf("ACL SETUSER %s: add a password: %w", user, redact(err))
	}
	return nil
}

// RemovePassword removes one password of the user; the others keep
// working. Removing a password the user does not have changes nothing.
func RemovePassword(ctx context.Context, admin *redis.Client, user, password string) error {
	has, err := HasPassword(ctx, admin, user, password)
	if err != nil || !has {
		return err
	}
	if err := admin.ACLSetUser(ctx, user, "!"+Hash(password)).Err(); err != nil {
		return fmt.Errorf("ACL SETUSER %s: remove a password: %w", user, redact(err))
	}
	return nil
}

// ErrNotAPassword is a password the user does not have.
var ErrNotAPassword = errors.New("the password is not one of the user's")

// KeepOnly leaves the user the one password, removing all others in one
// command (ACL SETUSER <user> resetpass #<hex>), so that no moment passes
// in which the user has none. It returns how many it removed; a password
// the user does not have is refused: keeping only it would lock out every
// consumer. Again, it changes nothing.
func KeepOnly(ctx context.Context, admin *redis.Client, user, password string) (int, error) {
	hashes, err := PasswordHashes(ctx, admin, user)
	if err != nil {
		return 0, err
	}
	keep := Hash(password)
	switch {
	case !slices.Contains(hashes, keep):
		return 0, fmt.Errorf("keep only one password of %s: %w", user, ErrNotAPassword)
	case len(hashes) == 1:
		return 0, nil
	}
	if err := admin.ACLSetUser(ctx, user, "resetpass", "#"+keep).Err(); err != nil {
		return 0, fmt.Errorf("ACL SETUSER %s: keep only one password: %w", user, redact(err))
	}
	return len(hashes) - 1, nil
}

// HasPassword reports whether the password is one of the user's.
func HasPassword(ctx context.Context, admin *redis.Client, user, password string) (bool, error) {
	hashes, err := PasswordHashes(ctx, admin, user)
	if err != nil {
		return false, err
	}
	return slices.Contains(hashes, Hash(password)), nil
}

// ErrNoSuchUser is the error of an ACL user the server does not have.
var ErrNoSuchUser = errors.New("no such ACL user")

// PasswordHashes lists the hashes of the user's passwords (ACL GETUSER).
func PasswordHashes(ctx context.Context, admin *redis.Client, user string) ([]string, error) {
	reply, err := admin.Do(ctx, "ACL", "GETUSER", user).Slice()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("ACL GETUSER %s: %w: create it (ACL SETUSER %s on ...) or fix the catalog's user", user, ErrNoSuchUser, user)
	}
	if err != nil {
		return nil, fmt.Errorf("ACL GETUSER %s: %w", user, redact(err))
	}
	// A flat list of field names and values.
	for i := 0; i+1 < len(reply); i += 2 {
		if name, _ := reply[i].(string); name != "passwords" {
			continue
		}
		list, _ := reply[i+1].([]any)
		hashes := make([]string, 0, len(list))
		for _, h := range list {
			if s, ok := h.(string); ok {
				hashes = append(hashes, s)
			}
		}
		return hashes, nil
	}
	return nil, fmt.Errorf("ACL GETUSER %s: the reply has no passwords field", user)
}

func checkUser(ctx context.Context, admin *redis.Client, user string) error {
	_, err := PasswordHashes(ctx, admin, user)
	return err
}

// hexHash matches a password hash, which a server's error may quote.
var hexHash = regexp.MustCompile(`[0-9a-fA-F]{64}`)

// redact keeps password hashes out of errors: a hash of a password a
// person chose could be checked against a dictionary.
func redact(err error) error {
	if err == nil || !hexHash.MatchString(err.Error()) {
		return err
	}
	return errors.New(hexHash.ReplaceAllString(err.Error(), "<hash>"))
}

// URL is the redis:// (rediss:// with TLS) URL a consumer can read from
// one Secret key.
func URL(srv Server, c Credentials) string {
	scheme := "redis"
	if srv.TLS {
		scheme = "rediss"
	}
	u := url.URL{Scheme: scheme, User: url.UserPassword(c.Username, c.Password), Host: srv.Addr}
	return u.String()
}
