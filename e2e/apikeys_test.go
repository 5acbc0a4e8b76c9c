package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"rotator/activities"
	"rotator/providers/providertest"
	"rotator/vault"
	"rotator/workflows"
)

// llm is one apikeys fixture: the provider servers, the keys they know,
// and the probe the catalog points at.
type llm struct {
	*fixture
	openai, anthropic       *providertest.Server
	oldOpenAI, oldAnthropic string
	oldIDs                  [2]string
	probes                  atomic.Int64
	vaultPath               string
}

func openAIKey() string {
	return "sk-proj-" + randomSuffix() + strings.Repeat("Q", 30) + randomSuffix()
}
func anthropicKey() string {
	return "sk-ant-api03-" + randomSuffix() + strings.Repeat("Z", 60) + randomSuffix() + "AA"
}

// newLLM starts OpenAI- and Anthropic-shaped servers that know the current
// keys and the admin keys, and an apikeys target whose Secret holds the
// current keys; withVault records the versions in the devstack's Vault.
func newLLM(t *testing.T, ctx context.Context, withVault bool) *llm {
	t.Helper()
	l := &llm{openai: providertest.NewOpenAI(), anthropic: providertest.NewAnthropic(),
		oldOpenAI: openAIKey(), oldAnthropic: anthropicKey()}
	t.Cleanup(l.openai.Close)
	t.Cleanup(l.anthropic.Close)
	l.oldIDs = [2]string{l.openai.AddKey(l.oldOpenAI), l.anthropic.AddKey(l.oldAnthropic)}
	adminOpenAI, adminAnthropic := "sk-admin-"+randomSuffix()+strings.Repeat("A", 40), "sk-ant-admin01-"+randomSuffix()+strings.Repeat("B", 60)
	l.openai.AddAdminKey(adminOpenAI)
	l.anthropic.AddAdminKey(adminAnthropic)
	probe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.probes.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(probe.Close)

	yaml := fmt.Sprintf(`    kind: apikeys
    apiKeys:
      providers:
        - name: openai
          baseURL: %s
          admin: {secret: {namespace: %%NS%%, name: provider-admin}, key: openai, projectID: %s}
        - name: anthropic
          baseURL: %s
          admin: {secret: {namespace: %%NS%%, name: provider-admin}, key: anthropic}
      probe: {url: %s/api/v1/workflows/execute, method: POST, body: '{"workflow": "smoke"}'}
`, l.openai.URL, l.openai.ProjectID(), l.anthropic.URL, probe.URL)
	if withVault {
		l.vaultPath = "e2e/" + randomSuffix()
		yaml += "    vault: {path: " + l.vaultPath + "}\n"
	}
	l.fixture = newFixtureWith(t, ctx, fixtureSpec{
		secretData: map[string]string{"openai-api-key": l.oldOpenAI, "anthropic-api-key": l.oldAnthropic},
		targetYAML: yaml,
		prepare: func(t *testing.T, ctx context.Context, ns string) {
			if _, err := devstack.kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: "provider-admin"},
				StringData: map[string]string{"openai": adminOpenAI, "anthropic": adminAnthropic},
			}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		},
	}, deployment("orchestrator", 2, envFromAndVolume("app-jwt")))
	devstack.remember([]byte(l.oldOpenAI), []byte(l.oldAnthropic), []byte(adminOpenAI), []byte(adminAnthropic))
	return l
}

// rotate starts a rotation through the CLI and waits until it asks for keys.
func (l *llm) rotate(ctx context.Context, flags ...string) {
	l.t.Helper()
	if out, err := l.starter(ctx, append([]string{"rotate", l.target, "--by", "e2e"}, flags...)...); err != nil {
		l.t.Fatalf("rotate: %v\n%s", err, out)
	}
	waitForStep(l.t, ctx, l.fixture, workflows.StepAwaitKeys)
}

// newKeys are keys an engineer got from the consoles: both providers know them.
func (l *llm) newKeys() (openai, anthropic string) {
	openai, anthropic = openAIKey(), anthropicKey()
	l.openai.AddKey(openai)
	l.anthropic.AddKey(anthropic)
	return openai, anthropic
}

func (l *llm) stageKeys(ctx context.Context, openai, anthropic string) (string, error) {
	devstack.remember([]byte(openai), []byte(anthropic))
	stdin := fmt.Sprintf("# keys from the consoles\nopenai-api-key=%s\nanthropic-api-key=%s\n", openai, anthropic)
	return devstack.runStarterIn(ctx, stdin, l.catalog, l.taskQueue, "stage-keys", l.target, "--by", "e2e")
}

func (l *llm) secretNames(ctx context.Context) []string {
	l.t.Helper()
	list, err := devstack.kube.CoreV1().Secrets(l.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		l.t.Fatal(err)
	}
	var names []string
	for _, s := range list.Items {
		names = append(names, s.Name)
	}
	return names
}

