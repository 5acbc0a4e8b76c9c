package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"rotator/activities"
)

// preflight checks everything that can be checked before a change.
func (r *rotation) preflight(ctx workflow.Context) error {
	in := activities.PreflightInput{Target: r.in.Target, Kind: r.steps.kind}
	if r.safe {
		in.Emergency, in.Rotation = r.in.Emergency, r.key(ctx)
	}
	var err error
	if r.local {
		err = workflow.ExecuteLocalActivity(summarizedLocal(quick(ctx), "check "+r.in.Target+" and what uses its Secret"), kube.Preflight, in).Get(ctx, &r.plan)
	} else {
		err = workflow.ExecuteActivity(summarized(short(ctx), "check "+r.in.Target+" and what uses its Secret"), kube.Preflight, in).Get(ctx, &r.plan)
	}
	if err != nil {
		return err
	}
	if err := r.checkGrace(); err != nil {
		return err
	}
	if r.steps.preflight != nil {
		if err := r.steps.preflight(ctx, r); err != nil {
			return err
		}
	}
	if r.grace == 0 {
		r.grace = r.plan.Grace
	}
	old := r.plan.Current
	r.st.Old = &old
	for _, c := range r.plan.Consumers {
		r.st.Consumers = append(r.st.Consumers, ConsumerStatus{Workload: c, State: stateOnOld})
	}
	for _, name := range r.plan.Ingresses {
		r.st.Consumers = append(r.st.Consumers, ConsumerStatus{Workload: activities.Workload{Kind: "Ingress", Name: name}, State: stateOnOld})
	}
	for _, h := range r.plan.Unmoved {
		r.st.NotRepointed = append(r.st.NotRepointed, h.String())
	}
	if len(r.st.NotRepointed) > 0 {
		workflow.GetLogger(ctx).Warn("objects that use the old version and are not repointed; retire waits for them",
			"target", r.in.Target, "objects", r.st.NotRepointed)
	}
	if r.plan.DualKey {
		r.st.PreviousKey = fmt.Sprintf("the new version also carries the previous key (fingerprint %s) as %q, trusted until the next rotation replaces it",
			old.Fingerprint, activities.PreviousKey)
		if r.plan.DropPrevious {
			r.st.PreviousKey = fmt.Sprintf("the new version also carries the previous key (fingerprint %s) as %q until retire, which rolls the consumers out onto a version without it",
				old.Fingerprint, activities.PreviousKey)
		}
		if r.in.Emergency {
			r.st.PreviousKey = "emergency: the previous key is left out of the new version"
		}
	}
	return nil
}

// change runs every step that moves consumers to the new version.
func (r *rotation) change(ctx workflow.Context) error {
	if r.steps.obtain != nil {
		r.setStep(ctx, StepAwaitKeys)
		if err := r.steps.obtain(ctx, r); err != nil {
			return r.explain(StepAwaitKeys, err)
		}
	}
	var staged activities.SecretRef
	r.staged = true // set before the call: a timed-out create may still have landed
	stage := activities.StageInput{Plan: r.plan, Emergency: r.in.Emergency}
	if r.safe {
		stage.Rotation = r.key(ctx)
	}
	sctx := r.finishing(ctx)
	var err error
	if r.local {
		// Published with the next step: a local activity ends in the
		// same workflow task, so the UI would never see this value.
		r.noteStep(ctx, StepStage)
		err = workflow.ExecuteLocalActivity(summarizedLocal(quick(sctx), r.stageSummary()), kube.StageSecret, stage).Get(sctx, &staged)
	} else {
		r.setStep(ctx, StepStage)
		err = workflow.ExecuteActivity(summarized(short(sctx), r.stageSummary()), kube.StageSecret, stage).Get(sctx, &staged)
	}
	if err == nil {
		err = r.abortedSince()
	}
	if err != nil {
		return r.explain(StepStage, err)
	}
	r.st.New = &staged

	if r.plan.OldStopsAtApply {
		// The old password stops working at apply: consumers see it.
		if err := r.awaitWindow(ctx, StepApply); err != nil {
			return r.explain(StepApply, err)
		}
	}
	if r.steps.apply != nil {
		r.setStep(ctx, StepApply)
		r.applied = true
		err := r.steps.apply(r.finishing(ctx), r)
		if err == nil {
			err = r.abortedSince()
		}
		if err != nil {
			return r.explain(StepApply, err)
		}
	}

	if !r.plan.OldStopsAtApply {
		if err := r.awaitWindow(ctx, StepPromote); err != nil {
			return r.explain(StepPromote, err)
		}
	}
	r.setStep(ctx, StepPromote)
	r.promoted = true
	promoted, err := r.promote(ctx, staged)
	if err != nil {
		return r.explain(StepPromote, err)
	}
	r.setConsumers(stateRolledOut)
	r.skipDeleted(promoted.Deleted)

	// When the rollout wait checked every consumer's template and no
	// Ingress serves the Secret, verify's own activity would read nothing:
	// version 1 skips it, and the step too if the kind checks nothing.
	checked := activities.CheckedInRollout(promoted.Rollouts, r.plan.Consumers, staged.Name)
	// local-steps came after verify-in-rollout, so it implies it; not
	// asking spares the marker and the search attribute update.
	skip := checked && len(r.plan.Ingresses) == 0 &&
		(r.local || workflow.GetVersion(ctx, "verify-in-rollout", workflow.DefaultVersion, 1) == 1)
	stale := promoted.StillOnOld
	if !(skip && r.steps.verify == nil && (!r.safe || len(stale) == 0)) {
		r.setStep(ctx, StepVerify)
	}
	if !skip {
		var found activities.AwaitResult
		if err := workflow.ExecuteActivity(summarized(short(ctx), "check that the consumers run on "+staged.Name), kube.VerifyConsumers, activities.VerifyInput{
			Namespace: r.plan.Namespace, Old: *r.st.Old, New: staged, Consumers: r.plan.Consumers, Ingresses: r.plan.Ingresses,
			CheckedInRollout: checked,
		}).Get(ctx, &found); err != nil {
			return r.explain(StepVerify, err)
		}
		stale = append(stale, found.StillOnOld...)
	}
	if r.safe {
		if err := r.checkStale(ctx, stale); err != nil {
			return r.explain(StepVerify, err)
		}
	}
	if r.steps.verify != nil {
		if err := r.steps.verify(ctx, r); err != nil {
			return r.explain(StepVerify, err)
		}
	}
	return nil
}

