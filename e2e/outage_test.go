package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"rotator/activities"
	"rotator/internal/pgtest"
	"rotator/postgres"
	"rotator/providers/providertest"
	"rotator/vault"
	"rotator/workflows"
)

// How long the simulated outages last. PostgreSQL's is longer than the
// 30 s the issue names on purpose: the login check used to give up after
// six attempts (about 30 s), so a 30 s outage passed or rolled back by a
// few hundred milliseconds. Vault's is shorter, since its client also
// retries within each attempt.
const (
	pgOutage    = 40 * time.Second
	vaultOutage = 20 * time.Second
)

// startRotation starts the fixture's rotation with the SDK, as the UI
// would, and returns its workflow ID.
func startRotation(t *testing.T, ctx context.Context, f *fixture, workflowType string, emergency bool) string {
	t.Helper()
	id := workflows.WorkflowID(f.target)
	if _, err := devstack.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: f.taskQueue},
		workflowType, workflows.RotateInput{Target: f.target, Emergency: emergency, RequestedBy: "e2e"}); err != nil {
		t.Fatal(err)
	}
	return id
}

// finished waits for the rotation and fails the test unless it is done.
func finished(t *testing.T, ctx context.Context, id string) workflows.Status {
	t.Helper()
	var st workflows.Status
	if err := devstack.temporal.GetWorkflow(ctx, id, "").Get(ctx, &st); err != nil {
		t.Fatalf("the rotation did not survive the fault: %v", err)
	}
	if st.Step != workflows.StepDone {
		t.Fatalf("rotation ended at step %s", st.Step)
	}
	return st
}

// failedWith waits for the rotation and returns its failure, which must be
// an application error.
func failedWith(t *testing.T, ctx context.Context, id string) *temporal.ApplicationError {
	t.Helper()
	err := devstack.temporal.GetWorkflow(ctx, id, "").Get(ctx, nil)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		t.Fatalf("want the rotation to fail with an application error, got %v; %s", err, lastStatus(id))
	}
	return app
}

// rolledBack waits for an aborted rotation to end and checks that it
// completed, not failed, with the result step rolled-back and an outcome
// that says so: failed is kept for what a person must look at.
func rolledBack(t *testing.T, ctx context.Context, id string) workflows.Status {
	t.Helper()
	var st workflows.Status
	if err := devstack.temporal.GetWorkflow(ctx, id, "").Get(ctx, &st); err != nil {
		t.Fatalf("want the aborted rotation to complete rolled back, got %v; %s", err, lastStatus(id))
	}
	if st.Step != workflows.StepRolledBack || !strings.Contains(st.Outcome, "rolled back") || st.Aborted == nil {
		t.Fatalf("want result step rolled-back with an outcome and who aborted, got step %s, outcome %q, aborted %+v", st.Step, st.Outcome, st.Aborted)
	}
	return st
}

// queryStatus reads a rotation's status through the status query.
func queryStatus(ctx context.Context, id string) (workflows.Status, error) {
	var st workflows.Status
	v, err := devstack.temporal.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
	if err != nil {
		return st, fmt.Errorf("query %s: %w", id, err)
	}
	return st, v.Get(&st)
}

// lastStatus says where a rotation that did not end in time stands.
func lastStatus(id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := queryStatus(ctx, id)
	if err != nil {
		return fmt.Sprintf("status query: %v", err)
	}
	return fmt.Sprintf("it stands at step %s (since %s), error %q, left %q", st.Step, st.StepStartedAt.Format(time.RFC3339), st.Error, st.Left)
}

// TestOutagePostgresDuringApply: PostgreSQL is unreachable for 30 s from
// the moment ALTER ROLE's step begins. The apply step is retried with
// backoff, the rotation finishes, and the new password logs in.
func TestOutagePostgresDuringApply(t *testing.T) {
	t.Parallel()
	testPostgresOutage(t, workflows.StepApply, "ApplyPassword")
}

// TestOutagePostgresDuringVerify: the same outage from the moment the
// verify step begins; the login check outlasts it instead of rolling back.
func TestOutagePostgresDuringVerify(t *testing.T) {
	t.Parallel()
	testPostgresOutage(t, workflows.StepVerify, "VerifyLogin")
}

