package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"rotator/activities"
	"rotator/catalog"
)

// undoState is how far compensation got, so that a retry goes on from
// where it stopped.
type undoState struct {
	restored, movedBack, undone, vault, cleaned, deleted bool
}

// compensate undoes, in reverse, what change did, then ends the workflow
// with the cause. It runs on a disconnected context so that it also runs
// after the workflow was cancelled or its steps were aborted. The backing
// system takes the previous version back first (a consumer moving back to
// a password the database no longer has would lose its login); a step
// that cannot finish leaves the rotation waiting for a person, with what
// is left where in its status, until `starter retry` runs the rest again.
func (r *rotation) compensate(ctx workflow.Context, cause error) (Status, error) {
	if !r.safe {
		return r.compensateV0(ctx, cause)
	}
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	failedAt := r.st.Step
	r.recordFailure(dctx, failedAt)
	workflow.GetLogger(ctx).Warn("rotation failed; compensating", "target", r.in.Target, "cause", cause)
	msg := r.causeMessage(cause)
	for {
		r.setStep(dctx, StepCompensating)
		err := r.rollBack(dctx)
		r.recordCompensation(dctx, failedAt, err == nil)
		if err == nil {
			break
		}
		r.st.Left = r.left()
		r.st.Error = fmt.Sprintf("%s; compensation did not finish, so the rotation needs a person: %s", msg, message(err))
		r.st.Reminder = fmt.Sprintf("fix what stopped the rollback (%s), then run it again: starter retry %s --reason '...'", message(err), r.in.Target)
		r.setStep(dctx, StepCompensationFailed)
		r.notify(dctx, catalog.EventCompensationFailed, r.st.Error+". "+r.st.Reminder, time.Time{})
		workflow.GetLogger(ctx).Error("compensation did not finish; waiting for starter retry", "target", r.in.Target,
			"error", err, "left", r.st.Left)
		n := r.retries
		if err := workflow.Await(dctx, func() bool { return r.retries > n }); err != nil {
			return r.st, err
		}
		r.st.Reminder = ""
	}
	r.st.Left = ""
	msg += fmt.Sprintf("; rolled back: consumers are on %s again", r.st.Old.Name)
	if st, ok, err := r.endDecided(ctx, dctx, msg); ok {
		return st, err
	}
	errType := activities.ErrRotationFailed
	if r.st.Aborted != nil {
		errType = activities.ErrAborted
	}
	return r.finish(dctx, StepRolledBack, temporal.NewNonRetryableApplicationError(msg, errType, cause))
}

// endDecided ends a rotation that a person stopped and that rolled back
// cleanly without failing it: an abort completes with the result step
// rolled-back, and a cancellation from the Temporal UI ends canceled.
// Failed is left for what a person must look at. ok is false for a
// rollback after a failure, and for runs that began before this change.
func (r *rotation) endDecided(ctx, dctx workflow.Context, msg string) (Status, bool, error) {
	aborted, canceled := r.st.Aborted != nil, ctx.Err() != nil
	if !aborted && !canceled {
		return r.st, false, nil
	}
	if workflow.GetVersion(dctx, "decided-ends-clean", workflow.DefaultVersion, 1) != 1 {
		return r.st, false, nil
	}
	r.st.Outcome = msg
	st, err := r.finish(dctx, StepRolledBack, nil)
	if !aborted {
		err = temporal.NewCanceledError(msg)
	}
	return st, true, err
}

// causeMessage says why the rotation is being rolled back.
func (r *rotation) causeMessage(cause error) string {
	if r.st.Aborted != nil {
		msg := fmt.Sprintf("rotation of %s aborted by %s", r.in.Target, r.st.Aborted.By)
		if r.st.Aborted.Reason != "" {
			msg += " (" + r.st.Aborted.Reason + ")"
		}
		return msg
	}
	return fmt.Sprintf("rotation of %s failed: %s", r.in.Target, message(cause))
}

