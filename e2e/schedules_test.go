package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"rotator/activities"
	"rotator/workflows"
)

// scheduleCatalog writes a catalog of jwt targets, name → every ("" for the
// default). Schedules never reach Kubernetes, so namespace and Secret need
// not exist.
func scheduleCatalog(t *testing.T, path string, targets [][2]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("targets:\n")
	for _, tg := range targets {
		fmt.Fprintf(&b, "  - name: %s\n    kind: jwt\n    namespace: e2e-schedules\n    secret: %s-jwt\n", tg[0], tg[0])
		if tg[1] != "" {
			fmt.Fprintf(&b, "    every: %s\n", tg[1])
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// deleteSchedulesAtCleanup removes the test's Schedules however it ends, so
// that none fires on the devstack later.
func deleteSchedulesAtCleanup(t *testing.T, targets ...string) {
	t.Cleanup(func() {
		for _, tg := range targets {
			err := devstack.temporal.ScheduleClient().GetHandle(context.Background(), "rotation/"+tg).Delete(context.Background())
			var nf *serviceerror.NotFound
			if err != nil && !errors.As(err, &nf) {
				t.Errorf("delete schedule rotation/%s: %v", tg, err)
			}
		}
	})
}

func describeSchedule(t *testing.T, ctx context.Context, id string) *client.ScheduleDescription {
	t.Helper()
	d, err := devstack.temporal.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	if err != nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	return d
}

func mustContain(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("want %q in the output:\n%s", w, out)
		}
	}
}

func TestSchedulesApplyUpdatePruneList(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sfx := randomSuffix()
	a, b, tq := "sched-a-"+sfx, "sched-b-"+sfx, "e2e-sched-"+sfx
	deleteSchedulesAtCleanup(t, a, b)
	cat := filepath.Join(t.TempDir(), "rotator.yaml")
	scheduleCatalog(t, cat, [][2]string{{a, ""}, {b, "30d"}})
	apply := func(args ...string) string {
		t.Helper()
		out, err := devstack.runStarter(ctx, cat, tq, append([]string{"schedules", "apply", "-f", cat}, args...)...)
		if err != nil {
			t.Fatalf("schedules apply %v: %v\n%s", args, err, out)
		}
		return out
	}

	out := apply()
	mustContain(t, out, "rotation/"+a+": created (every 90d, jitter 1d, next run ", "rotation/"+b+": created (every 30d, jitter 1d",
		"2 created, 0 updated, 0 deleted; 0 unchanged")
	descA := describeSchedule(t, ctx, "rotation/"+a)
	spec, act := descA.Schedule.Spec, descA.Schedule.Action.(*client.ScheduleWorkflowAction)
	if len(spec.Intervals) != 1 || spec.Intervals[0].Every != 90*24*time.Hour || spec.Jitter != 24*time.Hour {
		t.Errorf("spec of rotation/%s: %+v", a, spec)
	}
	if descA.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP {
		t.Errorf("overlap: %s", descA.Schedule.Policy.Overlap)
	}
	if act.Workflow != workflows.TypeScheduledRotation || act.ID != "scheduled/"+a || act.TaskQueue != tq {
		t.Errorf("action of rotation/%s: %+v", a, act)
	}
	var managedBy string
	if err := converter.GetDefaultDataConverter().FromPayload(descA.Memo.GetFields()["managed-by"], &managedBy); err != nil || managedBy != "rotator" {
		t.Errorf("memo managed-by: %q, %v", managedBy, err)
	}

	// Another worker's apply (another task queue) refuses to take them over
	// and changes nothing; its list and prune do not see them.
	other := tq + "-other"
	out, err := devstack.runStarter(ctx, cat, other, "schedules", "apply", "--prune")
	if err == nil {
		t.Fatalf("apply for task queue %s took over %s's schedules:\n%s", other, tq, out)
	}
	mustContain(t, out, fmt.Sprintf("nothing changed: schedule rotation/%s starts workflows on task queue %s, not %s", a, tq, other))
	out, err = devstack.runStarter(ctx, cat, other, "schedules", "list")
	if err != nil {
		t.Fatalf("schedules list: %v\n%s", err, out)
	}
	mustContain(t, out, "no rotator schedules for task queue "+other)

	// A second apply changes nothing, not even the update time.
	before := describeSchedule(t, ctx, "rotation/"+b).Info.LastUpdateAt
	out = apply()
	mustContain(t, out, "rotation/"+a+": unchanged", "rotation/"+b+": unchanged", "nothing changed")
	if after := describeSchedule(t, ctx, "rotation/"+b).Info.LastUpdateAt; !after.Equal(before) {
		t.Errorf("an apply that changed nothing updated the schedule: %s → %s", before, after)
	}

	// A new cadence updates the schedule and keeps an operator's pause.
	if err := devstack.temporal.ScheduleClient().GetHandle(ctx, "rotation/"+b).Pause(ctx, client.SchedulePauseOptions{Note: "freeze week"}); err != nil {
		t.Fatal(err)
	}
	scheduleCatalog(t, cat, [][2]string{{a, ""}, {b, "45d"}})
	out = apply()
	mustContain(t, out, "rotation/"+a+": unchanged", "rotation/"+b+": updated (every 30d → 45d)", "0 created, 1 updated, 0 deleted; 1 unchanged")
	descB := describeSchedule(t, ctx, "rotation/"+b)
	if descB.Schedule.Spec.Intervals[0].Every != 45*24*time.Hour || !descB.Info.LastUpdateAt.After(before) {
		t.Errorf("rotation/%s after the update: every %s, updated at %s", b, descB.Schedule.Spec.Intervals[0].Every, descB.Info.LastUpdateAt)
	}
	if !descB.Schedule.State.Paused || descB.Schedule.State.Note != "freeze week" {
		t.Errorf("apply must keep an operator's pause: %+v", descB.Schedule.State)
	}

	// A target removed from the catalog: kept without --prune, deleted with it.
	scheduleCatalog(t, cat, [][2]string{{b, "45d"}})
	out = apply()
	mustContain(t, out, "rotation/"+a+": not in the catalog (kept; --prune deletes it)", "nothing changed")
	out = apply("--prune", "--dry-run")
	mustContain(t, out, "rotation/"+a+": would be deleted (not in the catalog)", "dry run, nothing changed")
	describeSchedule(t, ctx, "rotation/"+a)
	out = apply("--prune")
	mustContain(t, out, "rotation/"+a+": deleted (not in the catalog)", "rotation/"+b+": unchanged", "0 created, 0 updated, 1 deleted; 1 unchanged")
	_, err = devstack.temporal.ScheduleClient().GetHandle(ctx, "rotation/"+a).Describe(ctx)
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("rotation/%s after --prune: want not found, got %v", a, err)
	}

	out, err = devstack.runStarter(ctx, cat, tq, "schedules", "list")
	if err != nil {
		t.Fatalf("schedules list: %v\n%s", err, out)
	}
	mustContain(t, out, "SCHEDULE", "NEXT RUNS", "rotation/"+b, "45d", "yes: freeze week", "never")
	if strings.Contains(out, "rotation/"+a) {
		t.Errorf("list shows the deleted rotation/%s:\n%s", a, out)
	}
}