func testPostgresOutage(t *testing.T, step workflows.Step, activity string) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	su := pgtest.Superuser(t, ctx)
	role := "e2e_outage_" + randomSuffix()
	pw0 := pgtest.CreateLoginRole(t, ctx, su, role, true)
	var id atomic.Value
	id.Store("")
	pg := pgtest.Server()
	proxy := newOutageProxy(t, net.JoinHostPort(pg.Host, strconv.Itoa(pg.Port)), pgOutage, func([]byte) bool {
		return id.Load() != "" && atStep(id.Load().(string), step)()
	})
	d := dbConsumer(false)
	f := newFixtureWith(t, ctx, fixtureSpec{
		secretData: map[string]string{"username": role, "password": pw0},
		targetYAML: fmt.Sprintf("    kind: postgres\n    postgres:\n      host: 127.0.0.1\n      port: %d\n      database: postgres\n      sslMode: verify-full\n      role: %s\n",
			proxy.port(), role),
	}, d.deployment)
	id.Store(workflows.WorkflowID(f.target))

	wid := startRotation(t, ctx, f, workflows.TypeRotateDatabasePassword, true)
	finished(t, ctx, wid)
	began, down, up := proxy.happened()
	if !began {
		t.Fatal(errNoOutage)
	}
	run := firstRun(t, ctx, wid, activity)
	if run.attempt < 2 || run.failure != "" {
		t.Errorf("%s: attempt %d, failure %q: want it retried through the outage and completed", activity, run.attempt, run.failure)
	}
	if step == workflows.StepVerify && run.attempt <= 6 {
		t.Errorf("VerifyLogin needed %d attempts: the outage did not outlast the six attempts the check used to stop at", run.attempt)
	}
	t.Logf("figure: %s retried %d attempts through a %s outage; done %s after it was scheduled, %s after the outage ended (last failure: %s)",
		activity, run.attempt, up.Sub(down).Round(time.Second), run.took.Round(time.Second), time.Since(up).Round(time.Second), run.lastFailure)

	_, pw1 := f.credentials(ctx, f.secret+"-2")
	if err := pgtest.CanLogin(ctx, role, pw1); err != nil {
		t.Errorf("the new password does not log in after the outage: %v", err)
	}
	if err := pgtest.CanLogin(ctx, role, pw0); !postgres.IsAuthFailure(err) {
		t.Errorf("single-user: the old password should be refused, got %v", err)
	}
	if n := referencesTo(f.deploymentSpec(ctx, "app"), f.secret+"-2"); n != 2 {
		t.Errorf("the consumer has %d references to the new Secret, want 2", n)
	}
	assertNoSecretsInHistory(t, ctx, wid, []byte(pw0), []byte(pw1))
}

