// Package workflows holds the rotation workflows: one shared skeleton
// (preflight, stage, apply, promote, verify, grace, retire, with
// compensation) and one short file per kind that supplies its steps.
package workflows

import (
	"fmt"
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
	// notices is the notification bookkeeping (version "notify").
	notices notices
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
	r.notify(ctx, catalog.EventStarted, r.startedMessage(), time.Time{})
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
