package postgres

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Server says where a database is; it holds no credential.
type Server struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Database string `json:"database"`
	SSLMode  string `json:"sslMode"`
}

// Credentials is a login. It never leaves an activity.
type Credentials struct {
	Username string
	Password string
}

// The data keys of a database Secret.
const (
	UsernameKey = "username"
	PasswordKey = "password"
)

// CredentialsFromSecret reads username and password from a Secret.
func CredentialsFromSecret(ctx context.Context, kube kubernetes.Interface, namespace, name string) (Credentials, error) {
	s, err := kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return Credentials{}, fmt.Errorf("read Secret %s/%s: %w", namespace, name, err)
	}
	return credentialsOf(s)
}

func credentialsOf(s *corev1.Secret) (Credentials, error) {
	c := Credentials{Username: string(s.Data[UsernameKey]), Password: string(s.Data[PasswordKey])}
	if c.Username == "" || c.Password == "" {
		return Credentials{}, fmt.Errorf("the Secret %s/%s needs the keys %q and %q", s.Namespace, s.Name, UsernameKey, PasswordKey)
	}
	return c, nil
}

// Connect opens one connection. The password is set on the parsed config,
// never written into a connection string, so no error can quote it.
func Connect(ctx context.Context, srv Server, c Credentials) (*pgx.Conn, error) {
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(srv.Host, strconv.Itoa(srv.Port)), Path: "/" + srv.Database}
	if srv.SSLMode != "" {
		u.RawQuery = url.Values{"sslmode": {srv.SSLMode}}.Encode()
	}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("postgres config for %s: %w", u.Host, err)
	}
	cfg.User, cfg.Password = c.Username, c.Password
	cfg.ConnectTimeout = 10 * time.Second
	cfg.RuntimeParams["application_name"] = "rotator"
	// Simple protocol: ALTER ROLE cannot take bind parameters anyway, and
	// a pooler in front of the server need not support prepared statements.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s as %s: %w", u.Host, c.Username, err)
	}
	if err := checkEncrypted(conn, srv, u.Host); err != nil {
		_ = conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// ErrNotEncrypted is the error of a connection that ended up in plain text
// although its sslmode is not disable.
var ErrNotEncrypted = errors.New("the connection is not encrypted")

// checkEncrypted refuses a connection without TLS unless the mode is
// disable: allow tries plain text first and prefer falls back to it, so a
// password could otherwise go over the network in clear under a catalog
// that never said so.
func checkEncrypted(conn *pgx.Conn, srv Server, host string) error {
	if srv.SSLMode == "disable" {
		return nil
	}
	if _, ok := conn.PgConn().Conn().(*tls.Conn); ok {
		return nil
	}
	return fmt.Errorf("postgres.sslMode %s: %w: %s accepted a connection without TLS; turn TLS on at the server and use verify-full, or write postgres.sslMode: disable in the catalog to allow plain text",
		srv.SSLMode, ErrNotEncrypted, host)
}

// CanLogin tries the credentials with SELECT 1, the runbook's validation.
func CanLogin(ctx context.Context, srv Server, c Credentials) error {
	conn, err := Connect(ctx, srv, c)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("SELECT 1 as %s: %w", c.Username, err)
	}
	return nil
}

// IsAuthFailure tells a refused login (wrong password, no LOGIN, no such
// role) from a server that cannot be reached.
func IsAuthFailure(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01", "28000": // invalid_password, invalid_authorization_specification
			return true
		}
	}
	return false
}

// IsLoginRefused tells a login the server refused, for any reason but its
// own absence: a password or role it rejects, pg_hba.conf, no CONNECT on
// the database (insufficient_privilege), or the role's connection limit.
func IsLoginRefused(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "28P01", "28000", "42501", "53300":
		return true
	}
	return false
}

// NewPassword returns 32 random bytes in URL-safe base64: 43 printable
// characters that need no escaping in a DSN or a shell.
func NewPassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// DSN is the URL form a consumer can read from one Secret key.
func DSN(srv Server, c Credentials) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(c.Username, c.Password),
		Host: net.JoinHostPort(srv.Host, strconv.Itoa(srv.Port)), Path: "/" + srv.Database}
	if srv.SSLMode != "" {
		u.RawQuery = url.Values{"sslmode": {srv.SSLMode}}.Encode()
	}
	return u.String()
}

// IsPermissionDenied tells a missing privilege (insufficient_privilege).
func IsPermissionDenied(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42501"
}
