package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/temporal"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"

	"rotator/activities"
	"rotator/internal/pgtest"
	"rotator/postgres"
	"rotator/workflows"
)

// TestSCRAMVerifierOnRealServer: the verifier rotator computes lets the
// password log in, pg_authid holds that verifier, a role name with a quote
// and a semicolon is quoted safely, and with log_statement = 'all' no
// logged statement contains the password.
func TestSCRAMVerifierOnRealServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	su := pgtest.Superuser(t, ctx)
	if _, err := su.Exec(ctx, "ALTER SYSTEM SET log_statement = 'all'"); err != nil {
		t.Fatal(err)
	}
	if _, err := su.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	// The reload reaches this session's backend by a signal, at some
	// later statement: wait until it has, or the ALTER ROLE below may go
	// unlogged and the scan prove nothing.
	for setting := ""; setting != "all"; time.Sleep(50 * time.Millisecond) {
		if err := su.QueryRow(ctx, "SHOW log_statement").Scan(&setting); err != nil {
			t.Fatalf("log_statement after the reload: %v", err)
		}
	}
	t.Cleanup(func() {
		_, _ = su.Exec(context.Background(), "ALTER SYSTEM RESET log_statement")
		_, _ = su.Exec(context.Background(), "SELECT pg_reload_conf()")
	})

	role := `e2e "quoted"; DROP ROLE postgres; -- ` + randomSuffix()
	pw := pgtest.CreateLoginRole(t, ctx, su, role, true)
	if err := pgtest.CanLogin(ctx, role, pw); err != nil {
		t.Fatalf("login with the password whose verifier was set: %v", err)
	}
	if err := pgtest.CanLogin(ctx, role, pw+"x"); !postgres.IsAuthFailure(err) {
		t.Fatalf("a wrong password must be refused, got %v", err)
	}
	var stored string
	if err := su.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "SCRAM-SHA-256$4096:") || !postgres.Matches(stored, pw) {
		t.Fatalf("pg_authid holds %q, not the SCRAM verifier of the password", stored[:min(len(stored), 20)])
	}
	var exists bool
	if err := su.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postgres')").Scan(&exists); err != nil || !exists {
		t.Fatal("the role name was executed as SQL")
	}
	// The server writes its log asynchronously; the ALTER ROLE is in it
	// once a later statement is.
	marker := "e2e-marker-" + randomSuffix()
	if _, err := su.Exec(ctx, "SELECT $1::text", marker); err != nil {
		t.Fatal(err)
	}
	log := serverLog(t, marker)
	if !bytes.Contains(log, []byte("ALTER ROLE")) {
		t.Fatal("log_statement = 'all' did not log the ALTER ROLE: the scan below would prove nothing")
	}
	if bytes.Contains(log, []byte(pw)) {
		t.Fatal("the server log contains the password")
	}
}

// serverLog returns the devstack PostgreSQL log once it contains marker.
func serverLog(t *testing.T, marker string) []byte {
	t.Helper()
	path := filepath.Join(os.Getenv("ROTATOR_DEVSTACK"), "logs", "postgres.log")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(marker)) {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged the marker statement", path)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dbFixture is a namespace with a database Secret, a Deployment reading it
// and a catalog target of kind postgres.
func dbFixture(t *testing.T, ctx context.Context, user, pw, pgConfig string, d *dbDeployment) *fixture {
	t.Helper()
	return newFixtureWith(t, ctx, fixtureSpec{
		secretData: map[string]string{"username": user, "password": pw},
		targetYAML: "    kind: postgres\n    postgres:\n      host: 127.0.0.1\n      port: 5432\n      database: postgres\n      sslMode: verify-full\n" + pgConfig,
		prepare:    d.prepare,
	}, d.deployment)
}

// dbDeployment is a consumer of the database Secret.
type dbDeployment struct {
	deployment *appsv1.Deployment
	prepare    func(t *testing.T, ctx context.Context, ns string)
}

// dbConsumer reads the Secret's username and password; with surgeOnly its
// rollouts add a pod before removing one, so a blocked new pod stalls them.
func dbConsumer(surgeOnly bool) *dbDeployment {
	d := deployment("app", 2, func(s *corev1.PodSpec) {
		s.Containers[0].Env = []corev1.EnvVar{
			{Name: "DB_USERNAME", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "app-jwt"}, Key: "username"}}},
			{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "app-jwt"}, Key: "password"}}},
		}
	})
	if surgeOnly {
		zero, one := intstr.FromInt32(0), intstr.FromInt32(1)
		d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &one}
	}
	return &dbDeployment{deployment: d}
}

