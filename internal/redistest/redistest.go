// Package redistest holds what the end-to-end, chaos and benchmark runs
// need of the devstack's Redis: its address over TLS, an admin
// connection, and ACL users with a password of their own.
package redistest

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"rotator/redisacl"
)

// AdminUser is the devstack's admin ACL user.
const AdminUser = "rotator_admin"

// Server is the devstack's Redis over TLS, from ROTATOR_REDIS_ADDR, its
// certificate checked against the services CA that PGSSLROOTCERT names.
func Server() redisacl.Server {
	return redisacl.Server{Addr: cmp.Or(os.Getenv("ROTATOR_REDIS_ADDR"), "127.0.0.1:6380"), TLS: true, CAFile: os.Getenv("PGSSLROOTCERT")}
}

// AdminPassword reads the admin user's password from the file the
// devstack's env names.
func AdminPassword() (string, error) {
	b, err := os.ReadFile(os.Getenv("ROTATOR_REDIS_ADMIN_PASSWORD_FILE"))
	if err != nil {
		return "", fmt.Errorf("devstack Redis admin password (ROTATOR_REDIS_ADMIN_PASSWORD_FILE): %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Connect logs in to the devstack's Redis with c.
func Connect(ctx context.Context, c redisacl.Credentials) (*redis.Client, error) {
	srv := Server()
	cfg, err := redisacl.TLSConfig(srv)
	if err != nil {
		return nil, err
	}
	return redisacl.Connect(ctx, srv, c, cfg)
}

// Admin connects as the devstack's admin user and closes the connection
// after the test.
func Admin(t testing.TB, ctx context.Context) *redis.Client {
	t.Helper()
	pw, err := AdminPassword()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Connect(ctx, redisacl.Credentials{Username: AdminUser, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// CreateUser creates an ACL user with a new password, as its hash, and
// the rights of an application on its own keys, and returns the password.
// Users outlive a test's namespace, so it is deleted after a passing test
// (a failing one keeps it to look at).
func CreateUser(t testing.TB, ctx context.Context, admin *redis.Client, user string) string {
	t.Helper()
	pw, err := AddUser(ctx, admin, user)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			_ = DeleteUser(context.Background(), admin, user)
		}
	})
	return pw
}

// AddUser is CreateUser without a test: the benchmarks create users too.
func AddUser(ctx context.Context, admin *redis.Client, user string) (string, error) {
	pw := rand.Text()
	if err := admin.ACLSetUser(ctx, user, "reset", "on", "#"+redisacl.Hash(pw), "~"+user+":*", "+@read", "+@write", "+@connection").Err(); err != nil {
		return "", fmt.Errorf("ACL SETUSER %s: %w", user, err)
	}
	return pw, save(ctx, admin)
}

// DeleteUser removes the user and saves the aclfile.
func DeleteUser(ctx context.Context, admin *redis.Client, user string) error {
	if err := admin.ACLDelUser(ctx, user).Err(); err != nil {
		return err
	}
	return save(ctx, admin)
}

func save(ctx context.Context, admin *redis.Client) error {
	return redisacl.Persist(ctx, admin, redisacl.PersistACLSave)
}

// CanLogin tries the credentials on the devstack's Redis.
func CanLogin(ctx context.Context, user, pw string) error {
	srv := Server()
	cfg, err := redisacl.TLSConfig(srv)
	if err != nil {
		return err
	}
	return redisacl.CanLogin(ctx, srv, redisacl.Credentials{Username: user, Password: pw}, cfg)
}

// AdminSecret gives the namespace a Secret named redis-admin with the
// devstack's admin login, which targets name as their adminSecret.
func AdminSecret(ctx context.Context, kube kubernetes.Interface, ns string) error {
	pw, err := AdminPassword()
	if err != nil {
		return err
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "redis-admin"},
		StringData: map[string]string{"username": AdminUser, "password": pw}}
	_, err = kube.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{})
	return err
}

// Target is the kind and redis section of a catalog target for user on
// the devstack's Redis, reached at addr (the server's, or a proxy's on
// 127.0.0.1, which its certificate names too), with the admin Secret in
// ns; extra adds lines (six-space indented) to it.
func Target(addr, user, ns, extra string) string {
	return fmt.Sprintf("    kind: redis\n    redis:\n      address: %s\n      user: %s\n      adminSecret: {namespace: %s, name: redis-admin}\n      tls: {caFile: %s}\n%s",
		addr, user, ns, Server().CAFile, extra)
}