// TestOutageVaultDuringStage: Vault is unreachable from the moment stage
// begins. Staging is retried, the rotation finishes, and Vault's labels
// and record match the Secret that was rolled out.
func TestOutageVaultDuringStage(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	addr, err := url.Parse(devstack.vault.Address())
	if err != nil {
		t.Fatal(err)
	}
	var id atomic.Value
	id.Store("")
	// Stage is a local activity inside a workflow task, where the status
	// query cannot look: the outage begins with stage's first request for
	// the target's record (preflight only reads the mount).
	vaultPath := "e2e/outage-" + randomSuffix()
	proxy := newOutageProxy(t, addr.Host, vaultOutage, func(chunk []byte) bool {
		return id.Load() != "" && (bytes.Contains(chunk, []byte("/v1/secret/data/"+vaultPath)) ||
			bytes.Contains(chunk, []byte("/v1/secret/metadata/"+vaultPath)))
	})
	f := newFixtureWith(t, ctx, jwtSpec("    vault: {path: "+vaultPath+"}\n", func(t *testing.T, _ context.Context, _ string, d *activities.Deps) {
		vc, err := devstack.vault.Clone()
		if err != nil {
			t.Fatal(err)
		}
		if err := vc.SetAddress("http://" + proxy.addr); err != nil {
			t.Fatal(err)
		}
		vc.SetToken(devstack.vault.Token())
		d.Vault = vc
	}), deployment("api", 2, envRef("app-jwt")))
	id.Store(workflows.WorkflowID(f.target))
	oldData, _ := f.secretData(ctx, f.secret)

	wid := startRotation(t, ctx, f, workflows.TypeRotateJWTSecret, true)
	finished(t, ctx, wid)
	began, down, up := proxy.happened()
	if !began {
		t.Fatal(errNoOutage)
	}
	run := firstRun(t, ctx, wid, "StageSecret")
	if run.attempt < 2 || run.failure != "" {
		t.Errorf("StageSecret: attempt %d, failure %q: want it retried through the outage and completed", run.attempt, run.failure)
	}
	t.Logf("figure: StageSecret retried %d attempts through a %s Vault outage; %s after it was scheduled",
		run.attempt, up.Sub(down).Round(time.Second), run.took.Round(time.Second))

	newData, ok := f.secretData(ctx, f.secret+"-2")
	if !ok {
		t.Fatal("the new Secret does not exist")
	}
	store := vault.NewStore(devstack.vault, "secret")
	labels, latest, err := store.Labels(ctx, vaultPath)
	if err != nil || labels.Current != 1 || labels.Pending != 0 || latest != 1 {
		t.Errorf("Vault labels after the outage: %+v (latest version %d), %v; want CURRENT=1, no PENDING, one version", labels, latest, err)
	}
	if rec, err := store.Read(ctx, vaultPath, 1); err != nil || rec["secret"] != string(newData["secret"]) {
		t.Errorf("Vault version 1 does not record the rolled-out key: %v", err)
	}
	if n := referencesTo(f.deploymentSpec(ctx, "api"), f.secret+"-2"); n != 1 {
		t.Errorf("the consumer has %d references to the new Secret, want 1", n)
	}
	assertNoSecretsInHistory(t, ctx, wid, oldData["secret"], newData["secret"])
}

// TestOutageKubeServerErrors: the apiserver answers 503 to the first
// Secret create, and 503, 500 and a 409 conflict to the first three
// patches of the Deployment. Each step is retried with backoff and the
// rotation finishes with exactly one rollout.
func TestOutageKubeServerErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var ft *faultTransport
	f := newFixtureWith(t, ctx, jwtSpec("", func(t *testing.T, _ context.Context, _ string, d *activities.Deps) {
		d.Kube, ft = faultyKube(t, nil,
			&kubeFault{method: http.MethodPost, resource: "secrets", statuses: []int{http.StatusServiceUnavailable}},
			&kubeFault{method: http.MethodPatch, resource: "deployments",
				statuses: []int{http.StatusServiceUnavailable, http.StatusInternalServerError, http.StatusConflict}})
	}), deployment("api", 2, envFromAndVolume("app-jwt")))
	oldData, _ := f.secretData(ctx, f.secret)
	rsBefore := f.replicaSets(ctx, "api")

	wid := startRotation(t, ctx, f, workflows.TypeRotateJWTSecret, true)
	finished(t, ctx, wid)
	if ft.injected("POST secrets") != 1 || ft.injected("PATCH deployments") != 3 {
		t.Fatalf("injected %d Secret and %d Deployment faults, want 1 and 3: the test proved nothing",
			ft.injected("POST secrets"), ft.injected("PATCH deployments"))
	}
	// Each injected fault costs one attempt; a loaded Temporal server may
	// add a timed-out one, hence at least.
	for activity, want := range map[string]int32{"StageSecret": 2, "PromoteAndAwait": 4} {
		run := firstRun(t, ctx, wid, activity)
		if run.attempt < want || run.failure != "" {
			t.Errorf("%s: attempt %d, failure %q; want attempt %d or more, completed", activity, run.attempt, run.failure, want)
		}
		t.Logf("figure: %s completed at attempt %d, %s after it was scheduled (last failure: %s)", activity, run.attempt, run.took.Round(time.Second), run.lastFailure)
	}
	if n := f.replicaSets(ctx, "api") - rsBefore; n != 1 {
		t.Errorf("%d rollouts, want exactly one", n)
	}
	if n := referencesTo(f.deploymentSpec(ctx, "api"), f.secret+"-2"); n != 3 {
		t.Errorf("the consumer has %d references to the new Secret, want 3", n)
	}
	newData, _ := f.secretData(ctx, f.secret+"-2")
	assertNoSecretsInHistory(t, ctx, wid, oldData["secret"], newData["secret"])
}

