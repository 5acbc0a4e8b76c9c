package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/temporal"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	appsv1 "k8s.io/api/apps/v1"

	"rotator/activities"
	"rotator/internal/pgtest"
	"rotator/postgres"
	"rotator/workflows"
)

// TestReplicaFailureEndsTheRolloutSoon: a Deployment whose new ReplicaSet
// cannot create pods under a ResourceQuota (ReplicaFailure, while
// Progressing stays True until the 10-minute progress deadline) fails the
// step within ReplicaFailureGrace, quoting Kubernetes, and rolls back.
func TestReplicaFailureEndsTheRolloutSoon(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d := deployment("api", 2, envRef("app-jwt"))
	zero, one := intstr.FromInt32(0), intstr.FromInt32(1)
	d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &one}
	f := newFixture(t, ctx, "", d)
	f.podQuota(ctx, "two-pods", 2)
	start := time.Now()
	wid := startRotation(t, ctx, f, workflows.TypeRotateJWTSecret, false)
	app := failedWith(t, ctx, wid)
	took := time.Since(start)
	assertEach(t, "the failure", app.Message(), "promote: deployment/api cannot create pods for its new template (ReplicaFailure FailedCreate",
		"exceeded quota: two-pods", "rolled back: consumers are on "+f.secret+" again")
	var cause *temporal.ApplicationError
	if !errors.As(app.Unwrap(), &cause) || cause.Type() != activities.ErrRolloutStuck {
		t.Errorf("cause %v, want %s", cause, activities.ErrRolloutStuck)
	}
	t.Logf("figure: a rollout under a full ResourceQuota failed and rolled back %s after the rotation started (progress deadline 600 s)", took.Round(time.Second))
	if took > 3*time.Minute {
		t.Errorf("took %s: the progress deadline, not ReplicaFailure, ended it", took)
	}
	if n := referencesTo(f.deploymentSpec(ctx, "api"), f.secret); n != 1 {
		t.Error("deployment/api is not back on the old version")
	}
}

