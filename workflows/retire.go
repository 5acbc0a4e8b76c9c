package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"rotator/activities"
	"rotator/catalog"
)

// How often retire checks again whether what still uses the old version
// is gone: soon at first (a Job about to finish), then every ten minutes,
// which keeps a wait of weeks well inside a workflow's history limit.
const (
	retireRecheckFirst = 15 * time.Second
	retireRecheckMax   = 10 * time.Minute
)

// retire removes the old version once nothing uses it, and revokes it.
func (r *rotation) retire(ctx workflow.Context) error {
	r.setStep(ctx, StepRetire)
	if !r.safe {
		if err := workflow.ExecuteActivity(short(ctx), kube.RetireSecret,
			activities.RetireInput{Secret: *r.st.Old}).Get(ctx, nil); err != nil {
			return err
		}
		if r.steps.revoke != nil {
			return r.steps.revoke(ctx, r)
		}
		return nil
	}
	if r.steps.revoke != nil || (r.plan.DropPrevious && !r.in.Emergency) {
		// Revoking, locking and rolling out are what consumers see.
		if err := r.awaitWindow(ctx, StepRetire); err != nil {
			return err
		}
		if r.st.Step == StepAwaitWindow {
			r.setStep(ctx, StepRetire)
		}
	}
	versions := []activities.SecretRef{*r.st.Old}
	if r.plan.DropPrevious && !r.in.Emergency {
		dual, err := r.dropPrevious(ctx)
		if err != nil {
			return err
		}
		versions = append(versions, dual)
	}
	for _, v := range versions {
		if err := r.retireVersion(ctx, v); err != nil {
			return err
		}
	}
	if r.keepOld {
		// The kept version's users log in with it: revoking it would be
		// the outage the wait was for.
		r.st.Retired = append(r.st.Retired, "the old credential was not revoked: it stays valid while the kept version is used")
		return nil
	}
	if r.steps.revoke != nil {
		return r.steps.revoke(ctx, r)
	}
	return nil
}

// retireVersion deletes a version once no live object uses it. Until then
// it checks again and again, the status and the UI naming what still uses
// it, until those are gone or an engineer keeps the version (approve
// --keep-old).
func (r *rotation) retireVersion(ctx workflow.Context, v activities.SecretRef) error {
	wait := retireRecheckFirst
	for {
		var res activities.RetireResult
		if err := workflow.ExecuteActivity(summarized(short(ctx), "delete Secret "+v.Name+" once nothing uses it"), kube.RetireSecret,
			activities.RetireInput{Secret: v, Report: true, Keep: r.keepOld}).Get(ctx, &res); err != nil {
			return err
		}
		if len(res.UsedBy) == 0 {
			r.st.RetireWaitsFor, r.st.Reminder = nil, ""
			switch {
			case res.Kept != "":
				r.st.Retired = append(r.st.Retired, fmt.Sprintf("%s: kept, labelled %s: %s", v.Name, activities.StageRetired, res.Kept))
			default:
				r.st.Retired = append(r.st.Retired, v.Name+": deleted")
			}
			r.details(ctx)
			return nil
		}
		r.st.RetireWaitsFor = nil
		for _, h := range res.UsedBy {
			r.st.RetireWaitsFor = append(r.st.RetireWaitsFor, h.String())
		}
		r.st.Reminder = fmt.Sprintf("Secret %s is still used by %s, so it is kept; rotator checks again every %s. "+
			"Once they are gone it is deleted; to finish now and keep it (labelled %s, its credential left valid): starter approve %s --keep-old --reason '...'",
			v.Name, strings.Join(r.st.RetireWaitsFor, ", "), wait, activities.StageRetired, r.in.Target)
		r.details(ctx)
		if !r.notices.retireWait {
			r.notices.retireWait = true
			r.notify(ctx, catalog.EventNeedsPerson, r.st.Reminder, time.Time{})
		}
		workflow.GetLogger(ctx).Warn("retire waits for objects that still use the old version", "target", r.in.Target,
			"secret", v.Name, "objects", r.st.RetireWaitsFor)
		if _, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return r.keepOld }); err != nil {
			return err
		}
		wait = min(2*wait, retireRecheckMax)
	}
}