// TestOutageConcurrentEditOfDeployment: someone edits the Deployment's
// pod template (adds an env var in front) right before promote's patch.
// The apiserver refuses the stale patch (its guard fails: 422), promote
// reads the workload again and repoints it, and the rotation finishes
// without undoing the other edit.
func TestOutageConcurrentEditOfDeployment(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var edited atomic.Bool
	var ft *faultTransport
	f := newFixtureWith(t, ctx, jwtSpec("", func(t *testing.T, _ context.Context, ns string, d *activities.Deps) {
		d.Kube, ft = faultyKube(t, nil, &kubeFault{method: http.MethodPatch, resource: "deployments", before: func(*http.Request) {
			deployments := devstack.kube.AppsV1().Deployments(ns)
			dep, err := deployments.Get(ctx, "api", metav1.GetOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			c := &dep.Spec.Template.Spec.Containers[0]
			c.Env = append([]corev1.EnvVar{{Name: "LOG_LEVEL", Value: "debug"}}, c.Env...)
			if _, err := deployments.Update(ctx, dep, metav1.UpdateOptions{}); err != nil {
				t.Error(err)
				return
			}
			edited.Store(true)
		}})
	}), deployment("api", 2, envRef("app-jwt")))
	oldData, _ := f.secretData(ctx, f.secret)

	wid := startRotation(t, ctx, f, workflows.TypeRotateJWTSecret, true)
	finished(t, ctx, wid)
	if !edited.Load() {
		t.Fatal("the concurrent edit never happened: the test proved nothing")
	}
	// Whether promote retries within the attempt or Temporal retries it,
	// the first patch must have been refused and a later one accepted.
	answers := ft.answers("PATCH deployments")
	if len(answers) < 2 || answers[0] != http.StatusUnprocessableEntity || answers[len(answers)-1] != http.StatusOK {
		t.Errorf("the apiserver answered promote's patches %v; want the stale one refused (422), then one accepted", answers)
	}
	run := firstRun(t, ctx, wid, "PromoteAndAwait", "Promote")
	t.Logf("figure: concurrent edit: patches answered %v, Promote completed at attempt %d, %s after it was scheduled",
		answers, run.attempt, run.took.Round(time.Millisecond))
	spec := f.deploymentSpec(ctx, "api")
	if env := spec.Containers[0].Env; len(env) != 2 || env[0].Name != "LOG_LEVEL" {
		t.Errorf("the concurrent edit was lost: env %+v", env)
	}
	if referencesTo(spec, f.secret+"-2") != 1 || referencesTo(spec, f.secret) != 0 {
		t.Errorf("after the retry the consumer is not on %s-2 alone", f.secret)
	}
	f.waitRolledOut(ctx, "api")
	newData, _ := f.secretData(ctx, f.secret+"-2")
	assertNoSecretsInHistory(t, ctx, wid, oldData["secret"], newData["secret"])
}

// TestOutageForbiddenFailsFast: the worker's ServiceAccount may not patch
// Deployments (its Role lacks the verb). Promote fails on the first
// attempt with a message naming the verb and the resource, compensation
// puts everything back, and the old Secret stays referenced and intact.
func TestOutageForbiddenFailsFast(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	f := newFixtureWith(t, ctx, jwtSpec("", func(t *testing.T, ctx context.Context, ns string, d *activities.Deps) {
		user := limitedServiceAccount(t, ctx, ns)
		d.Kube, _ = faultyKube(t, func(c *rest.Config) { c.Impersonate = rest.ImpersonationConfig{UserName: user} })
	}), deployment("api", 2, envFromAndVolume("app-jwt")))
	oldData, _ := f.secretData(ctx, f.secret)
	rsBefore := f.replicaSets(ctx, "api")

	wid := startRotation(t, ctx, f, workflows.TypeRotateJWTSecret, false)
	app := failedWith(t, ctx, wid)
	msg := app.Message()
	var cause *temporal.ApplicationError
	if app.Type() != activities.ErrRotationFailed || !errors.As(app.Unwrap(), &cause) || cause.Type() != activities.ErrBadInput ||
		!strings.Contains(msg, `cannot patch resource "deployments"`) || !strings.Contains(msg, "repoint deployment/api") ||
		!strings.Contains(msg, "rolled back: consumers are on "+f.secret+" again") {
		t.Fatalf("want a roll back caused by a BadInput naming the verb and the resource; got %s: %s", app.Type(), msg)
	}
	run := firstRun(t, ctx, wid, "PromoteAndAwait", "Promote")
	if run.attempt != 1 || !strings.Contains(run.failure, "forbidden") {
		t.Errorf("Promote: attempt %d, failure %q; want one attempt, refused", run.attempt, run.failure)
	}
	t.Logf("figure: 403 failed Promote at attempt %d, %s after it was scheduled; rotation failed with: %s", run.attempt, run.took.Round(time.Millisecond), msg)
	if n := referencesTo(f.deploymentSpec(ctx, "api"), f.secret); n != 3 {
		t.Errorf("the consumer has %d references to the old Secret, want 3", n)
	}
	if n := f.replicaSets(ctx, "api") - rsBefore; n != 0 {
		t.Errorf("%d rollouts happened", n)
	}
	if data, ok := f.secretData(ctx, f.secret); !ok || !bytes.Equal(data["secret"], oldData["secret"]) {
		t.Error("the old Secret is gone or changed")
	}
	if _, ok := f.secretData(ctx, f.secret+"-2"); ok {
		t.Error("compensation left the new Secret behind")
	}
	assertNoSecretsInHistory(t, ctx, wid, oldData["secret"])
}

// limitedServiceAccount creates a ServiceAccount whose Role is deploy/'s
// minus patch on workloads, and returns the user name to impersonate.
func limitedServiceAccount(t *testing.T, ctx context.Context, ns string) string {
	t.Helper()
	k := devstack.kube
	const name = "rotator-no-patch"
	if _, err := k.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "create", "patch", "delete"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"batch"}, Resources: []string{"cronjobs"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"list"}},
		{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"list"}},
		{APIGroups: []string{""}, Resources: []string{"pods", "replicationcontrollers"}, Verbs: []string{"list"}},
		{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses"}, Verbs: []string{"get", "list"}},
	}}
	if _, err := k.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}}}
	if _, err := k.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return "system:serviceaccount:" + ns + ":" + name
}