// stubRotation stands in for a rotation workflow under its real type name:
// what is tested here is the schedule → ScheduledRotation → rotate/<target>
// wiring, not a rotation (the other e2e tests run those). It runs until
// approved, as a rotation in grace does.
//
// Signalled "stub-rollback-fails" instead, it does what a rotation whose
// rollback could not finish does: it publishes the step
// compensation-failed and waits for a person.
func stubRotation(ctx workflow.Context, in workflows.RotateInput) (workflows.Status, error) {
	var failed bool
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(workflow.GetSignalChannel(ctx, workflows.SignalApprove), func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
	sel.AddReceive(workflow.GetSignalChannel(ctx, "stub-rollback-fails"), func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		failed = true
	})
	sel.Select(ctx)
	if failed {
		if err := workflow.UpsertTypedSearchAttributes(ctx, workflows.SearchStep.ValueSet(string(workflows.StepCompensationFailed))); err != nil {
			return workflows.Status{}, err
		}
		workflow.GetSignalChannel(ctx, workflows.SignalRetry).Receive(ctx, nil)
	}
	return workflows.Status{Target: in.Target, Step: workflows.StepDone, RequestedBy: in.RequestedBy}, nil
}

func TestScheduleTriggerStartsTheRotationOrSkips(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sfx := randomSuffix()
	target, tq := "sched-run-"+sfx, "e2e-sched-run-"+sfx
	deleteSchedulesAtCleanup(t, target)
	t.Cleanup(func() {
		_ = devstack.temporal.TerminateWorkflow(context.Background(), workflows.WorkflowID(target), "", "e2e cleanup")
	})
	w := worker.New(devstack.temporal, tq, worker.Options{})
	w.RegisterWorkflowWithOptions(workflows.ScheduledRotation, workflow.RegisterOptions{Name: workflows.TypeScheduledRotation})
	w.RegisterWorkflowWithOptions(stubRotation, workflow.RegisterOptions{Name: workflows.TypeRotateJWTSecret})
	w.RegisterActivity(&activities.Rotations{Temporal: devstack.temporal})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	cat := filepath.Join(t.TempDir(), "rotator.yaml")
	scheduleCatalog(t, cat, [][2]string{{target, ""}})
	if out, err := devstack.runStarter(ctx, cat, tq, "schedules", "apply"); err != nil {
		t.Fatalf("schedules apply: %v\n%s", err, out)
	}
	h := devstack.temporal.ScheduleClient().GetHandle(ctx, "rotation/"+target)

	first := triggerAndWait(t, ctx, h, 1)
	if !first.Started || first.Skipped != "" || first.Target != target {
		t.Fatalf("first scheduled run: %+v", first)
	}
	id := workflows.WorkflowID(target)
	desc, err := devstack.temporal.DescribeWorkflow(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if desc.WorkflowType.Name != workflows.TypeRotateJWTSecret || desc.WorkflowExecution.RunID != first.RotationRunID {
		t.Errorf("%s: type %s run %s, want %s run %s", id, desc.WorkflowType.Name, desc.WorkflowExecution.RunID, workflows.TypeRotateJWTSecret, first.RotationRunID)
	}
	if desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Errorf("the rotation must outlive the run that started it: %s is %s", id, desc.Status)
	}
	started := history(t, ctx, id).Events[0].GetWorkflowExecutionStartedEventAttributes()
	var in workflows.RotateInput
	if err := converter.GetDefaultDataConverter().FromPayloads(started.GetInput(), &in); err != nil {
		t.Fatal(err)
	}
	if in != (workflows.RotateInput{Target: target, RequestedBy: "schedule rotation/" + target}) {
		t.Errorf("the rotation's input is %+v, want what starter rotate would send, by the schedule", in)
	}
	if p := started.GetParentWorkflowExecution().GetWorkflowId(); !strings.HasPrefix(p, "scheduled/"+target+"-") {
		t.Errorf("started by %q, want the scheduled run scheduled/%s-<time>", p, target)
	}

	// With the rotation still running, the next scheduled run is skipped
	// and says why.
	second := triggerAndWait(t, ctx, h, 2)
	want := fmt.Sprintf("a rotation of %s is already running (workflow rotate/%s): this scheduled run was skipped", target, target)
	if second.Started || second.Skipped != want {
		t.Errorf("second scheduled run: %+v, want skipped: %s", second, want)
	}
	out, err := devstack.runStarter(ctx, cat, tq, "schedules", "list")
	if err != nil {
		t.Fatalf("schedules list: %v\n%s", err, out)
	}
	mustContain(t, out, "rotation/"+target, "skipped, a rotation of "+target+" is already running")

	// A rotation whose rollback could not finish, running or ended: the
	// next scheduled runs fail, start nothing, and say why.
	if err := devstack.temporal.SignalWorkflow(ctx, id, "", "stub-rollback-fails", nil); err != nil {
		t.Fatal(err)
	}
	waitForSearchStep(t, ctx, id, workflows.StepCompensationFailed)
	for i, how := range []string{"is waiting for a person", "ended (terminated) while it waited for a person"} {
		if i == 1 {
			if err := devstack.temporal.TerminateWorkflow(ctx, id, "", "e2e: nobody fixed it"); err != nil {
				t.Fatal(err)
			}
		}
		err := triggerAndFail(t, ctx, h, 3+i)
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || app.Type() != activities.ErrNeedsPerson || !strings.Contains(app.Error(), "could not finish its rollback and "+how) ||
			!strings.Contains(app.Error(), "starter retry "+target) {
			t.Errorf("scheduled run %d: %v, want a NeedsPerson failure saying the last rotation %s", 3+i, err, how)
		}
	}
	if desc, err := devstack.temporal.DescribeWorkflow(ctx, id, ""); err != nil || desc.WorkflowExecution.RunID != first.RotationRunID {
		t.Errorf("a scheduled run started a rotation on top of the unfinished rollback: %v, %+v", err, desc)
	}

	// The scheduled runs for the replay test: one started the rotation,
	// one was skipped, one failed. Triggered within a second, they can
	// share a workflow ID, so each is named by its run.
	runs := describeSchedule(t, ctx, "rotation/"+target).Info.RecentActions
	for i, name := range []string{"scheduled-rotation.json", "scheduled-rotation-skipped.json", "scheduled-rotation-needs-person.json"} {
		r := runs[i].StartWorkflowResult
		writeRunHistory(t, ctx, r.WorkflowID, r.FirstExecutionRunID, name)
	}
}