// dropPrevious rolls the consumers out once more, onto a version with the
// same key and without the previous one, and returns the dual-key version
// it replaced, for retire to delete with the old one.
func (r *rotation) dropPrevious(ctx workflow.Context) (activities.SecretRef, error) {
	dual := *r.st.New
	var next activities.SecretRef
	if err := workflow.ExecuteActivity(short(ctx), kube.StageWithoutPrevious, activities.DropPreviousInput{
		Plan: r.plan, From: dual, Rotation: r.key(ctx),
	}).Get(ctx, &next); err != nil {
		return dual, err
	}
	in := activities.PromoteInput{
		Namespace: r.plan.Namespace, From: dual, To: next, Consumers: r.plan.Consumers, Ingresses: r.plan.Ingresses,
		Reason: fmt.Sprintf("rotator %s: %s -> %s (previous key dropped)", workflow.GetInfo(ctx).WorkflowExecution.ID, dual.Name, next.Name),
		Target: r.plan.Target,
	}
	var res activities.PromoteResult
	if err := workflow.ExecuteActivity(r.rollout(ctx), kube.PromoteAndAwait, in).Get(ctx, &res); err != nil {
		return dual, fmt.Errorf("roll out %s without the previous key (the consumers are on %s or %s, both with the new key): %w",
			next.Name, dual.Name, next.Name, err)
	}
	r.skipDeleted(res.Deleted)
	r.st.New = &next
	r.st.PreviousKey = fmt.Sprintf("dropped at retire: the consumers moved to %s, which carries the new key alone", next.Name)
	return dual, nil
}

// details is what the Temporal UI shows as the rotation's current details:
// what it waits for and what to do about it.
func (r *rotation) details(ctx workflow.Context) {
	d := fmt.Sprintf("**%s**: %s", r.in.Target, r.st.Step)
	if r.st.Step == StepGrace && r.st.Reminder == "" && r.st.Approved == nil && r.st.Aborted == nil {
		if !r.st.GraceDeadline.IsZero() {
			d += fmt.Sprintf(" until %s", r.st.GraceDeadline.UTC().Format(time.RFC3339))
		}
		// Code spans, so the UI's Markdown leaves "--" and quotes as typed.
		d += fmt.Sprintf("\n\nThe old version stays valid until then. To end grace now: `starter approve %s --reason '...'` "+
			"(or send signal approve with `{\"by\": \"you\", \"reason\": \"...\"}`); to roll back: `starter abort %s --reason '...'` (signal abort, same JSON).",
			r.in.Target, r.in.Target)
	}
	if r.st.Reminder != "" {
		d += "\n\n" + r.st.Reminder
		// The same decision from the UI's signal form.
		switch {
		case r.st.Step == StepCompensationFailed:
			d += " (or send signal retry with `{\"by\": \"you\", \"reason\": \"...\"}`)"
		case r.st.Step == StepAwaitWindow && !r.promoted, r.st.Step == StepAwaitKeys:
			d += " (to abort from the UI: signal abort with `{\"by\": \"you\", \"reason\": \"...\"}`)"
		case r.st.Step == StepGrace:
			d += " (or send signal approve with `{\"by\": \"you\", \"reason\": \"...\"}`)"
		case r.st.Step == StepRetire && len(r.st.RetireWaitsFor) > 0:
			d += " (or send signal approve with `{\"by\": \"you\", \"reason\": \"...\", \"keepOld\": true}`)"
		}
	}
	if r.st.Left != "" {
		d += "\n\nLeft: " + r.st.Left
	}
	if n := len(r.st.Ignored); n > 0 && r.st.Ignored[n-1].Step == r.st.Step {
		// Only while the rotation is still where the signal found it:
		// after that the refusal is history, kept in the status.
		ig := r.st.Ignored[n-1]
		d += fmt.Sprintf("\n\n%s from %s at %s was not taken: %s", ig.Signal, ig.By, ig.At.UTC().Format(time.RFC3339), ig.Why)
	}
	if r.st.Old != nil {
		d += fmt.Sprintf("\n\n%s, Secret %s/%s", r.steps.kind, r.plan.Namespace, r.st.Old.Name)
		if r.st.New != nil {
			d += " → " + r.st.New.Name
		}
		d += "; consumers: " + r.consumerList()
	}
	workflow.SetCurrentDetails(ctx, d)
}