// TestOutageMissingDeploymentFailsFast: the catalog names a consumer that
// does not exist. Preflight refuses at once, naming it, and nothing is
// created or changed.
func TestOutageMissingDeploymentFailsFast(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := newFixture(t, ctx, "    consumers:\n      - {kind: Deployment, name: api}\n      - {kind: Deployment, name: ghost}\n",
		deployment("api", 1, envRef("app-jwt")))
	before, err := devstack.kube.CoreV1().Secrets(f.ns).Get(ctx, f.secret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	wid := startRotation(t, ctx, f, workflows.TypeRotateJWTSecret, false)
	app := failedWith(t, ctx, wid)
	if app.Type() != activities.ErrBadInput || !strings.Contains(app.Message(), "consumers[1]: deployment/ghost does not exist in namespace "+f.ns) {
		t.Fatalf("want a BadInput naming consumers[1], got %s: %s", app.Type(), app.Message())
	}
	if run := firstRun(t, ctx, wid, "Preflight"); run.attempt != 1 {
		t.Errorf("Preflight ran %d attempts, want 1", run.attempt)
	}
	assertUntouched(t, ctx, f, before, "api", 1)
}

// TestOutageMissingRoleFailsFast: an alternating-users target whose login
// roles were never created. The database preflight refuses at once with
// the command that fixes it, and nothing changes: the Secret, the
// consumer, the owner's password.
func TestOutageMissingRoleFailsFast(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	su := pgtest.Superuser(t, ctx)
	owner := "e2e_norole_" + randomSuffix()
	pw0 := pgtest.CreateLoginRole(t, ctx, su, owner, true)
	d := dbConsumer(false)
	d.prepare = func(t *testing.T, ctx context.Context, ns string) { pgtest.CopyAdminSecret(t, ctx, devstack.kube, ns) }
	f := dbFixture(t, ctx, owner, pw0, fmt.Sprintf("      role: %s\n      strategy: alternating-users\n      adminSecret: {namespace: %%NS%%, name: pg-admin}\n", owner), d)
	before, err := devstack.kube.CoreV1().Secrets(f.ns).Get(ctx, f.secret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	wid := startRotation(t, ctx, f, workflows.TypeRotateDatabasePassword, false)
	app := failedWith(t, ctx, wid)
	want := fmt.Sprintf("role %q does not exist: run 'starter postgres setup %s'", owner+"_a", f.target)
	if app.Type() != activities.ErrBadInput || !strings.Contains(app.Message(), want) {
		t.Fatalf("want a BadInput with %q, got %s: %s", want, app.Type(), app.Message())
	}
	if run := firstRun(t, ctx, wid, "PreflightDatabase"); run.attempt != 1 {
		t.Errorf("PreflightDatabase ran %d attempts, want 1", run.attempt)
	}
	assertUntouched(t, ctx, f, before, "app", 2)
	if err := pgtest.CanLogin(ctx, owner, pw0); err != nil {
		t.Errorf("the owner's password stopped working: %v", err)
	}
}

// assertUntouched checks that a failed preflight changed nothing: the
// Secret is as it was (not even adopted), no other version exists, and
// the consumer still reads it.
func assertUntouched(t *testing.T, ctx context.Context, f *fixture, before *corev1.Secret, consumer string, refs int) {
	t.Helper()
	after, err := devstack.kube.CoreV1().Secrets(f.ns).Get(ctx, f.secret, metav1.GetOptions{})
	if err != nil || after.ResourceVersion != before.ResourceVersion {
		t.Errorf("a failed preflight changed Secret %s: %v", f.secret, err)
	}
	list, err := devstack.kube.CoreV1().Secrets(f.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		if strings.HasPrefix(s.Name, f.secret+"-") {
			t.Errorf("a failed preflight created Secret %s", s.Name)
		}
	}
	if n := referencesTo(f.deploymentSpec(ctx, consumer), f.secret); n != refs {
		t.Errorf("the consumer has %d references to %s, want %d", n, f.secret, refs)
	}
}

// TestOutageProviderRateLimitOnRevoke: OpenAI's admin API answers 429
// twice when the old key is revoked. Revoke is retried with backoff, each
// old key is revoked exactly once, and the rotation finishes. (429 on
// the key check is TestAPIKeysEmergencyWithoutVault's.)
func TestOutageProviderRateLimitOnRevoke(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l := newLLM(t, ctx, false)
	revoke := "/v1/organization/projects/" + l.openai.ProjectID() + "/api_keys/" + l.oldIDs[0]
	l.openai.FailNext(revoke, 2, http.StatusTooManyRequests)

	l.rotate(ctx, "--emergency")
	newOpenAI, newAnthropic := l.newKeys()
	if out, err := l.stageKeys(ctx, newOpenAI, newAnthropic); err != nil {
		t.Fatalf("stage-keys: %v\n%s", err, out)
	}
	id := workflows.WorkflowID(l.target)
	finished(t, ctx, id)
	if n := l.openai.Requests(http.MethodDelete, revoke); n != 3 {
		t.Errorf("OpenAI revoke called %d times, want 3 (two 429s, then the revocation)", n)
	}
	run := firstRun(t, ctx, id, "RevokeOldKeys")
	if run.attempt < 3 || run.failure != "" {
		t.Errorf("RevokeOldKeys: attempt %d, failure %q; want 3 or more, completed", run.attempt, run.failure)
	}
	t.Logf("figure: RevokeOldKeys completed at attempt %d, %s after it was scheduled", run.attempt, run.took.Round(time.Second))
	if l.openai.KeyStatus(l.oldIDs[0]) != providertest.StatusDeleted || l.anthropic.KeyStatus(l.oldIDs[1]) != providertest.StatusInactive {
		t.Error("an old key is still valid")
	}
	if l.openai.RevocationsOf(l.oldIDs[0]) != 1 || l.anthropic.RevocationsOf(l.oldIDs[1]) != 1 {
		t.Errorf("revocations: openai %d, anthropic %d; want exactly one each",
			l.openai.RevocationsOf(l.oldIDs[0]), l.anthropic.RevocationsOf(l.oldIDs[1]))
	}
	assertNoSecretsInHistory(t, ctx, id, []byte(l.oldOpenAI), []byte(l.oldAnthropic), []byte(newOpenAI), []byte(newAnthropic))
}