// rollBack runs each undo step that is still to do, in order, and stops
// at the first that fails: each one needs the one before.
func (r *rotation) rollBack(ctx workflow.Context) error {
	u := &r.undo
	if r.applied && r.steps.restore != nil && !u.restored {
		if err := r.steps.restore(undo(ctx), r); err != nil {
			return fmt.Errorf("restore the previous version in the backing system: %w", err)
		}
		u.restored = true
	}
	if r.promoted && !u.movedBack {
		if err := r.moveBack(ctx); err != nil {
			return fmt.Errorf("repoint consumers to %s: %w", r.st.Old.Name, err)
		}
		u.movedBack = true
	}
	if r.applied && r.steps.undoApply != nil && !u.undone {
		if err := r.steps.undoApply(undo(ctx), r); err != nil {
			return fmt.Errorf("undo apply: %w", err)
		}
		u.undone = true
	}
	if r.staged && !u.vault && r.recordsVersion(ctx) {
		if err := r.restoreVault(undo(ctx)); err != nil {
			return err
		}
		u.vault = true
	}
	if r.steps.cleanup != nil && !u.cleaned {
		if err := r.steps.cleanup(undo(ctx), r); err != nil {
			return fmt.Errorf("clean up: %w", err)
		}
		u.cleaned = true
	}
	if r.staged && !u.deleted {
		ref := r.stagedRef()
		if err := workflow.ExecuteActivity(undo(ctx), kube.RetireSecret, activities.RetireInput{
			Secret: ref, StagedByRun: r.key(ctx),
		}).Get(ctx, nil); err != nil {
			return fmt.Errorf("delete new Secret %s: %w", ref.Name, err)
		}
		u.deleted = true
	}
	return nil
}

// recordsVersion says the new version is recorded in Vault, where its
// labels must move back.
func (r *rotation) recordsVersion(ctx workflow.Context) bool {
	return r.plan.Vault != nil && r.st.New != nil && r.st.New.VaultVersion > 0 &&
		workflow.GetVersion(ctx, "vault-labels", workflow.DefaultVersion, 1) == 1
}

// restoreVault puts back the Vault labels promote found (or, before
// promote, the old version's CURRENT) and soft-deletes the new version.
func (r *rotation) restoreVault(ctx workflow.Context) error {
	restore := r.vaultPrior
	if !r.promoted {
		restore = activities.VaultLabels{Current: r.st.Old.VaultVersion}
	}
	if err := workflow.ExecuteActivity(ctx, vault.RollbackVersion, activities.VaultInput{
		Vault: *r.plan.Vault, Version: r.st.New.VaultVersion, Restore: restore,
	}).Get(ctx, nil); err != nil {
		return fmt.Errorf("restore Vault labels of %s: %w", r.plan.Vault.Path, err)
	}
	return nil
}

// moveBack repoints the consumers to the old version and waits for that
// rollout; consumers deleted since are skipped.
func (r *rotation) moveBack(ctx workflow.Context) error {
	var back activities.PromoteResult
	err := workflow.ExecuteActivity(summarized(undo(ctx), r.repointSummary(r.st.Old.Name)+" (rollback)"), kube.Promote, activities.PromoteInput{
		Namespace: r.plan.Namespace, From: *r.stagedNew(), To: *r.st.Old, Consumers: r.plan.Consumers, Ingresses: r.plan.Ingresses,
		Reason: fmt.Sprintf("rotator %s: rolled back to %s", workflow.GetInfo(ctx).WorkflowExecution.ID, r.st.Old.Name),
		Target: r.plan.Target,
	}).Get(ctx, &back)
	if err != nil {
		return err
	}
	r.skipDeleted(back.Deleted)
	if err := workflow.ExecuteActivity(undoRollout(ctx), kube.AwaitRollout, activities.AwaitInput{
		Namespace: r.plan.Namespace, Rollouts: back.Rollouts, Target: r.plan.Target,
	}).Get(ctx, nil); err != nil {
		return err
	}
	r.setConsumers(stateRolledBack)
	return nil
}

// versions are the previous version and the new one, as a backing
// system's steps name them; zero before preflight or stage set them.
func (r *rotation) versions() (prev, next activities.SecretRef) {
	if r.st.Old != nil {
		prev = *r.st.Old
	}
	if r.st.New != nil {
		next = *r.st.New
	}
	return prev, next
}

// stagedRef is the version this rotation staged. Staging may have created
// the Secret and then failed, so the name is derived from the plan;
// RetireSecret's StagedByRun keeps a Secret somebody else created.
func (r *rotation) stagedRef() activities.SecretRef {
	return activities.SecretRef{Namespace: r.plan.Namespace, Name: fmt.Sprintf("%s-%d", r.plan.Base, r.plan.NextVersion),
		Version: r.plan.NextVersion}
}

