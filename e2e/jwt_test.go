package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"rotator/activities"
	"rotator/internal/leakscan"
	"rotator/vault"
	"rotator/workflows"
)

// TestJWTRotationEndToEnd runs the runbook's JWT rotation through the CLI:
// rotate, a refused second rotate, status, approve, and checks every
// promise on the real cluster at each step.
func TestJWTRotationEndToEnd(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	vaultPath := "e2e/jwt-" + randomSuffix()
	f := newFixture(t, ctx, "    jwt: {dualKey: true}\n    vault: {path: "+vaultPath+"}\n",
		deployment("orchestrator", 3, envRef("app-jwt")),
		deployment("sidecar", 1, envFromAndVolume("app-jwt")))
	oldData, _ := f.secretData(ctx, f.secret)
	rsBefore := f.replicaSets(ctx, "orchestrator")

	out, err := f.starter(ctx, "rotate", f.target, "--by", "e2e")
	if err != nil {
		t.Fatalf("starter rotate: %v\n%s", err, out)
	}
	id := workflows.WorkflowID(f.target)
	waitForStep(t, ctx, f, workflows.StepGrace)

	// After promote every reference names the new version, on both consumers.
	newName := f.secret + "-2"
	for _, d := range []string{"orchestrator", "sidecar"} {
		spec := f.deploymentSpec(ctx, d)
		if refs := referencesTo(spec, f.secret); refs != 0 {
			t.Errorf("%s still has %d references to the old Secret", d, refs)
		}
	}
	if n := referencesTo(f.deploymentSpec(ctx, "orchestrator"), newName); n != 1 {
		t.Errorf("orchestrator: want 1 reference to %s, got %d", newName, n)
	}
	if n := referencesTo(f.deploymentSpec(ctx, "sidecar"), newName); n != 3 {
		t.Errorf("sidecar: want envFrom, volume and projected volume on %s, got %d", newName, n)
	}
	// Exactly one rollout: one new ReplicaSet, no restart on top of the patch.
	if got := f.replicaSets(ctx, "orchestrator"); got != rsBefore+1 {
		t.Errorf("orchestrator rolled out %d times, want exactly once", got-rsBefore)
	}
	// The old version stays through grace; the new one is immutable and dual-key.
	if _, ok := f.secretData(ctx, f.secret); !ok {
		t.Error("the old Secret was deleted before grace ended")
	}
	newSecret, err := devstack.kube.CoreV1().Secrets(f.ns).Get(ctx, newName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if newSecret.Immutable == nil || !*newSecret.Immutable {
		t.Error("the new Secret is not immutable")
	}
	if newSecret.Labels[activities.LabelTarget] != f.target || newSecret.Labels[activities.LabelVersion] != "2" ||
		newSecret.Labels[activities.LabelStage] != activities.StageCurrent {
		t.Errorf("new Secret labels: %v", newSecret.Labels)
	}
	if !bytes.Equal(newSecret.Data[activities.PreviousKey], oldData["secret"]) {
		t.Error("the dual-key Secret does not carry the previous key")
	}
	if len(newSecret.Data["secret"]) != 88 || bytes.Equal(newSecret.Data["secret"], oldData["secret"]) {
		t.Errorf("new key: %d bytes, want a fresh 64-byte key in base64 (88 characters)", len(newSecret.Data["secret"]))
	}
	// Vault records the new key (not the dual key's copy of the old one)
	// as a version labelled CURRENT.
	store := vault.NewStore(devstack.vault, "secret")
	if rec, err := store.Read(ctx, vaultPath, 1); err != nil || rec["secret"] != string(newSecret.Data["secret"]) || len(rec) != 1 {
		t.Errorf("Vault version 1 of %s does not record the new key alone (%d keys): %v", vaultPath, len(rec), err)
	}
	if labels, _, err := store.Labels(ctx, vaultPath); err != nil || labels.Current != 1 || labels.Pending != 0 {
		t.Errorf("Vault labels in grace: %+v, %v", labels, err)
	}

	// One rotation per target: a second start is refused and names the running one.
	out, err = f.starter(ctx, "rotate", f.target, "--by", "e2e")
	if err == nil || !strings.Contains(out, "already running: workflow "+id) || !strings.Contains(out, "step grace") {
		t.Errorf("second rotate: err=%v, output:\n%s", err, out)
	}
	out, err = f.starter(ctx, "status", f.target)
	if err != nil || !strings.Contains(out, "grace since") || !strings.Contains(out, newName+" (v2, Vault v1, hmac-sha256:") ||
		!strings.Contains(out, "deployment/orchestrator: rolled out") || !strings.Contains(out, "trusted until the next rotation replaces it") {
		t.Errorf("status: err=%v, output:\n%s", err, out)
	}
	out, err = f.starter(ctx, "list")
	if err != nil || !strings.Contains(out, f.target) {
		t.Errorf("list: err=%v, output:\n%s", err, out)
	}

	out, err = f.starter(ctx, "approve", f.target, "--by", "alice", "--reason", "e2e")
	if err != nil {
		t.Fatalf("approve: %v\n%s", err, out)
	}
	var st workflows.Status
	if err := devstack.temporal.GetWorkflow(ctx, id, "").Get(ctx, &st); err != nil {
		t.Fatalf("rotation failed: %v", err)
	}
	if st.Step != workflows.StepDone || st.Approved == nil || st.Approved.By != "alice" {
		t.Errorf("result: %+v", st)
	}
	if _, ok := f.secretData(ctx, f.secret); ok {
		t.Error("the old Secret still exists after approve")
	}
	if _, ok := f.secretData(ctx, newName); !ok {
		t.Error("the new Secret is gone")
	}
	// Approve outside grace is refused with the step named.
	out, err = f.starter(ctx, "approve", f.target, "--by", "alice", "--reason", "again")
	if err == nil {
		t.Errorf("approve after completion succeeded:\n%s", out)
	}

	// No secret value reaches Temporal, in any encoding.
	newData, _ := f.secretData(ctx, newName)
	assertNoSecretsInHistory(t, ctx, id, oldData["secret"], newData["secret"])
	writeHistory(t, ctx, id, "rotate-jwt.json")
	// The same run under a name of its own: rotate-jwt.json and
	// rotate-jwt-before-vault.json stay as recorded by older code (the
	// replay test needs those branches), this one takes verify-in-rollout.
	writeHistory(t, ctx, id, "rotate-jwt-verify-in-rollout.json")
	// And again for local-steps: preflight and stage as local activities.
	writeHistory(t, ctx, id, "rotate-jwt-local-steps.json")
	// And for workload-safety: the namespace scans, retire's wait.
	writeHistory(t, ctx, id, "rotate-jwt-workload-safety.json")
	writeHistory(t, ctx, id, "rotate-jwt-accountable-decisions.json")
}

// TestJWTAbortRollsBack aborts in grace and checks consumers are back on the
// old version, the new one is gone and the old one untouched.
func TestJWTAbortRollsBack(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := newFixture(t, ctx, "", deployment("api", 2, envFromAndVolume("app-jwt")))
	oldData, _ := f.secretData(ctx, f.secret)

	if out, err := f.starter(ctx, "rotate", f.target, "--by", "e2e"); err != nil {
		t.Fatalf("rotate: %v\n%s", err, out)
	}
	id := workflows.WorkflowID(f.target)
	waitForStep(t, ctx, f, workflows.StepGrace)
	staged, _ := f.secretData(ctx, f.secret+"-2")
	if out, err := f.starter(ctx, "abort", f.target, "--by", "bob", "--reason", "401s"); err != nil {
		t.Fatalf("abort: %v\n%s", err, out)
	}
	if st := rolledBack(t, ctx, id); st.Aborted.By != "bob" {
		t.Errorf("aborted by %q, want bob", st.Aborted.By)
	}
	if n := referencesTo(f.deploymentSpec(ctx, "api"), f.secret); n != 3 {
		t.Errorf("after abort, want 3 references back on %s, got %d", f.secret, n)
	}
	if _, ok := f.secretData(ctx, f.secret+"-2"); ok {
		t.Error("the new Secret was not deleted")
	}
	if data, ok := f.secretData(ctx, f.secret); !ok || !bytes.Equal(data["secret"], oldData["secret"]) {
		t.Error("the old Secret is gone or changed")
	}
	f.waitRolledOut(ctx, "api")
	assertNoSecretsInHistory(t, ctx, id, oldData["secret"], staged["secret"])
}

// TestBadTargetChangesNothing starts a rotation whose Secret does not exist.
func TestBadTargetChangesNothing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := newFixture(t, ctx, "", deployment("api", 1, envRef("app-jwt")))
	if err := devstack.kube.CoreV1().Secrets(f.ns).Delete(ctx, f.secret, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	before := f.deploymentSpec(ctx, "api")
	run, err := devstack.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.WorkflowID(f.target), TaskQueue: f.taskQueue,
	}, workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: f.target})
	if err != nil {
		t.Fatal(err)
	}
	err = run.Get(ctx, nil)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrBadInput ||
		!strings.Contains(app.Error(), "secret: Secret "+f.ns+"/"+f.secret+" does not exist") {
		t.Fatalf("want a BadInput naming the secret field, got %v", err)
	}
	if referencesTo(f.deploymentSpec(ctx, "api"), f.secret) != referencesTo(before, f.secret) {
		t.Error("a failed preflight changed the workload")
	}
	list, err := devstack.kube.CoreV1().Secrets(f.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("a failed preflight created %d Secrets", len(list.Items))
	}
}

