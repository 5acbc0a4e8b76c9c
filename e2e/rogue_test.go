package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"rotator/activities"
	"rotator/internal/pgtest"
	"rotator/providers/providertest"
	"rotator/vault"
)

// Whoever can reach the Temporal frontend can start a workflow of their own,
// on a task queue of their own, and have it schedule rotator's activities
// by name on the worker's task queue with inputs of their choosing. These
// tests are that rogue workflow: each forged input must fail for good,
// naming the field, and change nothing.

// rogueCall is one activity the rogue workflow schedules.
type rogueCall struct {
	Activity string          `json:"activity"`
	Queue    string          `json:"queue"`
	Input    json.RawMessage `json:"input"`
}

// rogueWorkflow schedules the activity by its type name on the rotator
// worker's task queue, retrying what the worker lets it retry.
func rogueWorkflow(ctx workflow.Context, c rogueCall) (json.RawMessage, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           c.Queue,
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumAttempts: 5},
	})
	var out json.RawMessage
	err := workflow.ExecuteActivity(ctx, c.Activity, c.Input).Get(ctx, &out)
	return out, err
}

// rogue is a worker of the attacker's, on its own task queue, aimed at
// one rotator worker's queue.
type rogue struct {
	t      *testing.T
	queue  string
	target string // the rotator worker's task queue
}

func newRogue(t *testing.T, target string) *rogue {
	t.Helper()
	r := &rogue{t: t, queue: "rogue-" + randomSuffix(), target: target}
	w := worker.New(devstack.temporal, r.queue, worker.Options{})
	w.RegisterWorkflowWithOptions(rogueWorkflow, workflow.RegisterOptions{Name: "Rogue"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return r
}

// call runs one activity through the rogue workflow and decodes its result
// into out, when given.
func (r *rogue) call(ctx context.Context, activity string, in, out any) error {
	r.t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		r.t.Fatal(err)
	}
	run, err := devstack.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "rogue/" + activity + "/" + randomSuffix(), TaskQueue: r.queue},
		"Rogue", rogueCall{Activity: activity, Queue: r.target, Input: b})
	if err != nil {
		r.t.Fatal(err)
	}
	var raw json.RawMessage
	if err := run.Get(ctx, &raw); err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			r.t.Fatal(err)
		}
	}
	return nil
}

// mustCall is call for a legitimate step the rogue uses to learn a plan.
func (r *rogue) mustCall(ctx context.Context, activity string, in, out any) {
	r.t.Helper()
	if err := r.call(ctx, activity, in, out); err != nil {
		r.t.Fatalf("%s: %v", activity, err)
	}
}

// refused checks that the forged call failed for good, as bad input, naming
// the field.
func (r *rogue) refused(ctx context.Context, activity string, in any, field string) {
	r.t.Helper()
	err := r.call(ctx, activity, in, nil)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || app.Type() != activities.ErrBadInput {
		r.t.Fatalf("%s with a forged %s: %v; want a non-retryable %s", activity, field, err, activities.ErrBadInput)
	}
	if !strings.Contains(app.Message(), field) || !strings.Contains(app.Message(), "refused") {
		r.t.Fatalf("%s with a forged %s: %q; want it to name the field and say the input was refused", activity, field, app.Message())
	}
	r.t.Logf("%s refused: %s", activity, app.Message())
}

func (f *fixture) secretExists(ctx context.Context, ns, name string) bool {
	f.t.Helper()
	_, err := devstack.kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		f.t.Fatal(err)
	}
	return err == nil
}

