// Package workflows holds the rotation workflows: one shared skeleton
// (preflight, stage, apply, promote, verify, grace, retire, with
// compensation) and one short file per kind that supplies its steps.
package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"rotator/activities"
	"rotator/catalog"
)

// kindSteps is what a kind adds to the skeleton. Every hook is optional:
// jwt needs none, a database password has an apply step and its undo.
type kindSteps struct {
	kind catalog.Kind
	// preflight checks the backing system and completes r.plan.
	preflight func(ctx workflow.Context, r *rotation) error
	// obtain waits for material a person provides (API keys) and checks
	// it before anything changes.
	obtain func(ctx workflow.Context, r *rotation) error
	// apply makes the backing system accept the staged version.
	apply func(ctx workflow.Context, r *rotation) error
	// restore makes the backing system accept the previous version
	// again, before the consumers move back to it.
	restore func(ctx workflow.Context, r *rotation) error
	// undoApply reverts what is left of apply once the consumers are
	// back on the previous version.
	undoApply func(ctx workflow.Context, r *rotation) error
	// verify proves the new material works, after the consumers' check.
	verify func(ctx workflow.Context, r *rotation) error
	// revoke invalidates the old material at retire.
	revoke func(ctx workflow.Context, r *rotation) error
	// cleanup removes leftovers (staged keys) when a rotation fails.
	cleanup func(ctx workflow.Context, r *rotation) error
	// left says what the backing system is on, for a person to take over
	// a compensation that could not finish.
	left func(r *rotation) string
}

// rotation is the state of one run of the skeleton.
type rotation struct {
	in    RotateInput
	steps kindSteps
	st    Status
	plan  activities.Plan
	grace time.Duration
	// What has changed so far, so compensation undoes exactly that.
	staged, applied, promoted bool
	cancelSteps               workflow.CancelFunc
	// vaultPrior are the Vault labels promote replaced.
	vaultPrior activities.VaultLabels
	// approvalRequired holds retire until an engineer approves, e.g.
	// because old keys must be revoked by hand.
	approvalRequired string
	// keys-staged bookkeeping: requests received, checks done; the last
	// verdict is st.KeysError.
	keysRequested, keysChecked int
	// local runs preflight and stage as local activities and, without a
	// Vault record, promote and the rollout wait as one activity
	// (version "local-steps"); rotations started before keep their steps.
	local bool
	// safe is version "workload-safety": every reference counts, retire
	// waits for what still uses the old version, steps that change
	// something finish before an abort takes effect, and a compensation
	// that cannot finish waits for a person; rotations started before
	// keep their steps.
	safe bool
	// undo tracks compensation, which a retry runs again from where it
	// stopped.
	undo undoState
	// retries counts retry requests; keepOld is approve --keep-old.
	retries int
	keepOld bool
	// accountable is version "accountable-decisions": approve and abort
	// need a reason, and a grace from the input shorter than the
	// catalog's minGrace is refused; rotations started before accept
	// what they accepted then.
	accountable bool
}

var (
	kube  *activities.Kube
	vault *activities.Vault
)

// run is the skeleton every kind shares.
func run(ctx workflow.Context, in RotateInput, steps kindSteps) (Status, error) {
	r := &rotation{in: in, steps: steps}
	now := workflow.Now(ctx)
	r.st = Status{Target: in.Target, Kind: steps.kind, Step: StepPreflight, Emergency: in.Emergency,
		RequestedBy: in.RequestedBy, StartedAt: now, StepStartedAt: now}
	// Before the handlers: a decision the first workflow task delivers is
	// judged by this rotation's rules too.
	r.accountable = workflow.GetVersion(ctx, "accountable-decisions", workflow.DefaultVersion, 1) == 1
	if err := r.handle(ctx); err != nil {
		return r.st, err
	}
	if err := r.checkInput(ctx); err != nil {
		return r.finish(ctx, StepFailed, err)
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchTarget.ValueSet(in.Target),
		SearchKind.ValueSet(string(steps.kind)), SearchStep.ValueSet(string(StepPreflight))); err != nil {
		return r.st, err
	}
	// Preflight and stage only read and create, and each finds its own
	// earlier run, so they are safe to run again in a workflow task that a
	// dying worker never completed: as local activities they cost neither
	// a workflow task nor an activity task through Temporal each.
	r.local = workflow.GetVersion(ctx, "local-steps", workflow.DefaultVersion, 1) == 1
	r.safe = workflow.GetVersion(ctx, "workload-safety", workflow.DefaultVersion, 1) == 1
	stepCtx, cancel := workflow.WithCancel(ctx)
	r.cancelSteps = cancel

	if err := r.preflight(stepCtx); err != nil {
		return r.finish(ctx, StepFailed, r.explain(StepPreflight, err))
	}
	if err := r.change(stepCtx); err != nil {
		return r.compensate(ctx, err)
	}
	if !in.Emergency || r.approvalRequired != "" {
		if err := r.awaitGrace(ctx); err != nil {
			return r.compensate(ctx, err)
		}
	}
	if err := r.retire(ctx); err != nil {
		return r.finish(ctx, StepFailed, r.explain(StepRetire, err))
	}
	return r.finish(ctx, StepDone, nil)
}