// waitForSearchStep waits until the workflow's RotationStep is step.
func waitForSearchStep(t *testing.T, ctx context.Context, id string, step workflows.Step) {
	t.Helper()
	for {
		desc, err := devstack.temporal.DescribeWorkflow(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := desc.TypedSearchAttributes.GetKeyword(workflows.SearchStep); ok && v == string(step) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never reached %s", id, step)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// triggerAndWait runs the Schedule now and returns the result of its n-th
// run. It first waits until the Schedule has seen its previous run end:
// overlap Skip would otherwise drop the trigger.
func triggerAndWait(t *testing.T, ctx context.Context, h client.ScheduleHandle, n int) workflows.ScheduledResult {
	t.Helper()
	var desc *client.ScheduleDescription
	poll := func(done func() bool) {
		t.Helper()
		for {
			var err error
			if desc, err = h.Describe(ctx); err != nil {
				t.Fatal(err)
			}
			if done() {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("schedule %s: timed out; last description: %+v", h.GetID(), desc.Info)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	poll(func() bool { return len(desc.Info.RunningWorkflows) == 0 })
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(func() bool { return len(desc.Info.RecentActions) >= n })
	run := desc.Info.RecentActions[n-1].StartWorkflowResult
	var res workflows.ScheduledResult
	if err := devstack.temporal.GetWorkflow(ctx, run.WorkflowID, run.FirstExecutionRunID).Get(ctx, &res); err != nil {
		t.Fatalf("scheduled run %s: %v", run.WorkflowID, err)
	}
	return res
}

// triggerAndFail is triggerAndWait for a run that must fail: its error.
func triggerAndFail(t *testing.T, ctx context.Context, h client.ScheduleHandle, n int) error {
	t.Helper()
	for {
		desc, err := h.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(desc.Info.RunningWorkflows) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		desc, err := h.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(desc.Info.RecentActions) >= n {
			run := desc.Info.RecentActions[n-1].StartWorkflowResult
			err := devstack.temporal.GetWorkflow(ctx, run.WorkflowID, run.FirstExecutionRunID).Get(ctx, nil)
			if err == nil {
				t.Fatalf("scheduled run %s succeeded", run.WorkflowID)
			}
			return err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("schedule %s: timed out waiting for run %d", h.GetID(), n)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