// TestRogueWorkflowCannotPointTheWorkerElsewhere: another namespace, an
// unlabelled Secret and a Vault path outside the target's.
func TestRogueWorkflowCannotPointTheWorkerElsewhere(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	vaultPath := "e2e/" + randomSuffix()
	f := newFixture(t, ctx, "    vault: {path: "+vaultPath+"}\n", deployment("app", 1, envRef("app-jwt")))
	r := newRogue(t, f.taskQueue)
	k := devstack.kube

	// What the rogue can learn: preflight reads and changes nothing.
	var plan activities.Plan
	r.mustCall(ctx, "Preflight", activities.PreflightInput{Target: f.target}, &plan)

	// (1) Another namespace, holding a Secret of the base's name.
	other := "e2e-other-" + randomSuffix()
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.CoreV1().Namespaces().Delete(context.Background(), other, metav1.DeleteOptions{}) })
	labelled := map[string]string{activities.LabelTarget: f.target, activities.LabelVersion: "3"}
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: f.secret}, StringData: map[string]string{"secret": "theirs-" + randomSuffix()}},
		// Even the target's labels do not make another namespace's
		// Secret the target's.
		{ObjectMeta: metav1.ObjectMeta{Name: f.secret + "-3", Labels: labelled}, StringData: map[string]string{"secret": "theirs-" + randomSuffix()}},
	} {
		if _, err := k.CoreV1().Secrets(other).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	forged := plan
	forged.Namespace = other
	r.refused(ctx, "StageSecret", activities.StageInput{Plan: forged}, "namespace")
	r.refused(ctx, "RetireSecret", activities.RetireInput{Secret: activities.SecretRef{Namespace: other, Name: f.secret + "-3"}}, "is no version of a target")
	r.refused(ctx, "Promote", activities.PromoteInput{Target: f.target, Namespace: other, From: plan.Current,
		To: activities.SecretRef{Name: f.secret + "-3"}, Consumers: plan.Consumers}, "namespace")
	for _, s := range []struct{ ns, name string }{{other, f.secret}, {other, f.secret + "-3"}} {
		if !f.secretExists(ctx, s.ns, s.name) {
			t.Errorf("Secret %s/%s is gone", s.ns, s.name)
		}
	}
	if f.secretExists(ctx, other, f.secret+"-2") || f.secretExists(ctx, f.ns, f.secret+"-2") {
		t.Error("a forged stage created a version")
	}

	// (2) Unlabelled Secrets in the target's namespace: one named like a
	// version, one not.
	for _, name := range []string{f.secret + "-7", "payments-token"} {
		if _, err := k.CoreV1().Secrets(f.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name},
			StringData: map[string]string{"secret": "someone-elses-" + randomSuffix()}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r.refused(ctx, "RetireSecret", activities.RetireInput{Secret: activities.SecretRef{Namespace: f.ns, Name: f.secret + "-7"}}, "labelled "+activities.LabelTarget)
	r.refused(ctx, "RetireSecret", activities.RetireInput{Secret: activities.SecretRef{Namespace: f.ns, Name: "payments-token"}}, "is no version of a target")
	r.refused(ctx, "RetireSecret", activities.RetireInput{Secret: activities.SecretRef{Namespace: f.ns, Name: f.secret + "-7"}, Keep: true}, "labelled "+activities.LabelTarget)
	forged = plan
	forged.Current = activities.SecretRef{Namespace: f.ns, Name: f.secret + "-7", Version: 7}
	r.refused(ctx, "StageSecret", activities.StageInput{Plan: forged}, "labelled "+activities.LabelTarget)
	r.refused(ctx, "Promote", activities.PromoteInput{Target: f.target, Namespace: f.ns, From: plan.Current,
		To: activities.SecretRef{Name: "payments-token"}, Consumers: plan.Consumers}, "to.name")
	for _, name := range []string{f.secret + "-7", "payments-token", f.secret} {
		s, err := k.CoreV1().Secrets(f.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("Secret %s after the forged calls: %v; want it there, untouched", name, err)
			continue
		}
		if s.Labels[activities.LabelStage] != "" {
			t.Errorf("Secret %s after the forged calls: labels %v; want it untouched", name, s.Labels)
		}
	}
	// StageSecret names the version it creates from the plan's nextVersion.
	if next := fmt.Sprintf("%s-%d", f.secret, plan.NextVersion); f.secretExists(ctx, f.ns, next) {
		t.Errorf("a forged stage created %s", next)
	}
	if n := referencesTo(f.deploymentSpec(ctx, "app"), f.secret); n != 1 {
		t.Errorf("the consumer has %d references to %s, want 1: promote must not have moved it", n, f.secret)
	}

	// (5) A Vault path outside the target's: another team's secret, whose
	// pending version must not become CURRENT nor be deleted.
	store := vault.NewStore(devstack.vault, "secret")
	victim := "e2e/victim-" + randomSuffix()
	if _, _, err := store.StagePending(ctx, victim, "another-team", "their-run", map[string]string{"token": "victim-" + randomSuffix()}); err != nil {
		t.Fatal(err)
	}
	r.refused(ctx, "PromoteVersion", activities.VaultInput{Vault: activities.VaultPlan{Mount: "secret", Path: victim}, Version: 1}, "vault")
	r.refused(ctx, "RollbackVersion", activities.VaultInput{Vault: activities.VaultPlan{Mount: "secret", Path: victim}, Version: 1}, "vault")
	forged = plan
	forged.Vault = &activities.VaultPlan{Mount: "secret", Path: victim}
	r.refused(ctx, "StageSecret", activities.StageInput{Plan: forged}, "vault")
	labels, _, err := store.Labels(ctx, victim)
	if err != nil || labels.Pending != 1 || labels.Current != 0 {
		t.Errorf("the victim path's labels after the forged calls: %+v, %v; want version 1 still PENDING", labels, err)
	}
	if data, err := store.Read(ctx, victim, 1); err != nil || data["token"] == "" {
		t.Errorf("the victim's version 1 after the forged rollback: %v", err)
	}
	if _, err := store.Read(ctx, vaultPath, 1); !vault.IsNotFound(err) {
		t.Errorf("the target's own Vault path got a version from forged calls: %v", err)
	}
}

// TestRogueWorkflowCannotSendAPasswordElsewhere: ApplyPassword with a host
// not in the catalog, and with another Secret as the "old" credentials.
func TestRogueWorkflowCannotSendAPasswordElsewhere(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	su := pgtest.Superuser(t, ctx)
	role := "e2e_rogue_" + randomSuffix()
	pw0 := pgtest.CreateLoginRole(t, ctx, su, role, true)
	f := dbFixture(t, ctx, role, pw0, fmt.Sprintf("      role: %s\n      strategy: single-user\n", role), dbConsumer(false))
	devstack.remember([]byte(pw0))
	r := newRogue(t, f.taskQueue)

	// The attacker's server: any connection to it is a password sent away.
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var dialed atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			dialed.Add(1)
			c.Close()
		}
	}()
	if _, err := devstack.kube.CoreV1().Secrets(f.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pg-admin"},
		StringData: map[string]string{"username": "postgres", "password": "admin-" + randomSuffix()}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var plan activities.Plan
	r.mustCall(ctx, "Preflight", activities.PreflightInput{Target: f.target}, &plan)
	r.mustCall(ctx, "PreflightDatabase", plan, &plan)
	port := l.Addr().(*net.TCPAddr).Port
	forged := plan
	pp := *plan.Postgres
	pp.Server.Host, pp.Server.Port = "127.0.0.2", port
	forged.Postgres = &pp
	next := activities.SecretRef{Namespace: f.ns, Name: fmt.Sprintf("%s-%d", plan.Base, plan.NextVersion)}
	// (3) The current password sent to a host of the caller's choosing.
	r.refused(ctx, "ApplyPassword", activities.DatabaseInput{Plan: forged, Old: plan.Current, New: plan.Current}, "postgres.host")
	r.refused(ctx, "VerifyLogin", activities.DatabaseInput{Plan: forged, Old: plan.Current, New: plan.Current}, "postgres.host")
	weaker := map[bool]string{true: "prefer", false: "disable"}[plan.Postgres.Server.SSLMode == "disable"]
	pp.Server.Host, pp.Server.Port, pp.Server.SSLMode = plan.Postgres.Server.Host, plan.Postgres.Server.Port, weaker
	r.refused(ctx, "ApplyPassword", activities.DatabaseInput{Plan: forged, Old: plan.Current, New: next}, "postgres.sslMode")
	// Another Secret of the namespace as the credentials to log in with.
	r.refused(ctx, "ApplyPassword", activities.DatabaseInput{Plan: plan, Old: activities.SecretRef{Name: "pg-admin"}, New: plan.Current}, "old.name")
	r.refused(ctx, "RestorePassword", activities.DatabaseInput{Plan: plan, Old: activities.SecretRef{Name: "pg-admin"}, New: plan.Current}, "old.name")
	if n := dialed.Load(); n != 0 {
		t.Errorf("the attacker's server got %d connections", n)
	}
	if err := pgtest.CanLogin(ctx, role, pw0); err != nil {
		t.Errorf("the role's password changed or stopped working: %v", err)
	}
	if f.secretExists(ctx, f.ns, next.Name) {
		t.Errorf("Secret %s exists after forged calls", next.Name)
	}
}