// TestAPIKeysWithVault is the runbook's API key rotation through the CLI,
// with Vault as the record: a refused key changes nothing, good keys roll
// out, Vault labels follow, and approve revokes each old key exactly once.
func TestAPIKeysWithVault(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l := newLLM(t, ctx, true)
	store := vault.NewStore(devstack.vault, "secret")
	id := workflows.WorkflowID(l.target)

	l.rotate(ctx)
	out, err := l.starter(ctx, "status", l.target)
	if err != nil || !strings.Contains(out, "starter stage-keys "+l.target) {
		t.Errorf("status should remind to stage keys: %v\n%s", err, out)
	}

	// A key the provider does not know is refused before anything changes.
	badAnthropic := anthropicKey()
	before := l.secretNames(ctx)
	out, err = l.stageKeys(ctx, openAIKey(), badAnthropic)
	if err == nil || !strings.Contains(out, "anthropic refused the staged anthropic-api-key") || !strings.Contains(out, "401 authentication_error") {
		t.Fatalf("stage-keys with a bad key: err=%v\n%s", err, out)
	}
	if strings.Contains(out, badAnthropic) || strings.Contains(out, badAnthropic[len(badAnthropic)-12:]) {
		t.Error("the refusal shows the key")
	}
	if after := l.secretNames(ctx); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("a refused key changed the Secrets: %v -> %v", before, after)
	}
	if labels, current, err := store.Labels(ctx, l.vaultPath); err != nil || current != 0 || labels.Pending != 0 {
		t.Errorf("a refused key wrote to Vault: %+v, version %d, %v", labels, current, err)
	}
	out, _ = l.starter(ctx, "status", l.target)
	if !strings.Contains(out, "awaiting-keys") || !strings.Contains(out, "keys refused") {
		t.Errorf("status after a refusal:\n%s", out)
	}

	newOpenAI, newAnthropic := l.newKeys()
	if out, err := l.stageKeys(ctx, newOpenAI, newAnthropic); err != nil || !strings.Contains(out, "the providers accepted the keys") {
		t.Fatalf("stage-keys: %v\n%s", err, out)
	}
	waitForStep(t, ctx, l.fixture, workflows.StepGrace)

	newName := l.secret + "-2"
	data, ok := l.secretData(ctx, newName)
	if !ok || string(data["openai-api-key"]) != newOpenAI || string(data["anthropic-api-key"]) != newAnthropic {
		t.Fatalf("new Secret %s does not hold the staged keys", newName)
	}
	if n := referencesTo(l.deploymentSpec(ctx, "orchestrator"), newName); n != 3 {
		t.Errorf("orchestrator: %d references to %s, want 3", n, newName)
	}
	labels, current, err := store.Labels(ctx, l.vaultPath)
	if err != nil || labels.Current != 1 || labels.Pending != 0 || current != 1 {
		t.Errorf("Vault labels in grace: %+v (version %d), %v; want CURRENT=1, no PENDING", labels, current, err)
	}
	if rec, err := store.Read(ctx, l.vaultPath, 1); err != nil || rec["openai-api-key"] != newOpenAI || rec["anthropic-api-key"] != newAnthropic {
		t.Errorf("Vault version 1 does not record the new keys: %v", err)
	}
	if _, staged, err := store.ReadStaged(ctx, l.vaultPath); err != nil || staged {
		t.Errorf("staged keys left in Vault after stage: staged=%v, %v", staged, err)
	}
	if l.probes.Load() == 0 {
		t.Error("the catalog's probe was not called")
	}
	if l.openai.RevocationsOf(l.oldIDs[0])+l.anthropic.RevocationsOf(l.oldIDs[1]) != 0 {
		t.Error("an old key was revoked before grace ended")
	}
	out, err = l.starter(ctx, "status", l.target)
	if err != nil || !strings.Contains(out, newName+" (v2, Vault v1, hmac-sha256:") || !strings.Contains(out, "staged key") {
		t.Errorf("status in grace: %v\n%s", err, out)
	}

	if out, err := l.starter(ctx, "approve", l.target, "--by", "alice", "--reason", "e2e"); err != nil {
		t.Fatalf("approve: %v\n%s", err, out)
	}
	var st workflows.Status
	if err := devstack.temporal.GetWorkflow(ctx, id, "").Get(ctx, &st); err != nil {
		t.Fatalf("rotation failed: %v", err)
	}
	if len(st.Revoked) != 2 {
		t.Errorf("revoked: %v, want both old keys", st.Revoked)
	}
	if got := l.openai.KeyStatus(l.oldIDs[0]); got != providertest.StatusDeleted {
		t.Errorf("old OpenAI key is %s, want deleted", got)
	}
	if got := l.anthropic.KeyStatus(l.oldIDs[1]); got != providertest.StatusInactive {
		t.Errorf("old Anthropic key is %s, want inactive", got)
	}
	if l.openai.RevocationsOf(l.oldIDs[0]) != 1 || l.anthropic.RevocationsOf(l.oldIDs[1]) != 1 || l.openai.Revocations()+l.anthropic.Revocations() != 2 {
		t.Errorf("revocations: openai %d, anthropic %d; want exactly one each", l.openai.Revocations(), l.anthropic.Revocations())
	}
	if _, ok := l.secretData(ctx, l.secret); ok {
		t.Error("the old Secret survived retire")
	}
	assertNoSecretsInHistory(t, ctx, id, []byte(l.oldOpenAI), []byte(l.oldAnthropic), []byte(newOpenAI), []byte(newAnthropic), []byte(badAnthropic))
	writeHistory(t, ctx, id, "rotate-apikeys.json")
	writeHistory(t, ctx, id, "rotate-apikeys-workload-safety.json")
	writeHistory(t, ctx, id, "rotate-apikeys-accountable-decisions.json")
}

