// Package pgtest holds what the end-to-end and chaos tests need of the
// devstack's PostgreSQL: its address, a superuser connection, and login
// roles whose passwords are set from their verifiers.
package pgtest

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"rotator/postgres"
)

// Server is the devstack's PostgreSQL over verify-full TLS (PGSSLROOTCERT
// names its CA), from PGHOST and PGPORT as its env
// file sets them (127.0.0.1:5432 by default).
func Server() postgres.Server {
	port := 5432
	if p := os.Getenv("PGPORT"); p != "" {
		_, _ = fmt.Sscan(p, &port)
	}
	return postgres.Server{Host: cmp.Or(os.Getenv("PGHOST"), "127.0.0.1"), Port: port, Database: "postgres", SSLMode: "verify-full"}
}

// Superuser connects as the devstack's superuser, whose password file the
// devstack's env names, and closes the connection after the test.
func Superuser(t *testing.T, ctx context.Context) *pgx.Conn {
	t.Helper()
	pw, err := os.ReadFile(os.Getenv("ROTATOR_PG_SUPERUSER_PASSWORD_FILE"))
	if err != nil {
		t.Fatalf("devstack superuser password (ROTATOR_PG_SUPERUSER_PASSWORD_FILE): %v", err)
	}
	conn, err := postgres.Connect(ctx, Server(), postgres.Credentials{Username: "postgres", Password: strings.TrimSpace(string(pw))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// CreateLoginRole creates a role with a new password set from its
// verifier, able to log in if login, and returns the password. Roles
// outlive a test's namespace, so it is dropped after a passing test (a
// failing one keeps it to look at).
func CreateLoginRole(t *testing.T, ctx context.Context, su *pgx.Conn, role string, login bool) string {
	t.Helper()
	pw, err := postgres.NewPassword()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := su.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			_, _ = su.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize())
		}
	})
	v, err := postgres.Verifier(pw)
	if err != nil {
		t.Fatal(err)
	}
	if err := postgres.SetPassword(ctx, su, role, v, login); err != nil {
		t.Fatal(err)
	}
	return pw
}

// CanLogin tries the credentials on the devstack's PostgreSQL.
func CanLogin(ctx context.Context, user, pw string) error {
	return postgres.CanLogin(ctx, Server(), postgres.Credentials{Username: user, Password: pw})
}

// CopyAdminSecret gives the namespace a copy, named pg-admin, of the
// devstack's PostgreSQL admin credential, which alternating-users targets
// name as their adminSecret.
func CopyAdminSecret(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns string) {
	t.Helper()
	s, err := kube.CoreV1().Secrets("rotator").Get(ctx, "rotator-postgres-admin", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cp := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pg-admin"}, Data: s.Data}
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, cp, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
