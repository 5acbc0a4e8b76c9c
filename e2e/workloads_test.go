package e2e

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"rotator/activities"
	"rotator/clients"
	"rotator/workflows"
)

// TestEveryReferenceCounts rotates a Secret that a namespace shaped like a
// real one uses: a Deployment, a CronJob's job template, a bare pod, a Job
// still running and a ReplicaSet no Deployment owns. The CronJob moves in
// promote with the Deployment; the others, which rotator cannot repoint,
// are named in the status, and retire deletes the old version only once
// they are gone.
func TestEveryReferenceCounts(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := newFixture(t, ctx, "", deployment("api", 2, envRef("app-jwt")))
	f.create(ctx, cronJob("backup", envRef("app-jwt")), pod("debug", envFromAndVolume("app-jwt")),
		job("migrate", envRef("app-jwt")), replicaSet("legacy", 1, envRef("app-jwt")))
	rsBefore := f.replicaSets(ctx, "api")

	f.rotate(ctx)
	waitForStep(t, ctx, f, workflows.StepGrace)
	newName := f.secret + "-2"
	cj, err := devstack.kube.BatchV1().CronJobs(f.ns).Get(ctx, "backup", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if spec := &cj.Spec.JobTemplate.Spec.Template.Spec; referencesTo(spec, newName) != 1 || referencesTo(spec, f.secret) != 0 {
		t.Errorf("cronjob/backup's job template: %d references to %s, %d to %s; want it repointed with the consumers",
			referencesTo(spec, newName), newName, referencesTo(spec, f.secret), f.secret)
	}
	if n := f.replicaSets(ctx, "api") - rsBefore; n != 1 {
		t.Errorf("deployment/api rolled out %d times, want once", n)
	}
	st := f.status(ctx)
	notRepointed := []string{"pod/debug (a bare pod)", "job/migrate (a running Job, whose template cannot change)",
		"replicaset/legacy (no controller owns it)"}
	if !has(st.NotRepointed, notRepointed...) || len(st.NotRepointed) != 3 {
		t.Errorf("status names as not repointed %q, want exactly %q (a pod of the Job or the ReplicaSet is theirs)", st.NotRepointed, notRepointed)
	}
	if !has(consumerNames(st), "deployment/api", "cronjob/backup") {
		t.Errorf("consumers %v, want deployment/api and cronjob/backup", st.Consumers)
	}

	f.approve(ctx)
	waiting := f.waitStatus(ctx, "retire to wait for the objects still on the old version", func(st workflows.Status) bool {
		return st.Step == workflows.StepRetire && len(st.RetireWaitsFor) == 3
	})
	if !has(waiting.RetireWaitsFor, notRepointed...) || !strings.Contains(waiting.Reminder, "--keep-old") {
		t.Errorf("retire waits for %q (%s), want %q and how to end the wait", waiting.RetireWaitsFor, waiting.Reminder, notRepointed)
	}
	if _, ok := f.secretData(ctx, f.secret); !ok {
		t.Fatal("retire deleted the old version while a bare pod, a running Job and a ReplicaSet still used it")
	}
	// Once they are gone, the next check deletes it.
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	gone := time.Now()
	if err := devstack.kube.CoreV1().Pods(f.ns).Delete(ctx, "debug", opts); err != nil {
		t.Fatal(err)
	}
	if err := devstack.kube.BatchV1().Jobs(f.ns).Delete(ctx, "migrate", opts); err != nil {
		t.Fatal(err)
	}
	if err := devstack.kube.AppsV1().ReplicaSets(f.ns).Delete(ctx, "legacy", opts); err != nil {
		t.Fatal(err)
	}
	if err := f.result(ctx); err != nil {
		t.Fatalf("rotation failed: %v", err)
	}
	t.Logf("figure: retire deleted the old version %s after the last user was deleted", time.Since(gone).Round(time.Second))
	if _, ok := f.secretData(ctx, f.secret); ok {
		t.Error("the old version survived retire although nothing uses it any more")
	}
	writeHistory(t, ctx, workflows.WorkflowID(f.target), "rotate-jwt-every-reference.json")
}

func consumerNames(st workflows.Status) []string {
	var out []string
	for _, c := range st.Consumers {
		out = append(out, c.Workload.String())
	}
	return out
}

// TestKeepOldEndsRetiresWait: an engineer ends retire's wait for a pod that
// stays (approve --keep-old): the rotation finishes, the old version stays
// in place labelled retired.
func TestKeepOldEndsRetiresWait(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	f := newFixture(t, ctx, "", deployment("api", 1, envRef("app-jwt")))
	f.create(ctx, pod("debug", envRef("app-jwt")))
	f.rotate(ctx)
	waitForStep(t, ctx, f, workflows.StepGrace)
	f.approve(ctx)
	f.waitStatus(ctx, "retire to wait for pod/debug", func(st workflows.Status) bool { return len(st.RetireWaitsFor) == 1 })
	out, err := f.starter(ctx, "approve", f.target, "--by", "erin", "--reason", "the debug pod stays until Friday", "--keep-old")
	if err != nil || !strings.Contains(out, "keeping the old version") {
		t.Fatalf("approve --keep-old: %v\n%s", err, out)
	}
	if err := f.result(ctx); err != nil {
		t.Fatalf("rotation failed: %v", err)
	}
	if got := f.stage(ctx, f.secret); got != activities.StageRetired {
		t.Errorf("the kept version is labelled %s=%q, want %s", activities.LabelStage, got, activities.StageRetired)
	}
	var st workflows.Status
	if err := devstack.temporal.GetWorkflow(ctx, workflows.WorkflowID(f.target), "").Get(ctx, &st); err != nil {
		t.Fatal(err)
	}
	if st.KeptOld == nil || st.KeptOld.By != "erin" || len(st.Retired) == 0 || !strings.Contains(st.Retired[0], "kept, labelled retired") {
		t.Errorf("result: kept by %+v, retired %q", st.KeptOld, st.Retired)
	}
	if n := referencesTo(f.deploymentSpec(ctx, "api"), f.secret+"-2"); n != 1 {
		t.Errorf("deployment/api is not on the new version")
	}
}

// TestVerifyFindsWhatIsLeftOnTheOldVersion: with an explicit consumers
// list, a workload left out of it, and one created during the rollout,
// still use the old version after promote: both are reported, the first
// already by preflight.
func TestVerifyFindsWhatIsLeftOnTheOldVersion(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	api := deployment("api", 1, envRef("app-jwt"))
	f := newFixture(t, ctx, "    consumers: [{kind: Deployment, name: api}]\n", api, deployment("legacy", 1, envRef("app-jwt")))
	// api's new pod takes a while to become Ready: the rollout lasts long
	// enough to create a workload during it.
	patch := []byte(`{"spec":{"template":{"metadata":{"annotations":{"pod-ready.stage.kwok.x-k8s.io/delay":"4s"}}}}}`)
	if _, err := devstack.kube.AppsV1().Deployments(f.ns).Patch(ctx, "api", "application/strategic-merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitRolledOut(ctx, "api")
	f.rotate(ctx)
	waitForStep(t, ctx, f, workflows.StepPromote)
	f.create(ctx, deployment("late", 1, envRef("app-jwt")))
	waitForStep(t, ctx, f, workflows.StepGrace)
	st := f.status(ctx)
	if !has(st.NotRepointed, "deployment/legacy (not in the target's consumers)") {
		t.Errorf("preflight's not repointed: %q, want deployment/legacy", st.NotRepointed)
	}
	if !has(st.StillOnOld, "deployment/late", "deployment/legacy") {
		t.Errorf("still on the old version after the rollout: %q, want deployment/late and deployment/legacy", st.StillOnOld)
	}
	if n := referencesTo(f.deploymentSpec(ctx, "late"), f.secret); n != 1 {
		t.Errorf("deployment/late was changed: rotator must only report what the catalog does not list")
	}
	if out, err := f.starter(ctx, "abort", f.target, "--by", "e2e", "--reason", "done"); err != nil {
		t.Fatalf("abort: %v\n%s", err, out)
	}
	_ = f.result(ctx)
}

// TestNewVersionCarriesEveryKey: a JWT Secret with an issuer beside the
// key: the new version carries it, and a consumer that reads a key the new
// version would not have is refused before anything changes.
func TestNewVersionCarriesEveryKey(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	spec := jwtSpec("", nil)
	spec.secretData["issuer"] = "https://auth.example.com"
	f := newFixtureWith(t, ctx, spec, deployment("api", 1, envKeys("app-jwt", "secret", "issuer")))
	f.rotate(ctx)
	waitForStep(t, ctx, f, workflows.StepGrace)
	data, _ := f.secretData(ctx, f.secret+"-2")
	old, _ := f.secretData(ctx, f.secret)
	if string(data["issuer"]) != "https://auth.example.com" || len(data["secret"]) == 0 || bytes.Equal(data["secret"], old["secret"]) {
		t.Errorf("the new version has keys %v: want a new secret and the issuer carried over", keysOf(data))
	}
	f.approve(ctx)
	if err := f.result(ctx); err != nil {
		t.Fatal(err)
	}
	assertNoSecretsInHistory(t, ctx, workflows.WorkflowID(f.target), old["secret"], data["secret"])

	// A consumer reading a key that neither version has: a kubelet
	// would refuse its new pods (kwok does not look), so preflight does.
	g := newFixtureWith(t, ctx, jwtSpec("", nil), deployment("api", 1, envKeys("app-jwt", "secret", "audience")))
	before := g.state(ctx, "api")
	wid := startRotation(t, ctx, g, workflows.TypeRotateJWTSecret, false)
	app := failedWith(t, ctx, wid)
	assertEach(t, "the refusal", app.Message(), `deployment/api reads key "audience" of Secret app-jwt (container app env AUDIENCE)`,
		"which the new version would not have, so its new pods would not start", "fix the reference or add the key to the Secret")
	if app.Type() != activities.ErrBadInput {
		t.Errorf("type %s, want %s", app.Type(), activities.ErrBadInput)
	}
	if after := g.state(ctx, "api"); len(after.secrets) != len(before.secrets) || after.specs["api"] != before.specs["api"] {
		t.Error("a refused preflight changed the namespace")
	}
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestWorkloadsThatCannotRollOutAreRefused: an OnDelete StatefulSet or
// DaemonSet, a partitioned StatefulSet and a paused Deployment would keep
// their pods on the old version after a patch; preflight refuses each,
// naming it and the fix, and nothing changes.
func TestWorkloadsThatCannotRollOutAreRefused(t *testing.T) {
	t.Parallel()
	partition := int32(1)
	for _, tc := range []struct {
		name, want, fix string
		obj             any
	}{
		{"statefulset on delete", "statefulset/db uses updateStrategy OnDelete", "switch it to RollingUpdate before rotating", func() any {
			s := statefulSet("db", 1, envRef("app-jwt"))
			s.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType
			return s
		}()},
		{"partitioned statefulset", "statefulset/db has rollingUpdate.partition 1", "set the partition to 0 before rotating", func() any {
			s := statefulSet("db", 2, envRef("app-jwt"))
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: &partition}}
			return s
		}()},
		{"daemonset on delete", "daemonset/agent uses updateStrategy OnDelete", "switch it to RollingUpdate", func() any {
			d := daemonSet("agent", envRef("app-jwt"))
			d.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType
			return d
		}()},
		{"paused deployment", "deployment/paused is paused", "kubectl rollout resume deployment/paused", func() any {
			d := deployment("paused", 1, envRef("app-jwt"))
			d.Spec.Paused = true
			return d
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			f := newFixture(t, ctx, "", deployment("api", 1, envRef("app-jwt")))
			f.create(ctx, tc.obj)
			before := f.secretNames(ctx)
			wid := startRotation(t, ctx, f, workflows.TypeRotateJWTSecret, false)
			app := failedWith(t, ctx, wid)
			assertEach(t, "the refusal", app.Message(), "preflight: target "+f.target, tc.want, tc.fix)
			if after := f.secretNames(ctx); strings.Join(after, ",") != strings.Join(before, ",") {
				t.Errorf("Secrets before %v, after %v: a refused preflight created one", before, after)
			}
			if n := referencesTo(f.deploymentSpec(ctx, "api"), f.secret); n != 1 {
				t.Error("a refused preflight repointed deployment/api")
			}
		})
	}
}

// TestConsumerDeletedDuringRotationIsSkipped: a consumer deleted during
// grace is no failure of the rollback: the other consumer goes back to the
// old version and the rotation ends rolled back.
func TestConsumerDeletedDuringRotationIsSkipped(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	f := newFixture(t, ctx, "", deployment("api", 1, envRef("app-jwt")), deployment("worker", 1, envRef("app-jwt")))
	f.rotate(ctx)
	waitForStep(t, ctx, f, workflows.StepGrace)
	if err := devstack.kube.AppsV1().Deployments(f.ns).Delete(ctx, "worker", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := f.starter(ctx, "abort", f.target, "--by", "e2e", "--reason", "worker retired meanwhile"); err != nil {
		t.Fatalf("abort: %v\n%s", err, out)
	}
	rolledBack(t, ctx, workflows.WorkflowID(f.target))
	if n := referencesTo(f.deploymentSpec(ctx, "api"), f.secret); n != 1 {
		t.Error("deployment/api is not back on the old version")
	}
	if _, ok := f.secretData(ctx, f.secret+"-2"); ok {
		t.Error("the new version survived the rollback")
	}
}

// TestAbortDuringStageLeavesNothing: an abort that arrives while stage's
// Secret create is on its way does not cut stage short; compensation runs
// once it has returned and deletes what it created, so no version is left
// behind.
func TestAbortDuringStageLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	held := make(chan struct{})
	f := newFixtureWith(t, ctx, jwtSpec("", func(t *testing.T, ctx context.Context, ns string, d *activities.Deps) {
		d.Kube, _ = faultyKube(t, nil, &kubeFault{method: "POST", resource: "secrets", before: func(*http.Request) {
			close(held)
			time.Sleep(5 * time.Second)
		}})
	}), deployment("api", 1, envRef("app-jwt")))
	wid := startRotation(t, ctx, f, workflows.TypeRotateJWTSecret, false)
	<-held
	if out, err := f.starter(ctx, "abort", f.target, "--by", "e2e", "--reason", "wrong target"); err != nil {
		t.Fatalf("abort: %v\n%s", err, out)
	}
	rolledBack(t, ctx, wid)
	// Anything still in flight has landed by now.
	time.Sleep(6 * time.Second)
	if names := f.secretNames(ctx); strings.Join(names, ",") != f.secret {
		t.Errorf("Secrets after the abort: %v, want only %s", names, f.secret)
	}
	if n := referencesTo(f.deploymentSpec(ctx, "api"), f.secret); n != 1 {
		t.Error("deployment/api was moved")
	}
}

// TestResetRunTakesItsOwnVersion: `temporal workflow reset` to the first
// workflow task of a rotation in grace starts a run that does preflight
// and stage again. It finds the version the run it replaces staged and
// promoted, by the rotation's key (the original run ID, which a reset
// keeps), and carries on with it: no second version, no second rollout.
func TestResetRunTakesItsOwnVersion(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	f := newFixture(t, ctx, "", deployment("api", 2, envRef("app-jwt")))
	rsBefore := f.replicaSets(ctx, "api")
	f.rotate(ctx)
	waitForStep(t, ctx, f, workflows.StepGrace)
	id := workflows.WorkflowID(f.target)
	h := history(t, ctx, id)
	var first int64
	for _, ev := range h.Events {
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			first = ev.GetEventId()
			break
		}
	}
	desc, err := devstack.temporal.DescribeWorkflow(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	reset, err := devstack.temporal.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace:                 clients.TemporalFromEnv().NamespaceName(),
		WorkflowExecution:         &commonpb.WorkflowExecution{WorkflowId: id, RunId: desc.WorkflowExecution.RunID},
		Reason:                    "e2e: reset to the first workflow task",
		WorkflowTaskFinishEventId: first,
		RequestId:                 "e2e-reset-" + randomSuffix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	st := f.waitStatus(ctx, "the reset run to reach grace", func(st workflows.Status) bool { return st.Step == workflows.StepGrace })
	if st.New == nil || st.New.Name != f.secret+"-2" {
		t.Errorf("the reset run is in grace with %+v, want %s-2, the version its rotation staged", st.New, f.secret)
	}
	f.approve(ctx)
	if err := devstack.temporal.GetWorkflow(ctx, id, reset.GetRunId()).Get(ctx, nil); err != nil {
		t.Fatalf("the reset run failed: %v", err)
	}
	if names := f.secretNames(ctx); strings.Join(names, ",") != f.secret+"-2" {
		t.Errorf("Secrets after the reset run: %v, want only %s-2", names, f.secret)
	}
	if n := f.replicaSets(ctx, "api") - rsBefore; n != 1 {
		t.Errorf("deployment/api rolled out %d times, want once", n)
	}
}