// blockNewPods caps the namespace at its current pods, so a rollout can
// create no new pod, and shortens the Deployment's progress deadline to
// 10 s, so the rollout fails soon (not at creation: a busy devstack may
// take longer than that for the first rollout).
func (f *fixture) blockNewPods(ctx context.Context, deployment string, pods int) {
	f.t.Helper()
	patch := []byte(`{"spec":{"progressDeadlineSeconds":10}}`)
	if _, err := devstack.kube.AppsV1().Deployments(f.ns).Patch(ctx, deployment, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		f.t.Fatal(err)
	}
	f.podQuota(ctx, "no-new-pods", pods)
}

// podQuota caps the namespace at pods, which it must hold now, and waits
// until the quota binds: only once its controller has counted the pods,
// since a pod created before that is refused with "status unknown"
// instead of "exceeded quota".
func (f *fixture) podQuota(ctx context.Context, name string, pods int) {
	f.t.Helper()
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: *resource.NewQuantity(int64(pods), resource.DecimalSI)}}}
	if _, err := devstack.kube.CoreV1().ResourceQuotas(f.ns).Create(ctx, q, metav1.CreateOptions{}); err != nil {
		f.t.Fatal(err)
	}
	if err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		got, err := devstack.kube.CoreV1().ResourceQuotas(f.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		used, counted := got.Status.Used[corev1.ResourcePods]
		return counted && used.Value() == int64(pods), nil
	}); err != nil {
		f.t.Fatalf("the quota controller did not count %d pods in %s: %v", pods, f.ns, err)
	}
}