// waitForStep waits with the CLI's wait, which follows the history with a
// long poll (no sleeps); a rotation that ends first fails the test.
func waitForStep(t *testing.T, ctx context.Context, f *fixture, step workflows.Step) {
	t.Helper()
	if out, err := f.starter(ctx, "wait", f.target, "--step", string(step), "--timeout", "4m"); err != nil {
		t.Fatalf("wait for %s: %v\n%s", step, err, out)
	}
}

func history(t *testing.T, ctx context.Context, id string) *historypb.History {
	t.Helper()
	return runHistory(t, ctx, id, "")
}

// runHistory is the history of one run ("" for the latest).
func runHistory(t *testing.T, ctx context.Context, id, runID string) *historypb.History {
	t.Helper()
	h := &historypb.History{}
	it := devstack.temporal.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	return h
}

// assertNoSecretsInHistory searches every event of the history, as stored,
// for each value in raw, base64 and hex form.
func assertNoSecretsInHistory(t *testing.T, ctx context.Context, id string, values ...[]byte) {
	t.Helper()
	h := history(t, ctx, id)
	raw, js := historyBytes(t, h)
	devstack.remember(values...)
	for _, v := range values {
		if len(v) < 16 {
			t.Fatalf("a %d-byte value is too short to search for", len(v))
		}
		for i, needle := range leakscan.Forms(v) {
			if bytes.Contains(raw, needle) || bytes.Contains(js, needle) {
				t.Errorf("history of %s contains a secret value (form %d: raw, hex, base64 at three alignments, decoded)", id, i)
			}
		}
	}
	if len(h.Events) < 10 {
		t.Fatalf("history of %s has only %d events: the scan searched nothing", id, len(h.Events))
	}
}