// TestAPIKeysEmergencyWithoutVault is the runbook's compromise path with
// keys staged in a short-lived Secret: rate limits are retried, no grace,
// old keys revoked as soon as the new ones are live.
func TestAPIKeysEmergencyWithoutVault(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l := newLLM(t, ctx, false)
	id := workflows.WorkflowID(l.target)
	l.openai.FailNext("/v1/models", 2, http.StatusTooManyRequests)

	l.rotate(ctx, "--emergency")
	newOpenAI, newAnthropic := l.newKeys()
	if out, err := l.stageKeys(ctx, newOpenAI, newAnthropic); err != nil || !strings.Contains(out, "Secret "+l.ns+"/"+activities.StagingSecretName(l.secret)) {
		t.Fatalf("stage-keys: %v\n%s", err, out)
	}
	var st workflows.Status
	if err := devstack.temporal.GetWorkflow(ctx, id, "").Get(ctx, &st); err != nil {
		t.Fatalf("rotation failed: %v", err)
	}
	if st.Step != workflows.StepDone || !st.GraceDeadline.IsZero() {
		t.Errorf("emergency rotation: step %s, grace deadline %v", st.Step, st.GraceDeadline)
	}
	if n := l.openai.Requests("GET", "/v1/models"); n < 3 {
		t.Errorf("OpenAI /v1/models called %d times: two 429s should have been retried", n)
	}
	if l.openai.KeyStatus(l.oldIDs[0]) != providertest.StatusDeleted || l.anthropic.KeyStatus(l.oldIDs[1]) != providertest.StatusInactive {
		t.Error("emergency rotation left an old key valid")
	}
	if l.openai.Revocations() != 1 || l.anthropic.Revocations() != 1 {
		t.Errorf("revocations: %d and %d, want exactly one each", l.openai.Revocations(), l.anthropic.Revocations())
	}
	names := l.secretNames(ctx)
	if strings.Join(names, ",") != strings.Join([]string{l.secret + "-2", "provider-admin"}, ",") {
		t.Errorf("Secrets after an emergency rotation: %v; want only the new version and the admin keys (old and staging gone)", names)
	}
	assertNoSecretsInHistory(t, ctx, id, []byte(l.oldOpenAI), []byte(l.oldAnthropic), []byte(newOpenAI), []byte(newAnthropic))
}

// TestAPIKeysAbortRestoresVault aborts in grace: consumers go back, the new
// Secret goes, Vault's labels are restored and the new version soft-deleted,
// and no old key is revoked.
func TestAPIKeysAbortRestoresVault(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l := newLLM(t, ctx, true)
	store := vault.NewStore(devstack.vault, "secret")
	id := workflows.WorkflowID(l.target)

	l.rotate(ctx)
	newOpenAI, newAnthropic := l.newKeys()
	if out, err := l.stageKeys(ctx, newOpenAI, newAnthropic); err != nil {
		t.Fatalf("stage-keys: %v\n%s", err, out)
	}
	waitForStep(t, ctx, l.fixture, workflows.StepGrace)
	if labels, _, _ := store.Labels(ctx, l.vaultPath); labels.Current != 1 {
		t.Fatalf("Vault labels in grace: %+v", labels)
	}
	if out, err := l.starter(ctx, "abort", l.target, "--by", "bob", "--reason", "errors after rollout"); err != nil {
		t.Fatalf("abort: %v\n%s", err, out)
	}
	rolledBack(t, ctx, id)
	if n := referencesTo(l.deploymentSpec(ctx, "orchestrator"), l.secret); n != 3 {
		t.Errorf("orchestrator has %d references to the old Secret after abort, want 3", n)
	}
	if _, ok := l.secretData(ctx, l.secret+"-2"); ok {
		t.Error("the new Secret survived the abort")
	}
	labels, _, err := store.Labels(ctx, l.vaultPath)
	if err != nil || labels.Current != 0 || labels.Pending != 0 || labels.Previous != 0 {
		t.Errorf("Vault labels after abort: %+v, %v; want them back as before the rotation (none)", labels, err)
	}
	if _, err := store.Read(ctx, l.vaultPath, 1); !vault.IsNotFound(err) {
		t.Errorf("the aborted version is still readable in Vault: %v", err)
	}
	if l.openai.Revocations()+l.anthropic.Revocations() != 0 {
		t.Error("an aborted rotation revoked a key")
	}
	assertNoSecretsInHistory(t, ctx, id, []byte(l.oldOpenAI), []byte(l.oldAnthropic), []byte(newOpenAI), []byte(newAnthropic))
}