func (f *fixture) unblockPods(ctx context.Context) {
	f.t.Helper()
	if err := devstack.kube.CoreV1().ResourceQuotas(f.ns).Delete(ctx, "no-new-pods", metav1.DeleteOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) credentials(ctx context.Context, secret string) (string, string) {
	f.t.Helper()
	data, ok := f.secretData(ctx, secret)
	if !ok {
		f.t.Fatalf("Secret %s does not exist", secret)
	}
	return string(data["username"]), string(data["password"])
}

// TestPostgresSingleUser rotates a role's own password: after promote the
// new password logs in and the old one no longer does; approve retires.
func TestPostgresSingleUser(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	su := pgtest.Superuser(t, ctx)
	role := "e2e_single_" + randomSuffix()
	pw0 := pgtest.CreateLoginRole(t, ctx, su, role, true)
	f := dbFixture(t, ctx, role, pw0, fmt.Sprintf("      role: %s\n      strategy: single-user\n      dsnKey: DATABASE_URL\n", role), dbConsumer(false))

	if out, err := f.starter(ctx, "rotate", f.target, "--by", "e2e"); err != nil {
		t.Fatalf("rotate: %v\n%s", err, out)
	}
	waitForStep(t, ctx, f, workflows.StepGrace)
	user, pw1 := f.credentials(ctx, f.secret+"-2")
	if user != role || pw1 == pw0 {
		t.Fatalf("new Secret: user %q, password changed %v", user, pw1 != pw0)
	}
	if err := pgtest.CanLogin(ctx, role, pw1); err != nil {
		t.Errorf("the new password does not log in: %v", err)
	}
	if err := pgtest.CanLogin(ctx, role, pw0); !postgres.IsAuthFailure(err) {
		t.Errorf("single-user: the old password should be refused now, got %v", err)
	}
	data, _ := f.secretData(ctx, f.secret+"-2")
	if dsn := string(data["DATABASE_URL"]); !strings.HasPrefix(dsn, "postgres://"+role+":") || !strings.HasSuffix(dsn, "@127.0.0.1:5432/postgres?sslmode=verify-full") {
		t.Errorf("DATABASE_URL has the wrong shape")
	}
	if out, err := f.starter(ctx, "approve", f.target, "--by", "e2e", "--reason", "e2e"); err != nil {
		t.Fatalf("approve: %v\n%s", err, out)
	}
	if err := devstack.temporal.GetWorkflow(ctx, workflows.WorkflowID(f.target), "").Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.secretData(ctx, f.secret); ok {
		t.Error("the old Secret survived retire")
	}
	assertNoSecretsInHistory(t, ctx, workflows.WorkflowID(f.target), []byte(pw0), []byte(pw1))
	writeHistory(t, ctx, workflows.WorkflowID(f.target), "rotate-postgres-single-user.json")
	// local-steps: preflight and stage local, promote and the rollout wait one activity.
	writeHistory(t, ctx, workflows.WorkflowID(f.target), "rotate-postgres-single-user-local-steps.json")
	writeHistory(t, ctx, workflows.WorkflowID(f.target), "rotate-postgres-single-user-workload-safety.json")
	writeHistory(t, ctx, workflows.WorkflowID(f.target), "rotate-postgres-single-user-accountable-decisions.json")
}

// TestPostgresSingleUserFailedRolloutRestoresPassword: when the rollout of
// the new Secret cannot finish, compensation rolls the consumer back and
// gives the role its previous password again.
func TestPostgresSingleUserFailedRolloutRestoresPassword(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	su := pgtest.Superuser(t, ctx)
	role := "e2e_rollback_" + randomSuffix()
	pw0 := pgtest.CreateLoginRole(t, ctx, su, role, true)
	f := dbFixture(t, ctx, role, pw0, fmt.Sprintf("      role: %s\n", role), dbConsumer(true))
	f.blockNewPods(ctx, "app", 2)

	if out, err := f.starter(ctx, "rotate", f.target, "--by", "e2e"); err != nil {
		t.Fatalf("rotate: %v\n%s", err, out)
	}
	err := devstack.temporal.GetWorkflow(ctx, workflows.WorkflowID(f.target), "").Get(ctx, nil)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrRotationFailed || !strings.Contains(app.Message(), "progress deadline") ||
		!strings.Contains(app.Message(), "rolled back") {
		t.Fatalf("want the rotation to fail on the rollout, got %v", err)
	}
	if err := pgtest.CanLogin(ctx, role, pw0); err != nil {
		t.Errorf("after compensation the old password must log in again: %v", err)
	}
	if _, ok := f.secretData(ctx, f.secret+"-2"); ok {
		t.Error("the new Secret survived compensation")
	}
	if n := referencesTo(f.deploymentSpec(ctx, "app"), f.secret); n != 2 {
		t.Errorf("the consumer is not back on %s (%d references)", f.secret, n)
	}
	f.unblockPods(ctx)
}

// TestPostgresAlternatingUsers switches between two login roles: during
// grace both the old and the new credentials log in; the second rotation
// locks the first role at retire.
func TestPostgresAlternatingUsers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	su := pgtest.Superuser(t, ctx)
	owner := "e2e_owner_" + randomSuffix()
	pw0 := pgtest.CreateLoginRole(t, ctx, su, owner, true)
	users := [2]string{owner + "_a", owner + "_b"}
	t.Cleanup(func() {
		for _, u := range users {
			_, _ = su.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{u}.Sanitize())
		}
	})
	d := dbConsumer(false)
	d.prepare = func(t *testing.T, ctx context.Context, ns string) { pgtest.CopyAdminSecret(t, ctx, devstack.kube, ns) }
	f := dbFixture(t, ctx, owner, pw0, fmt.Sprintf("      role: %s\n      strategy: alternating-users\n      adminSecret: {namespace: %%NS%%, name: pg-admin}\n", owner), d)

	out, err := f.starter(ctx, "postgres", "setup", f.target)
	if err != nil || !strings.Contains(out, "created role "+users[0]) {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	out, err = f.starter(ctx, "postgres", "setup", f.target)
	if err != nil || !strings.Contains(out, "nothing changed") {
		t.Fatalf("a second setup should change nothing: %v\n%s", err, out)
	}

	rotate := func(version int, wantUser string) (string, string) {
		t.Helper()
		if out, err := f.starter(ctx, "rotate", f.target, "--by", "e2e"); err != nil {
			t.Fatalf("rotate: %v\n%s", err, out)
		}
		waitForStep(t, ctx, f, workflows.StepGrace)
		user, pw := f.credentials(ctx, fmt.Sprintf("%s-%d", f.secret, version))
		if user != wantUser {
			t.Fatalf("rotation %d logs in as %s, want %s", version, user, wantUser)
		}
		return user, pw
	}
	approve := func() {
		t.Helper()
		if out, err := f.starter(ctx, "approve", f.target, "--by", "e2e", "--reason", "e2e"); err != nil {
			t.Fatalf("approve: %v\n%s", err, out)
		}
		if err := devstack.temporal.GetWorkflow(ctx, workflows.WorkflowID(f.target), "").Get(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}

	userA, pwA := rotate(2, users[0])
	for who, pw := range map[string]string{owner: pw0, userA: pwA} {
		if err := pgtest.CanLogin(ctx, who, pw); err != nil {
			t.Errorf("during grace %s must log in: %v", who, err)
		}
	}
	approve()
	userB, pwB := rotate(3, users[1])
	for who, pw := range map[string]string{userA: pwA, userB: pwB} {
		if err := pgtest.CanLogin(ctx, who, pw); err != nil {
			t.Errorf("during grace %s must log in: %v", who, err)
		}
	}
	approve()
	if err := pgtest.CanLogin(ctx, userA, pwA); !postgres.IsAuthFailure(err) {
		t.Errorf("after retire the previous role %s must be locked, got %v", userA, err)
	}
	if err := pgtest.CanLogin(ctx, userB, pwB); err != nil {
		t.Errorf("the current role %s must log in: %v", userB, err)
	}
	assertNoSecretsInHistory(t, ctx, workflows.WorkflowID(f.target), []byte(pw0), []byte(pwA), []byte(pwB))
	writeHistory(t, ctx, workflows.WorkflowID(f.target), "rotate-postgres-alternating.json")
	writeHistory(t, ctx, workflows.WorkflowID(f.target), "rotate-postgres-alternating-workload-safety.json")
	writeHistory(t, ctx, workflows.WorkflowID(f.target), "rotate-postgres-alternating-accountable-decisions.json")
	// Sessions of the login roles act as the owner.
	conn, err := postgres.Connect(ctx, pgtest.Server(), postgres.Credentials{Username: userB, Password: pwB})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var current string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&current); err != nil || current != owner {
		t.Errorf("current_user of %s is %q, want %s", userB, current, owner)
	}
}