func (r *rotation) checkInput(ctx workflow.Context) error {
	if r.in.Target == "" {
		return temporal.NewNonRetryableApplicationError(
			`target: is required: start the rotation with {"target": "<name from rotator.yaml>"}`, activities.ErrBadInput, nil)
	}
	if id := workflow.GetInfo(ctx).WorkflowExecution.ID; id != WorkflowID(r.in.Target) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"workflow ID %q: a rotation of %s must run as %q, so that two rotations of one target cannot overlap: start it again with that ID",
			id, r.in.Target, WorkflowID(r.in.Target)), activities.ErrBadInput, nil)
	}
	if r.in.Grace != "" {
		g, err := catalog.ParseDuration(r.in.Grace)
		if err != nil || g <= 0 {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"grace: %q must be a positive duration such as \"24h\" or \"7d\"; use emergency to skip grace", r.in.Grace),
				activities.ErrBadInput, nil)
		}
		r.grace = g
	}
	return nil
}

// checkGrace refuses a grace from the input that is shorter than the
// catalog's minimum for the target: whoever can start a workflow could
// otherwise retire the old version before anyone notices a bad rollout.
// An emergency rotation skips grace on purpose and is not held to it.
func (r *rotation) checkGrace() error {
	if !r.accountable || r.in.Grace == "" || r.in.Emergency || r.grace >= r.plan.MinGrace {
		return nil
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
		"grace: %s is shorter than target %s's minimum of %s (minGrace in the catalog): ask for at least %s, leave grace out for the catalog's %s, or lower minGrace in rotator.yaml",
		r.in.Grace, r.in.Target, catalog.FormatDuration(r.plan.MinGrace), catalog.FormatDuration(r.plan.MinGrace),
		catalog.FormatDuration(r.plan.Grace)), activities.ErrBadInput, nil)
}

// key marks what this rotation creates as its own. The original run ID
// survives `temporal workflow reset`, so a reset run takes what the run it
// replaces staged for its own (see activities.rotationKey).
func (r *rotation) key(ctx workflow.Context) string {
	info := workflow.GetInfo(ctx)
	if info.OriginalRunID != "" {
		return info.OriginalRunID
	}
	return info.WorkflowExecution.RunID
}

// preflight checks everything that can be checked before a change.
func (r *rotation) preflight(ctx workflow.Context) error {
	in := activities.PreflightInput{Target: r.in.Target, Kind: r.steps.kind}
	if r.safe {
		in.Emergency, in.Rotation = r.in.Emergency, r.key(ctx)
	}
	var err error
	if r.local {
		err = workflow.ExecuteLocalActivity(quick(ctx), kube.Preflight, in).Get(ctx, &r.plan)
	} else {
		err = workflow.ExecuteActivity(short(ctx), kube.Preflight, in).Get(ctx, &r.plan)
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
		err = workflow.ExecuteLocalActivity(quick(sctx), kube.StageSecret, stage).Get(sctx, &staged)
	} else {
		r.setStep(ctx, StepStage)
		err = workflow.ExecuteActivity(short(sctx), kube.StageSecret, stage).Get(sctx, &staged)
	}
	if err == nil {
		err = r.abortedSince()
	}
	if err != nil {
		return r.explain(StepStage, err)
	}
	r.st.New = &staged

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
		if err := workflow.ExecuteActivity(short(ctx), kube.VerifyConsumers, activities.VerifyInput{
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

// finishing is the context for a step that changes something: an abort
// does not cut it short (it could land after the compensation that undoes
// it), it takes effect when the step returns (see abortedSince).
func (r *rotation) finishing(ctx workflow.Context) workflow.Context {
	if !r.safe {
		return ctx
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	return dctx
}

// abortedSince turns an abort that arrived during a step run on a
// finishing context into the step's outcome.
func (r *rotation) abortedSince() error {
	if r.safe && r.st.Aborted != nil {
		return errAborted
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
		err := workflow.ExecuteActivity(r.rollout(ctx), kube.PromoteAndAwait, in).Get(ctx, &promoted)
		return promoted, err
	}
	pctx := r.finishing(ctx)
	if err := workflow.ExecuteActivity(short(pctx), kube.Promote, in).Get(pctx, &promoted); err != nil {
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
	err := workflow.ExecuteActivity(r.rollout(ctx), kube.AwaitRollout, aw).Get(ctx, &awaited)
	promoted.StillOnOld = awaited.StillOnOld
	return promoted, err
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