// TestSingleUserRollbackRestoresThePasswordFirst: a StatefulSet (no
// progress deadline of its own) whose pods become Ready only 20 s after
// they start, with rolloutTimeout 10s, fails its rollout. The rollback
// gives the role its old password back before it moves the consumer (the
// old Secret works again at once), then cannot repoint it (403, once):
// the rotation waits for a person, saying what is left where, until
// `starter retry` finishes the rollback.
func TestSingleUserRollbackRestoresThePasswordFirst(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	su := pgtest.Superuser(t, ctx)
	role := "e2e_sts_" + randomSuffix()
	pw0 := pgtest.CreateLoginRole(t, ctx, su, role, true)
	f := newFixtureWith(t, ctx, fixtureSpec{
		secretData: map[string]string{"username": role, "password": pw0},
		targetYAML: fmt.Sprintf("    kind: postgres\n    rolloutTimeout: 10s\n    postgres: {host: 127.0.0.1, port: 5432, database: postgres, sslMode: verify-full, role: %s}\n", role),
		deps: func(t *testing.T, ctx context.Context, ns string, d *activities.Deps) {
			// The first patch (promote) goes through, the second (the
			// rollback's) is refused.
			d.Kube, _ = faultyKube(t, nil, &kubeFault{method: "PATCH", resource: "statefulsets", before: func(*http.Request) {},
				statuses: []int{http.StatusForbidden}})
		},
	})
	db := statefulSet("db", 1, envKeys("app-jwt", "username", "password"))
	withReadyDelay(&db.Spec.Template, 20*time.Second)
	f.create(ctx, db)
	f.rolledOut(ctx, "statefulset/db", 2*time.Minute)

	start := time.Now()
	f.rotate(ctx)
	needsPerson := func(what string) workflows.Status {
		t.Helper()
		return f.waitStatus(ctx, what, func(st workflows.Status) bool {
			return st.Step == workflows.StepCompensationFailed && st.StepStartedAt.After(start)
		})
	}
	st := needsPerson("the rollback to need a person")
	t.Logf("figure: the StatefulSet's rollout made no progress for 10 s and the refused rollback waited for a person %s after the rotation started",
		time.Since(start).Round(time.Second))
	assertEach(t, "the error", st.Error, "promote: statefulset/db made no progress for", "pod db-0: not ready",
		"compensation did not finish, so the rotation needs a person", "repoint statefulset/db from app-jwt-2 to app-jwt: injected by the e2e test: 403")
	assertEach(t, "what is left", st.Left, "statefulset/db on app-jwt-2 (the new version; moving it back did not finish)",
		"PostgreSQL role "+role+" has its previous password again", "Secret app-jwt-2 still exists")
	assertEach(t, "the reminder", st.Reminder, "starter retry "+f.target)
	_, pw1 := f.credentials(ctx, f.secret+"-2")
	if err := pgtest.CanLogin(ctx, role, pw0); err != nil {
		t.Errorf("the rollback must restore the old password before it moves the consumer: %v", err)
	}
	if err := pgtest.CanLogin(ctx, role, pw1); !postgres.IsAuthFailure(err) {
		t.Errorf("the new password still logs in after the restore: %v", err)
	}

	// The engineer fixes RBAC and the slow readiness, then retries.
	patch := []byte(`{"spec":{"template":{"metadata":{"annotations":{"pod-ready.stage.kwok.x-k8s.io/delay":null}}}}}`)
	if _, err := devstack.kube.AppsV1().StatefulSets(f.ns).Patch(ctx, "db", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	f.rolledOut(ctx, "statefulset/db", 2*time.Minute)
	if out, err := f.starter(ctx, "retry", f.target, "--by", "frank", "--reason", "RBAC and readiness fixed"); err != nil {
		t.Fatalf("retry: %v\n%s", err, out)
	}
	err := f.result(ctx)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrRotationFailed || !strings.Contains(app.Message(), "rolled back: consumers are on app-jwt again") {
		t.Fatalf("after retry: %v", err)
	}
	if _, ok := f.secretData(ctx, f.secret+"-2"); ok {
		t.Error("the new version survived the rollback")
	}
	sts, err := devstack.kube.AppsV1().StatefulSets(f.ns).Get(ctx, "db", metav1.GetOptions{})
	if err != nil || referencesTo(&sts.Spec.Template.Spec, f.secret) != 2 {
		t.Errorf("statefulset/db is not on the old version: %v", err)
	}
	assertNoSecretsInHistory(t, ctx, workflows.WorkflowID(f.target), []byte(pw0), []byte(pw1))
	writeHistory(t, ctx, workflows.WorkflowID(f.target), "rotate-postgres-rollback-retried.json")
}

// alternatingFixture is a database target of strategy alternating-users
// with its login roles set up, and a Deployment reading its Secret.
func alternatingFixture(t *testing.T, ctx context.Context, d *dbDeployment) (f *fixture, owner string, users [2]string, pw0 string) {
	t.Helper()
	su := pgtest.Superuser(t, ctx)
	owner = "e2e_alt_" + randomSuffix()
	pw0 = pgtest.CreateLoginRole(t, ctx, su, owner, true)
	users = [2]string{owner + "_a", owner + "_b"}
	t.Cleanup(func() {
		for _, u := range users {
			_, _ = su.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{u}.Sanitize())
		}
	})
	d.prepare = func(t *testing.T, ctx context.Context, ns string) { pgtest.CopyAdminSecret(t, ctx, devstack.kube, ns) }
	f = dbFixture(t, ctx, owner, pw0, fmt.Sprintf("      role: %s\n      strategy: alternating-users\n      adminSecret: {namespace: %%NS%%, name: pg-admin}\n", owner), d)
	if out, err := f.starter(ctx, "postgres", "setup", f.target); err != nil {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	return f, owner, users, pw0
}

func canLogin(t *testing.T, ctx context.Context, role string) bool {
	t.Helper()
	var ok bool
	if err := pgtest.Superuser(t, ctx).QueryRow(ctx, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", role).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestAlternatingRollbackLocksTheNewUser: an aborted alternating-users
// rotation leaves the user that was to take over without LOGIN again, so
// the password it was given stops working.
func TestAlternatingRollbackLocksTheNewUser(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	f, owner, users, pw0 := alternatingFixture(t, ctx, dbConsumer(false))
	f.rotate(ctx)
	waitForStep(t, ctx, f, workflows.StepGrace)
	_, pwA := f.credentials(ctx, f.secret+"-2")
	if !canLogin(t, ctx, users[0]) {
		t.Fatalf("%s cannot log in during grace", users[0])
	}
	if out, err := f.starter(ctx, "abort", f.target, "--by", "e2e", "--reason", "test"); err != nil {
		t.Fatalf("abort: %v\n%s", err, out)
	}
	_ = f.result(ctx)
	if canLogin(t, ctx, users[0]) {
		t.Errorf("after the rollback %s still has LOGIN", users[0])
	}
	if err := pgtest.CanLogin(ctx, users[0], pwA); !postgres.IsAuthFailure(err) {
		t.Errorf("the rolled-back password of %s still logs in: %v", users[0], err)
	}
	if err := pgtest.CanLogin(ctx, owner, pw0); err != nil {
		t.Errorf("the consumers' credentials stopped working: %v", err)
	}
}

// TestAlternatingProvesTheNewLoginFirst: a login role whose password has
// expired (VALID UNTIL) accepts ALTER ROLE but refuses the login: apply
// finds out before any consumer moves, and the rotation rolls back. An
// admin role without CREATEROLE is refused in preflight.
func TestAlternatingProvesTheNewLoginFirst(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f, _, users, _ := alternatingFixture(t, ctx, dbConsumer(false))
	su := pgtest.Superuser(t, ctx)
	if _, err := su.Exec(ctx, "ALTER ROLE "+pgx.Identifier{users[0]}.Sanitize()+" VALID UNTIL '2000-01-01'"); err != nil {
		t.Fatal(err)
	}
	rsBefore := f.replicaSets(ctx, "app")
	start := time.Now()
	wid := startRotation(t, ctx, f, workflows.TypeRotateDatabasePassword, false)
	app := failedWith(t, ctx, wid)
	assertEach(t, "the failure", app.Message(), "apply: the password of "+users[0]+" was set, but logging in with it fails, so no consumer was moved",
		"VALID UNTIL", "rolled back")
	t.Logf("figure: an expired login role failed apply %s after the start (a refused login is retried for %s); no consumer moved",
		time.Since(start).Round(time.Second), activities.RefusedLoginBudget)
	if n := f.replicaSets(ctx, "app") - rsBefore; n != 0 {
		t.Errorf("the consumer rolled out %d times: it moved before the new login was proven", n)
	}
	if canLogin(t, ctx, users[0]) {
		t.Errorf("%s kept LOGIN after the rollback", users[0])
	}

	// An admin role that cannot set another role's password.
	weak := "e2e_weak_" + randomSuffix()
	weakPW := pgtest.CreateLoginRole(t, ctx, su, weak, true)
	owner := "e2e_alt_" + randomSuffix()
	ownerPW := pgtest.CreateLoginRole(t, ctx, su, owner, true)
	d := dbConsumer(false)
	d.prepare = func(t *testing.T, ctx context.Context, ns string) {
		if _, err := devstack.kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pg-weak"},
			StringData: map[string]string{"username": weak, "password": weakPW}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := postgres.SetupAlternating(ctx, su, owner, [2]string{owner + "_a", owner + "_b"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, u := range []string{owner + "_a", owner + "_b"} {
			_, _ = su.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{u}.Sanitize())
		}
	})
	g := dbFixture(t, ctx, owner, ownerPW, fmt.Sprintf("      role: %s\n      strategy: alternating-users\n      users: [%s, %s]\n      adminSecret: {namespace: %%NS%%, name: pg-weak}\n",
		owner, owner+"_a", owner+"_b"), d)
	wid = startRotation(t, ctx, g, workflows.TypeRotateDatabasePassword, false)
	app = failedWith(t, ctx, wid)
	assertEach(t, "the refusal", app.Message(), "postgres.adminSecret: role "+weak+" has neither CREATEROLE nor SUPERUSER",
		`ALTER ROLE "`+weak+`" CREATEROLE`)
}

// TestAlternatingLeavesARoleThatIsStillUsed: a bare pod keeps the first
// version, so its retire is ended with --keep-old; the next rotation would
// give that version's login role a new password under the pod, and
// preflight refuses it.
func TestAlternatingLeavesARoleThatIsStillUsed(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f, _, users, _ := alternatingFixture(t, ctx, dbConsumer(false))
	// Rotation 1: the owner's login to users[0].
	f.rotate(ctx)
	waitForStep(t, ctx, f, workflows.StepGrace)
	f.approve(ctx)
	if err := f.result(ctx); err != nil {
		t.Fatal(err)
	}
	// A pod that stays on version 2 (users[0]).
	f.create(ctx, pod("report", envKeys(f.secret+"-2", "username", "password")))
	// Rotation 2: users[0] to users[1]; retire waits for the pod.
	f.rotate(ctx)
	waitForStep(t, ctx, f, workflows.StepGrace)
	f.approve(ctx)
	f.waitStatus(ctx, "retire to wait for pod/report", func(st workflows.Status) bool { return len(st.RetireWaitsFor) == 1 })
	f.approve(ctx, "--keep-old")
	if err := f.result(ctx); err != nil {
		t.Fatal(err)
	}
	if !canLogin(t, ctx, users[0]) {
		t.Errorf("--keep-old locked %s, which pod/report logs in as", users[0])
	}
	// Rotation 3 would move to users[0] again.
	wid := startRotation(t, ctx, f, workflows.TypeRotateDatabasePassword, false)
	app := failedWith(t, ctx, wid)
	assertEach(t, "the refusal", app.Message(), fmt.Sprintf("role %q would take the new password, but pod/report (a bare pod) still logs in as it with Secret %s-2", users[0], f.secret))
	if _, ok := f.secretData(ctx, f.secret+"-4"); ok {
		t.Error("a refused preflight staged a version")
	}
}