// TestPostgresNewVersionCarriesTheOtherKeys: a database Secret with host,
// port and a DATABASE_URL beside the password. Without postgres.dsnKey the
// URL would be carried over with the old password in it: preflight refuses
// and says how to fix it. With it, the new version carries host and port
// and a URL with the new password.
func TestPostgresNewVersionCarriesTheOtherKeys(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	su := pgtest.Superuser(t, ctx)
	role := "e2e_keys_" + randomSuffix()
	pw0 := pgtest.CreateLoginRole(t, ctx, su, role, true)
	data := map[string]string{"username": role, "password": pw0, "host": "127.0.0.1", "port": "5432",
		"DATABASE_URL": "postgres://" + role + ":" + pw0 + "@127.0.0.1:5432/postgres"}
	target := func(extra string) string {
		return fmt.Sprintf("    kind: postgres\n    postgres: {host: 127.0.0.1, port: 5432, database: postgres, sslMode: verify-full, role: %s%s}\n", role, extra)
	}
	consumer := deployment("app", 1, envKeys("app-jwt", "username", "password", "host", "port"))

	bad := newFixtureWith(t, ctx, fixtureSpec{secretData: data, targetYAML: target("")}, consumer.DeepCopy())
	app := failedWith(t, ctx, startRotation(t, ctx, bad, workflows.TypeRotateDatabasePassword, false))
	assertEach(t, "the refusal", app.Message(), `data key "DATABASE_URL" of Secret app-jwt contains the value of "password"`,
		"set postgres.dsnKey: DATABASE_URL so that rotator writes it with the new password")
	if strings.Contains(app.Error(), pw0) {
		t.Fatal("the refusal quotes the password")
	}
	if err := pgtest.CanLogin(ctx, role, pw0); err != nil {
		t.Errorf("a refused preflight changed the password: %v", err)
	}

	f := newFixtureWith(t, ctx, fixtureSpec{secretData: data, targetYAML: target(", dsnKey: DATABASE_URL")}, consumer.DeepCopy())
	f.rotate(ctx)
	waitForStep(t, ctx, f, workflows.StepGrace)
	got, _ := f.secretData(ctx, f.secret+"-2")
	_, pw1 := f.credentials(ctx, f.secret+"-2")
	if string(got["host"]) != "127.0.0.1" || string(got["port"]) != "5432" {
		t.Errorf("the new version has keys %v: host and port must be carried over", keysOf(got))
	}
	if url := string(got["DATABASE_URL"]); strings.Contains(url, pw0) || !strings.Contains(url, pw1) {
		t.Error("DATABASE_URL does not hold the new password")
	}
	f.approve(ctx)
	if err := f.result(ctx); err != nil {
		t.Fatal(err)
	}
	assertNoSecretsInHistory(t, ctx, workflows.WorkflowID(f.target), []byte(pw0), []byte(pw1))
	assertNoSecretsInHistory(t, ctx, workflows.WorkflowID(bad.target), []byte(pw0))
}