// checkStale reports what still uses the old version after the rollout:
// retire waits for it. Where the old credential no longer works, anything
// still on it is broken, and verify fails.
func (r *rotation) checkStale(ctx workflow.Context, stale []activities.Holder) error {
	r.st.StillOnOld = nil
	for _, h := range stale {
		r.st.StillOnOld = append(r.st.StillOnOld, h.String())
	}
	if len(stale) == 0 {
		return nil
	}
	workflow.GetLogger(ctx).Warn("objects still use the old version after the rollout; retire waits for them",
		"target", r.in.Target, "secret", r.st.Old.Name, "objects", r.st.StillOnOld)
	if r.plan.OldStopsAtApply {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"%s still use%s Secret %s, whose password no longer works: repoint %s or add %s to the target's consumers",
			strings.Join(r.st.StillOnOld, ", "), plural1(len(stale)), r.st.Old.Name, them(len(stale)), them(len(stale))),
			activities.ErrStillInUse, nil)
	}
	return nil
}

// promote repoints the consumers to the staged version, moves Vault's
// labels if the target records versions there, and waits for the rollout.
// The patches finish before an abort takes effect; the rollout wait is
// cancelled by one, and compensation starts once it has stopped.
func (r *rotation) promote(ctx workflow.Context, staged activities.SecretRef) (activities.PromoteResult, error) {
	var promoted activities.PromoteResult
	in := activities.PromoteInput{
		Namespace: r.plan.Namespace, From: *r.st.Old, To: staged, Consumers: r.plan.Consumers, Ingresses: r.plan.Ingresses,
		Reason: fmt.Sprintf("rotator %s: %s -> %s", workflow.GetInfo(ctx).WorkflowExecution.ID, r.st.Old.Name, staged.Name),
		Target: r.plan.Target, Seen: r.plan.Seen, CheckOld: r.safe,
	}
	if r.local && r.plan.Vault == nil {
		r.setConsumers(stateRollingOut)
		err := workflow.ExecuteActivity(summarized(r.rollout(ctx), r.repointSummary(staged.Name)+" and await the rollout"), kube.PromoteAndAwait, in).Get(ctx, &promoted)
		return promoted, err
	}
	pctx := r.finishing(ctx)
	if err := workflow.ExecuteActivity(summarized(short(pctx), r.repointSummary(staged.Name)), kube.Promote, in).Get(pctx, &promoted); err != nil {
		return promoted, err
	}
	if r.plan.Vault != nil && workflow.GetVersion(ctx, "vault-labels", workflow.DefaultVersion, 1) == 1 {
		if err := workflow.ExecuteActivity(short(pctx), vault.PromoteVersion, activities.VaultInput{
			Vault: *r.plan.Vault, Version: staged.VaultVersion,
		}).Get(pctx, &r.vaultPrior); err != nil {
			return promoted, err
		}
	}
	if err := r.abortedSince(); err != nil {
		return promoted, err
	}
	r.setConsumers(stateRollingOut)
	aw := activities.AwaitInput{Namespace: r.plan.Namespace, Rollouts: promoted.Rollouts}
	if r.safe {
		aw.Target, aw.Old = r.plan.Target, r.st.Old.Name
	}
	var awaited activities.AwaitResult
	err := workflow.ExecuteActivity(summarized(r.rollout(ctx), "await the rollout of "+r.consumerList()), kube.AwaitRollout, aw).Get(ctx, &awaited)
	promoted.StillOnOld = awaited.StillOnOld
	return promoted, err
}

// stageSummary, repointSummary and consumerList say in the UI's timeline
// what a step's activity does to which objects.
func (r *rotation) stageSummary() string {
	return fmt.Sprintf("create Secret %s/%s-%d", r.plan.Namespace, r.plan.Base, r.plan.NextVersion)
}

func (r *rotation) repointSummary(to string) string {
	return fmt.Sprintf("repoint %s to %s", r.consumerList(), to)
}

func (r *rotation) consumerList() string {
	var names []string
	for _, c := range r.plan.Consumers {
		names = append(names, c.String())
	}
	for _, ing := range r.plan.Ingresses {
		names = append(names, "ingress/"+ing)
	}
	switch {
	case len(names) == 0:
		return "no consumers"
	case len(names) > 3:
		return fmt.Sprintf("%s and %d more", strings.Join(names[:3], ", "), len(names)-3)
	}
	return strings.Join(names, ", ")
}

// skipDeleted drops consumers deleted during the rotation from the plan:
// nothing of them uses either version any more.
func (r *rotation) skipDeleted(deleted []activities.Workload) {
	for _, d := range deleted {
		for i, c := range r.plan.Consumers {
			if c == d {
				r.plan.Consumers = append(r.plan.Consumers[:i:i], r.plan.Consumers[i+1:]...)
				break
			}
		}
		r.setConsumer(d, stateDeleted)
	}
}
