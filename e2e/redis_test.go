package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"rotator/internal/loginprobe"
	"rotator/internal/redistest"
	"rotator/redisacl"
	"rotator/workflows"
)

// redisFixture is a namespace with a Secret of a new ACL user on the
// devstack's Redis, the admin Secret, a consumer reading username and
// password, and a catalog target of kind redis.
func redisFixture(t *testing.T, ctx context.Context, admin *redis.Client, extra string, d *dbDeployment) (*fixture, string, string) {
	t.Helper()
	user := "e2e_" + randomSuffix()
	pw0 := redistest.CreateUser(t, ctx, admin, user)
	f := newFixtureWith(t, ctx, fixtureSpec{
		secretData: map[string]string{"username": user, "password": pw0},
		targetYAML: redistest.Target(redistest.Server().Addr, user, "%NS%", extra),
		prepare: func(t *testing.T, ctx context.Context, ns string) {
			if err := redistest.AdminSecret(ctx, devstack.kube, ns); err != nil {
				t.Fatal(err)
			}
		},
	}, d.deployment)
	return f, user, pw0
}

// hashes is the user's password hashes as the server has them, sorted.
func hashes(t *testing.T, ctx context.Context, admin *redis.Client, user string) []string {
	t.Helper()
	h, err := redisacl.PasswordHashes(ctx, admin, user)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(h)
	return h
}

func sortedHashes(passwords ...string) []string {
	h := make([]string, 0, len(passwords))
	for _, pw := range passwords {
		h = append(h, redisacl.Hash(pw))
	}
	slices.Sort(h)
	return h
}

// probeLogins logs in as the consumer's pods do, every 20 ms, until the
// returned stop is called, which gives the counts.
func probeLogins(ctx context.Context, ns string) (stop func() loginprobe.Result) {
	pctx, cancel := context.WithCancel(ctx)
	var r loginprobe.Result
	var wg sync.WaitGroup
	wg.Go(func() {
		r = loginprobe.Run(pctx, devstack.kube, ns, labels.Set{"app": "app"}, 20*time.Millisecond, func(ctx context.Context, data map[string][]byte) error {
			return redistest.CanLogin(ctx, string(data["username"]), string(data["password"]))
		})
	})
	return func() loginprobe.Result { cancel(); wg.Wait(); return r }
}