// stagedNew is the new version as stage returned it, or as derived.
func (r *rotation) stagedNew() *activities.SecretRef {
	if r.st.New != nil {
		return r.st.New
	}
	ref := r.stagedRef()
	return &ref
}

// left says what the backing system and each consumer are on, for a
// person to take over a compensation that could not finish.
func (r *rotation) left() string {
	var parts []string
	for _, c := range r.st.Consumers {
		on := r.st.Old.Name
		switch {
		case c.State == stateDeleted:
			parts = append(parts, c.Workload.String()+" deleted")
			continue
		case r.promoted && !r.undo.movedBack:
			on = r.stagedNew().Name + " (the new version; moving it back did not finish)"
		}
		parts = append(parts, fmt.Sprintf("%s on %s", c.Workload, on))
	}
	if r.applied && r.steps.left != nil {
		parts = append(parts, r.steps.left(r))
	}
	if r.staged && !r.undo.deleted {
		parts = append(parts, "Secret "+r.stagedNew().Name+" still exists")
	}
	return strings.Join(parts, "; ")
}

// compensateV0 is compensation as rotations started before
// workload-safety run it: consumers back first, ten minutes of retries,
// and the end of the workflow when it cannot finish.
func (r *rotation) compensateV0(ctx workflow.Context, cause error) (Status, error) {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	failedAt := r.st.Step
	r.recordFailure(dctx, failedAt)
	r.setStep(dctx, StepCompensating)
	workflow.GetLogger(ctx).Warn("rotation failed; compensating", "target", r.in.Target, "cause", cause)
	var errs []error
	if r.promoted {
		var back activities.PromoteResult
		err := workflow.ExecuteActivity(short(dctx), kube.Promote, activities.PromoteInput{
			Namespace: r.plan.Namespace, From: *r.st.New, To: *r.st.Old, Consumers: r.plan.Consumers, Ingresses: r.plan.Ingresses,
			Reason: fmt.Sprintf("rotator %s: rolled back to %s", workflow.GetInfo(ctx).WorkflowExecution.ID, r.st.Old.Name),
			Target: r.plan.Target,
		}).Get(dctx, &back)
		if err == nil {
			err = workflow.ExecuteActivity(rollout(dctx), kube.AwaitRollout,
				activities.AwaitInput{Namespace: r.plan.Namespace, Rollouts: back.Rollouts}).Get(dctx, nil)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("repoint consumers to %s: %w", r.st.Old.Name, err))
		} else {
			r.setConsumers(stateRolledBack)
		}
	}
	// Before workload-safety, the one undo step of a kind ran here.
	if r.applied && r.steps.restore != nil && len(errs) == 0 {
		if err := r.steps.restore(dctx, r); err != nil {
			errs = append(errs, fmt.Errorf("undo apply: %w", err))
		}
	}
	if r.staged && len(errs) == 0 && r.recordsVersion(dctx) {
		if err := r.restoreVault(short(dctx)); err != nil {
			errs = append(errs, err)
		}
	}
	if r.steps.cleanup != nil {
		if err := r.steps.cleanup(dctx, r); err != nil {
			errs = append(errs, fmt.Errorf("clean up: %w", err))
		}
	}
	if r.staged && len(errs) == 0 {
		ref := r.stagedRef()
		if err := workflow.ExecuteActivity(short(dctx), kube.RetireSecret, activities.RetireInput{
			Secret: ref, StagedByRun: workflow.GetInfo(ctx).WorkflowExecution.RunID,
		}).Get(dctx, nil); err != nil {
			errs = append(errs, fmt.Errorf("delete new Secret %s: %w", ref.Name, err))
		}
	}
	msg := r.causeMessage(cause)
	r.recordCompensation(dctx, failedAt, len(errs) == 0)
	if len(errs) > 0 {
		err := errors.Join(errs...)
		return r.finish(dctx, StepFailed, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s; compensation did not finish, so the rotation needs a person: %v", msg, err), activities.ErrCompensationFailed, cause))
	}
	msg += fmt.Sprintf("; rolled back: consumers are on %s again", r.st.Old.Name)
	errType := activities.ErrRotationFailed
	if r.st.Aborted != nil {
		errType = activities.ErrAborted
	}
	return r.finish(dctx, StepRolledBack, temporal.NewNonRetryableApplicationError(msg, errType, cause))
}