// historyBytes is the history as stored (protobuf) and as the UI and
// exports show it (JSON, where payloads are base64).
func historyBytes(t *testing.T, h *historypb.History) (raw, js []byte) {
	t.Helper()
	raw, err := proto.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if js, err = protojson.Marshal(h); err != nil {
		t.Fatal(err)
	}
	return raw, js
}

// writeHistory stores the history under -record-histories, if given, and
// its workflow ID beside it in <name>.id: a history does not hold its own
// ID, and replay must run under it (workflows/replay_test.go).
func writeHistory(t *testing.T, ctx context.Context, id, name string) {
	t.Helper()
	writeRunHistory(t, ctx, id, "", name)
}

// writeRunHistory is writeHistory for one run ("" for the latest).
func writeRunHistory(t *testing.T, ctx context.Context, id, runID, name string) {
	t.Helper()
	if *record == "" {
		return
	}
	path := filepath.Join(*record, name)
	// A recorded history is a fixture for the code that ran it: recording
	// over it would lose the branches only older runs take.
	if _, err := os.Stat(path); err == nil {
		t.Logf("%s exists and is kept: delete it to record it again", path)
		return
	}
	js, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(runHistory(t, ctx, id, runID))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, js, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(strings.TrimSuffix(path, ".json")+".id", []byte(id+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// referencesTo counts the places a pod spec names the Secret. It does not
// call the activities' own reference finder on purpose: the test must not
// share the code it checks.
func referencesTo(spec *corev1.PodSpec, secret string) int {
	n := 0
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == secret {
				n++
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil && e.SecretRef.Name == secret {
				n++
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret {
			n++
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil && s.Secret.Name == secret {
					n++
				}
			}
		}
	}
	return n
}

// TestDualKeyDropsThePreviousKeyAtRetire: with jwt.previous: dropAtRetire,
// the previous key is trusted through grace only: retire rolls the
// consumers out once more, onto a version with the new key alone, and
// deletes both older versions.
func TestDualKeyDropsThePreviousKeyAtRetire(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	f := newFixture(t, ctx, "    jwt: {dualKey: true, previous: dropAtRetire}\n", deployment("api", 2, envRef("app-jwt")))
	rsBefore := f.replicaSets(ctx, "api")
	f.rotate(ctx)
	waitForStep(t, ctx, f, workflows.StepGrace)
	st := f.status(ctx)
	assertEach(t, "the status", st.PreviousKey, "until retire, which rolls the consumers out onto a version without it")
	dual, _ := f.secretData(ctx, f.secret+"-2")
	if len(dual[activities.PreviousKey]) == 0 {
		t.Fatal("the dual-key version carries no previous key")
	}
	f.approve(ctx)
	var res workflows.Status
	if err := devstack.temporal.GetWorkflow(ctx, workflows.WorkflowID(f.target), "").Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	third, ok := f.secretData(ctx, f.secret+"-3")
	if !ok || !bytes.Equal(third["secret"], dual["secret"]) || third[activities.PreviousKey] != nil {
		t.Fatalf("version 3 has keys %v: want the new key alone", keysOf(third))
	}
	if n := referencesTo(f.deploymentSpec(ctx, "api"), f.secret+"-3"); n != 1 {
		t.Error("deployment/api is not on version 3")
	}
	if names := f.secretNames(ctx); strings.Join(names, ",") != f.secret+"-3" {
		t.Errorf("Secrets after retire: %v, want only %s-3", names, f.secret)
	}
	if n := f.replicaSets(ctx, "api") - rsBefore; n != 2 {
		t.Errorf("deployment/api rolled out %d times, want twice (promote, and retire dropping the previous key)", n)
	}
	assertEach(t, "the result", res.PreviousKey, "dropped at retire")
	assertNoSecretsInHistory(t, ctx, workflows.WorkflowID(f.target), dual["secret"], dual[activities.PreviousKey])
	writeHistory(t, ctx, workflows.WorkflowID(f.target), "rotate-jwt-drop-previous.json")
}