// TestRogueWorkflowCannotRevokeOtherKeys: RevokeOldKeys with a key id the
// worker never recorded, and staged keys sent to a URL not in the catalog.
func TestRogueWorkflowCannotRevokeOtherKeys(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l := newLLM(t, ctx, false)
	r := newRogue(t, l.taskQueue)
	// Another application's key in the same project, which the admin key
	// could revoke.
	victimKey := openAIKey()
	devstack.remember([]byte(victimKey))
	victimID := l.openai.AddKey(victimKey)

	var plan activities.Plan
	r.mustCall(ctx, "Preflight", activities.PreflightInput{Target: l.target}, &plan)
	r.mustCall(ctx, "PreflightKeys", plan, &plan)
	if plan.APIKeys.Providers[0].OldKeyID != l.oldIDs[0] {
		t.Fatalf("preflight found OpenAI key %q, want %s", plan.APIKeys.Providers[0].OldKeyID, l.oldIDs[0])
	}
	forged := plan
	forged.APIKeys = &activities.APIKeysPlan{StagingSecret: plan.APIKeys.StagingSecret, StageTimeout: plan.APIKeys.StageTimeout,
		Probe: plan.APIKeys.Probe, Providers: append([]activities.ProviderPlan(nil), plan.APIKeys.Providers...)}
	// (4) A key id that was never recorded, and the real old key's id
	// before any rotation replaced it.
	forged.APIKeys.Providers[0].OldKeyID = victimID
	r.refused(ctx, "RevokeOldKeys", forged, "apiKeys.providers[0].oldKeyID")
	r.refused(ctx, "RevokeOldKeys", plan, "apiKeys.providers[0].oldKeyID")

	// Staged keys sent to a server of the caller's choosing.
	var seen atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { seen.Add(1) }))
	defer attacker.Close()
	// As starter stage-keys leaves them; it needs a running rotation.
	newOpenAI, newAnthropic := l.newKeys()
	devstack.remember([]byte(newOpenAI), []byte(newAnthropic))
	if _, err := devstack.kube.CoreV1().Secrets(l.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Name:   activities.StagingSecretName(plan.Base),
		Labels: map[string]string{activities.LabelManagedBy: activities.ManagedByValue, activities.LabelTarget: l.target, activities.LabelStage: activities.StageStaged}},
		StringData: map[string]string{"openai-api-key": newOpenAI, "anthropic-api-key": newAnthropic}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	forged.APIKeys.Providers[0].OldKeyID = plan.APIKeys.Providers[0].OldKeyID
	forged.APIKeys.Providers[0].BaseURL = attacker.URL
	r.refused(ctx, "VerifyStagedKeys", forged, "apiKeys.providers[0].baseURL")
	r.refused(ctx, "DiscardStagedKeys", activities.Plan{Target: l.target, Kind: plan.Kind, Namespace: "kube-system", Base: plan.Base,
		Key: plan.Key, NextVersion: plan.NextVersion, Current: plan.Current}, "namespace")

	if seen.Load() != 0 {
		t.Errorf("the attacker's server got %d requests", seen.Load())
	}
	for _, id := range []string{victimID, l.oldIDs[0]} {
		if got := l.openai.KeyStatus(id); got != providertest.StatusActive {
			t.Errorf("OpenAI key %s is %s after the forged calls, want active", id, got)
		}
	}
	if got := l.anthropic.KeyStatus(l.oldIDs[1]); got != providertest.StatusActive {
		t.Errorf("Anthropic key is %s after the forged calls, want active", got)
	}
	if l.openai.Revocations()+l.anthropic.Revocations() != 0 {
		t.Error("a forged call revoked a key")
	}
	if !l.secretExists(ctx, l.ns, activities.StagingSecretName(plan.Base)) {
		t.Error("the staged keys are gone after a forged discard")
	}
}