// TestPostgresRefusesPlainText: a target whose sslMode lets the connection
// fall back to plain text (allow tries it first, and the devstack's
// pg_hba.conf accepts it) fails in preflight, before any password or
// consumer changes, with an error that names postgres.sslMode and the fix.
func TestPostgresRefusesPlainText(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	su := pgtest.Superuser(t, ctx)
	role := "e2e_plain_" + randomSuffix()
	pw0 := pgtest.CreateLoginRole(t, ctx, su, role, true)
	d := dbConsumer(false)
	f := newFixtureWith(t, ctx, fixtureSpec{
		secretData: map[string]string{"username": role, "password": pw0},
		targetYAML: fmt.Sprintf("    kind: postgres\n    postgres: {host: 127.0.0.1, port: 5432, database: postgres, sslMode: allow, role: %s}\n", role),
		prepare:    d.prepare,
	}, d.deployment)
	before := f.deploymentSpec(ctx, "app")

	id := startRotation(t, ctx, f, workflows.TypeRotateDatabasePassword, false)
	app := failedWith(t, ctx, id)
	for _, want := range []string{"postgres.sslMode allow", "not encrypted", "postgres.sslMode: disable"} {
		if !strings.Contains(app.Error(), want) {
			t.Errorf("the failure does not say %q: %v", want, app)
		}
	}
	if err := pgtest.CanLogin(ctx, role, pw0); err != nil {
		t.Errorf("the role's password changed: %v", err)
	}
	if _, ok := f.secretData(ctx, f.secret+"-2"); ok {
		t.Error("a new version was created")
	}
	if after := f.deploymentSpec(ctx, "app"); !reflect.DeepEqual(before, after) {
		t.Error("the consumer was changed")
	}
}