// aclFile is the devstack Redis's aclfile, which ACL SAVE writes.
func aclFile(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(os.Getenv("ROTATOR_DEVSTACK"), "redis", "users.acl"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRedisRotatesWithoutFailedLogins rotates an ACL user's password on a
// real Redis over TLS while the consumer's pods keep logging in: during
// grace the user has both passwords, retire removes the old one, the
// aclfile keeps what the server holds, and no login fails at any point.
func TestRedisRotatesWithoutFailedLogins(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin := redistest.Admin(t, ctx)
	f, user, pw0 := redisFixture(t, ctx, admin, "      urlKey: REDIS_URL\n", dbConsumer(false))
	stop := probeLogins(ctx, f.ns)

	f.rotate(ctx)
	waitForStep(t, ctx, f, workflows.StepGrace)
	gotUser, pw1 := f.credentials(ctx, f.secret+"-2")
	if gotUser != user || pw1 == pw0 {
		t.Fatalf("new Secret: user %q, password changed %v", gotUser, pw1 != pw0)
	}
	data, _ := f.secretData(ctx, f.secret+"-2")
	if got, want := string(data["REDIS_URL"]), "rediss://"+user+":"+pw1+"@"+redistest.Server().Addr; got != want {
		t.Errorf("REDIS_URL has the wrong shape (%d bytes)", len(got))
	}
	if got, want := hashes(t, ctx, admin, user), sortedHashes(pw0, pw1); !reflect.DeepEqual(got, want) {
		t.Errorf("during grace the user has %d passwords, want the old and the new", len(got))
	}
	for i, pw := range []string{pw0, pw1} {
		if err := redistest.CanLogin(ctx, user, pw); err != nil {
			t.Errorf("during grace password %d must log in: %v", i, err)
		}
	}

	f.approve(ctx)
	if err := f.result(ctx); err != nil {
		t.Fatal(err)
	}
	// Logins go on after retire: the old password is gone by now and the
	// consumers must still get in with the new one. On a loaded machine a
	// TLS login takes long, so the bar on attempts only proves the probe ran.
	time.Sleep(3 * time.Second)
	res := stop()
	if res.Failures != 0 || res.Attempts < 10 {
		t.Errorf("consumer logins: %d of %d failed, want 0 of at least 10", res.Failures, res.Attempts)
	}
	if got := hashes(t, ctx, admin, user); !reflect.DeepEqual(got, sortedHashes(pw1)) {
		t.Errorf("after retire the user has %d passwords, want only the new one", len(got))
	}
	if err := redistest.CanLogin(ctx, user, pw0); !redisacl.IsAuthFailure(err) {
		t.Errorf("after retire the old password must be refused, got %v", err)
	}
	if _, ok := f.secretData(ctx, f.secret); ok {
		t.Error("the old Secret survived retire")
	}
	acl := aclFile(t)
	if !bytes.Contains(acl, []byte("user "+user+" ")) || !bytes.Contains(acl, []byte("#"+redisacl.Hash(pw1))) || bytes.Contains(acl, []byte(redisacl.Hash(pw0))) {
		t.Error("the aclfile does not hold the user with only the new password: a restart would undo the rotation")
	}
	if bytes.Contains(acl, []byte(pw1)) {
		t.Error("the aclfile holds the password in clear")
	}
	assertNoSecretsInHistory(t, ctx, workflows.WorkflowID(f.target), []byte(pw0), []byte(pw1), []byte(redisacl.Hash(pw0)), []byte(redisacl.Hash(pw1)))
	writeHistory(t, ctx, workflows.WorkflowID(f.target), "rotate-redis.json")
}

// TestRedisFailedRolloutRemovesNewPassword: when the rollout of the new
// Secret cannot finish, compensation moves the consumer back and removes
// the new password; the old one never stopped working.
func TestRedisFailedRolloutRemovesNewPassword(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin := redistest.Admin(t, ctx)
	f, user, pw0 := redisFixture(t, ctx, admin, "", dbConsumer(true))
	f.blockNewPods(ctx, "app", 2)

	f.rotate(ctx)
	app := failedWith(t, ctx, workflows.WorkflowID(f.target))
	assertEach(t, "the failure", app.Message(), "progress deadline", "rolled back")
	if got := hashes(t, ctx, admin, user); !reflect.DeepEqual(got, sortedHashes(pw0)) {
		t.Errorf("after compensation the user has %d passwords, want only the old one", len(got))
	}
	if err := redistest.CanLogin(ctx, user, pw0); err != nil {
		t.Errorf("after compensation the old password must log in: %v", err)
	}
	if _, ok := f.secretData(ctx, f.secret+"-2"); ok {
		t.Error("the new Secret survived compensation")
	}
	if n := referencesTo(f.deploymentSpec(ctx, "app"), f.secret); n != 2 {
		t.Errorf("the consumer is not back on %s (%d references)", f.secret, n)
	}
	f.unblockPods(ctx)
	assertNoSecretsInHistory(t, ctx, workflows.WorkflowID(f.target), []byte(pw0))
}

// TestRedisPreflightRefusals: a Secret whose password the user does not
// have, a user with a password no version holds, and an admin user
// without ACL rights fail in preflight with the
// field and the fix, before the user, the Secrets or the consumer change.
func TestRedisPreflightRefusals(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	admin := redistest.Admin(t, ctx)

	// A stale Secret: its consumers cannot log in now, and a rotation
	// must not hide that.
	stale, user, _ := redisFixture(t, ctx, admin, "", dbConsumer(false))
	if err := admin.ACLSetUser(ctx, user, "resetpass", "#"+redisacl.Hash("another-password-"+randomSuffix())).Err(); err != nil {
		t.Fatal(err)
	}
	before := hashes(t, ctx, admin, user)
	app := failedWith(t, ctx, startRotation(t, ctx, stale, workflows.TypeRotateRedisPassword, false))
	assertEach(t, "the refusal", app.Message(), "is not one of user "+user+"'s passwords", "fix the Secret, then rotate")
	if got := hashes(t, ctx, admin, user); !reflect.DeepEqual(got, before) {
		t.Error("a refused preflight changed the user's passwords")
	}
	if _, ok := stale.secretData(ctx, stale.secret+"-2"); ok {
		t.Error("a refused preflight created a new version")
	}

	// A second password of someone else's: retire, which keeps only the
	// new password, would lock them out.
	shared, user3, _ := redisFixture(t, ctx, admin, "", dbConsumer(false))
	if err := redisacl.AddPassword(ctx, admin, user3, "someone-elses-password-"+randomSuffix()); err != nil {
		t.Fatal(err)
	}
	before = hashes(t, ctx, admin, user3)
	app = failedWith(t, ctx, startRotation(t, ctx, shared, workflows.TypeRotateRedisPassword, false))
	assertEach(t, "the refusal", app.Message(), "has 1 other password(s) besides the one in Secret app-jwt", "give those consumers a user of their own")
	if got := hashes(t, ctx, admin, user3); !reflect.DeepEqual(got, before) {
		t.Error("a refused preflight changed the user's passwords")
	}

	// An admin user that may not change passwords.
	low := "e2e_low_" + randomSuffix()
	lowPW := redistest.CreateUser(t, ctx, admin, low)
	f, user2, pw0 := redisFixture(t, ctx, admin, "", dbConsumer(false))
	lowAdmin := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "redis-admin"}, StringData: map[string]string{"username": low, "password": lowPW}}
	if _, err := devstack.kube.CoreV1().Secrets(f.ns).Update(ctx, lowAdmin, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	spec := f.deploymentSpec(ctx, "app")
	app = failedWith(t, ctx, startRotation(t, ctx, f, workflows.TypeRotateRedisPassword, false))
	assertEach(t, "the refusal", app.Message(), "may not change this user's passwords", fmt.Sprintf("grant the admin user %s +acl", low))
	if strings.Contains(app.Error(), lowPW) || strings.Contains(app.Error(), pw0) {
		t.Fatal("the refusal quotes a password")
	}
	if got := hashes(t, ctx, admin, user2); !reflect.DeepEqual(got, sortedHashes(pw0)) {
		t.Error("a refused preflight changed the user's passwords")
	}
	if after := f.deploymentSpec(ctx, "app"); !reflect.DeepEqual(spec, after) {
		t.Error("the consumer was changed")
	}
	assertNoSecretsInHistory(t, ctx, workflows.WorkflowID(f.target), []byte(pw0), []byte(lowPW))
}
