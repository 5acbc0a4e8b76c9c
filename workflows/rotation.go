// Package workflows holds the rotation workflows: one shared skeleton
// (preflight, stage, apply, promote, verify, grace, retire, with
// compensation) and one short file per kind that supplies its steps.
package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"rotator/activities"
	"rotator/catalog"
)

// Names a client uses to talk to a rotation.
const (
	// TaskQueue is the default task queue of the worker.
	TaskQueue = "rotator"
	// SignalApprove and UpdateApprove end grace early and retire.
	SignalApprove = "approve"
	UpdateApprove = "approve"
	// SignalAbort and UpdateAbort roll the rotation back.
	SignalAbort = "abort"
	UpdateAbort = "abort"
	// QueryStatus returns the Status.
	QueryStatus = "status"
	// SignalKeysStaged and UpdateKeysStaged tell an API-key rotation that
	// the engineer staged the new keys; the Update answers with the
	// providers' verdict.
	SignalKeysStaged = "keys-staged"
	UpdateKeysStaged = "keys-staged"
)

// Search attributes every rotation keeps up to date, for the UI's filters.
var (
	SearchTarget = temporal.NewSearchAttributeKeyKeyword("RotationTarget")
	SearchKind   = temporal.NewSearchAttributeKeyKeyword("RotationKind")
	SearchStep   = temporal.NewSearchAttributeKeyKeyword("RotationStep")
)

// WorkflowID is the one ID a rotation of the target may run under, which is
// how Temporal refuses a second concurrent rotation of the same target.
func WorkflowID(target string) string { return "rotate/" + target }

// RotateInput starts a rotation. It is small enough to type into the
// Temporal UI's Start Workflow form: {"target": "orchestrator-jwt"}.
type RotateInput struct {
	Target string `json:"target"`
	// Emergency skips grace and retires the old version as soon as the new
	// one is rolled out (the key is presumed compromised).
	Emergency bool `json:"emergency,omitempty"`
	// RequestedBy records who asked for the rotation.
	RequestedBy string `json:"requestedBy,omitempty"`
	// Grace overrides the catalog's grace period, e.g. "24h".
	Grace string `json:"grace,omitempty"`
}

// Decision is the payload of approve and abort.
type Decision struct {
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

// Step names where a rotation is; the values match RotationStep.
type Step string

// The steps of the skeleton, in order, and the ends a rotation can reach.
const (
	StepPreflight    Step = "preflight"
	StepAwaitKeys    Step = "awaiting-keys"
	StepStage        Step = "stage"
	StepApply        Step = "apply"
	StepPromote      Step = "promote"
	StepVerify       Step = "verify"
	StepGrace        Step = "grace"
	StepRetire       Step = "retire"
	StepDone         Step = "done"
	StepCompensating Step = "compensating"
	StepRolledBack   Step = "rolled-back"
	StepFailed       Step = "failed"
)

// ConsumerStatus is one consumer and how far its rollout got.
type ConsumerStatus struct {
	Workload activities.Workload `json:"workload"`
	State    string              `json:"state"`
}

// Status is what the status query returns and the workflow's result. It
// holds references and fingerprints only, never secret material.
type Status struct {
	Target        string                `json:"target"`
	Kind          catalog.Kind          `json:"kind"`
	Step          Step                  `json:"step"`
	Emergency     bool                  `json:"emergency,omitempty"`
	RequestedBy   string                `json:"requestedBy,omitempty"`
	StartedAt     time.Time             `json:"startedAt"`
	StepStartedAt time.Time             `json:"stepStartedAt"`
	GraceDeadline time.Time             `json:"graceDeadline,omitzero"`
	FinishedAt    time.Time             `json:"finishedAt,omitzero"`
	Old           *activities.SecretRef `json:"old,omitempty"`
	New           *activities.SecretRef `json:"new,omitempty"`
	Consumers     []ConsumerStatus      `json:"consumers,omitempty"`
	Approved      *Decision             `json:"approved,omitempty"`
	Aborted       *Decision             `json:"aborted,omitempty"`
	// Reminder says what the rotation waits for from a person, if anything.
	Reminder string `json:"reminder,omitempty"`
	// KeysError is why the last staged keys were refused.
	KeysError string `json:"keysError,omitempty"`
	// StagedKeys are the fingerprints of the verified new keys, by provider.
	StagedKeys map[string]string `json:"stagedKeys,omitempty"`
	// Revoked lists old keys revoked through provider admin APIs.
	Revoked []string `json:"revoked,omitempty"`
	// Certificate describes a tls target's new certificate once verified.
	Certificate *activities.CertInfo `json:"certificate,omitempty"`
	Error       string               `json:"error,omitempty"`
}

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
	// undoApply reverts apply during compensation.
	undoApply func(ctx workflow.Context, r *rotation) error
	// verify proves the new material works, after the consumers' check.
	verify func(ctx workflow.Context, r *rotation) error
	// revoke invalidates the old material at retire.
	revoke func(ctx workflow.Context, r *rotation) error
	// cleanup removes leftovers (staged keys) when a rotation fails.
	cleanup func(ctx workflow.Context, r *rotation) error
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

// preflight checks everything that can be checked before a change.
func (r *rotation) preflight(ctx workflow.Context) error {
	in := activities.PreflightInput{Target: r.in.Target, Kind: r.steps.kind}
	var err error
	if r.local {
		err = workflow.ExecuteLocalActivity(quick(ctx), kube.Preflight, in).Get(ctx, &r.plan)
	} else {
		err = workflow.ExecuteActivity(short(ctx), kube.Preflight, in).Get(ctx, &r.plan)
	}
	if err != nil {
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
		r.st.Consumers = append(r.st.Consumers, ConsumerStatus{Workload: c, State: "on old version"})
	}
	for _, name := range r.plan.Ingresses {
		r.st.Consumers = append(r.st.Consumers, ConsumerStatus{Workload: activities.Workload{Kind: "Ingress", Name: name}, State: "on old version"})
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
	var err error
	if r.local {
		// Published with the next step: a local activity ends in the
		// same workflow task, so the UI would never see this value.
		r.noteStep(ctx, StepStage)
		err = workflow.ExecuteLocalActivity(quick(ctx), kube.StageSecret, stage).Get(ctx, &staged)
	} else {
		r.setStep(ctx, StepStage)
		err = workflow.ExecuteActivity(short(ctx), kube.StageSecret, stage).Get(ctx, &staged)
	}
	if err != nil {
		return r.explain(StepStage, err)
	}
	r.st.New = &staged

	if r.steps.apply != nil {
		r.setStep(ctx, StepApply)
		r.applied = true
		if err := r.steps.apply(ctx, r); err != nil {
			return r.explain(StepApply, err)
		}
	}

	r.setStep(ctx, StepPromote)
	r.promoted = true
	promoted, err := r.promote(ctx, staged)
	if err != nil {
		return r.explain(StepPromote, err)
	}
	r.setConsumers("rolled out")

	// When the rollout wait checked every consumer's template and no
	// Ingress serves the Secret, verify's own activity would read nothing:
	// version 1 skips it, and the step too if the kind checks nothing.
	checked := activities.CheckedInRollout(promoted.Rollouts, r.plan.Consumers, staged.Name)
	// local-steps came after verify-in-rollout, so it implies it; not
	// asking spares the marker and the search attribute update.
	skip := checked && len(r.plan.Ingresses) == 0 &&
		(r.local || workflow.GetVersion(ctx, "verify-in-rollout", workflow.DefaultVersion, 1) == 1)
	if skip && r.steps.verify == nil {
		return nil
	}
	r.setStep(ctx, StepVerify)
	if !skip {
		if err := workflow.ExecuteActivity(short(ctx), kube.VerifyConsumers, activities.VerifyInput{
			Namespace: r.plan.Namespace, Old: *r.st.Old, New: staged, Consumers: r.plan.Consumers, Ingresses: r.plan.Ingresses,
			CheckedInRollout: checked,
		}).Get(ctx, nil); err != nil {
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

// promote repoints the consumers to the staged version, moves Vault's
// labels if the target records versions there, and waits for the rollout.
func (r *rotation) promote(ctx workflow.Context, staged activities.SecretRef) (activities.PromoteResult, error) {
	var promoted activities.PromoteResult
	in := activities.PromoteInput{
		Namespace: r.plan.Namespace, From: *r.st.Old, To: staged, Consumers: r.plan.Consumers, Ingresses: r.plan.Ingresses,
		Reason: fmt.Sprintf("rotator %s: %s -> %s", workflow.GetInfo(ctx).WorkflowExecution.ID, r.st.Old.Name, staged.Name),
		Target: r.plan.Target, Seen: r.plan.Seen,
	}
	if r.local && r.plan.Vault == nil {
		r.setConsumers("rolling out")
		err := workflow.ExecuteActivity(rollout(ctx), kube.PromoteAndAwait, in).Get(ctx, &promoted)
		return promoted, err
	}
	if err := workflow.ExecuteActivity(short(ctx), kube.Promote, in).Get(ctx, &promoted); err != nil {
		return promoted, err
	}
	if r.plan.Vault != nil && workflow.GetVersion(ctx, "vault-labels", workflow.DefaultVersion, 1) == 1 {
		if err := workflow.ExecuteActivity(short(ctx), vault.PromoteVersion, activities.VaultInput{
			Vault: *r.plan.Vault, Version: staged.VaultVersion,
		}).Get(ctx, &r.vaultPrior); err != nil {
			return promoted, err
		}
	}
	r.setConsumers("rolling out")
	err := workflow.ExecuteActivity(rollout(ctx), kube.AwaitRollout,
		activities.AwaitInput{Namespace: r.plan.Namespace, Rollouts: promoted.Rollouts}).Get(ctx, nil)
	return promoted, err
}

// awaitGrace keeps the old version valid until the grace period ends, an
// engineer approves, or an engineer aborts.
func (r *rotation) awaitGrace(ctx workflow.Context) error {
	r.setStep(ctx, StepGrace)
	decided := func() bool { return r.st.Approved != nil || r.st.Aborted != nil }
	if !r.in.Emergency {
		r.st.GraceDeadline = workflow.Now(ctx).Add(r.grace)
	}
	r.recordGrace(ctx, r.st.GraceDeadline)
	if !r.in.Emergency {
		if _, err := workflow.AwaitWithTimeout(ctx, r.grace, decided); err != nil {
			return err
		}
	}
	if r.approvalRequired != "" && !decided() {
		// The timer alone cannot end this grace: only a person can say
		// the old credential is gone where rotator cannot reach.
		r.st.Reminder = r.approvalRequired
		if err := workflow.Await(ctx, decided); err != nil {
			return err
		}
		r.st.Reminder = ""
	}
	if r.st.Aborted != nil {
		return errAborted
	}
	return nil
}

// retire removes the old version once nothing references it.
func (r *rotation) retire(ctx workflow.Context) error {
	r.setStep(ctx, StepRetire)
	if err := workflow.ExecuteActivity(short(ctx), kube.RetireSecret,
		activities.RetireInput{Secret: *r.st.Old}).Get(ctx, nil); err != nil {
		return err
	}
	if r.steps.revoke != nil {
		return r.steps.revoke(ctx, r)
	}
	return nil
}

var errAborted = errors.New("aborted")

// message is an error's own text without the chain Temporal appends.
func message(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}

// compensate undoes, in reverse, what change did, then ends the workflow
// with the cause. It runs on a disconnected context so that it also runs
// after the workflow was cancelled or its steps were aborted.
func (r *rotation) compensate(ctx workflow.Context, cause error) (Status, error) {
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
			r.setConsumers("rolled back")
		}
	}
	if r.applied && r.steps.undoApply != nil && len(errs) == 0 {
		if err := r.steps.undoApply(dctx, r); err != nil {
			errs = append(errs, fmt.Errorf("undo apply: %w", err))
		}
	}
	if r.staged && len(errs) == 0 && r.plan.Vault != nil && r.st.New != nil && r.st.New.VaultVersion > 0 &&
		workflow.GetVersion(dctx, "vault-labels", workflow.DefaultVersion, 1) == 1 {
		restore := r.vaultPrior
		if !r.promoted {
			restore = activities.VaultLabels{Current: r.st.Old.VaultVersion}
		}
		if err := workflow.ExecuteActivity(short(dctx), vault.RollbackVersion, activities.VaultInput{
			Vault: *r.plan.Vault, Version: r.st.New.VaultVersion, Restore: restore,
		}).Get(dctx, nil); err != nil {
			errs = append(errs, fmt.Errorf("restore Vault labels of %s: %w", r.plan.Vault.Path, err))
		}
	}
	if r.steps.cleanup != nil {
		if err := r.steps.cleanup(dctx, r); err != nil {
			errs = append(errs, fmt.Errorf("clean up: %w", err))
		}
	}
	// The new Secret is removed only once consumers are back on the old
	// one; RetireSecret refuses anyway while anything references it.
	if r.staged && len(errs) == 0 {
		// Staging may have created the Secret and then failed, so the
		// name is derived from the plan; StagedByRun keeps a Secret that
		// somebody else created.
		ref := activities.SecretRef{Namespace: r.plan.Namespace, Name: fmt.Sprintf("%s-%d", r.plan.Base, r.plan.NextVersion),
			Version: r.plan.NextVersion}
		if err := workflow.ExecuteActivity(short(dctx), kube.RetireSecret, activities.RetireInput{
			Secret: ref, StagedByRun: workflow.GetInfo(ctx).WorkflowExecution.RunID,
		}).Get(dctx, nil); err != nil {
			errs = append(errs, fmt.Errorf("delete new Secret %s: %w", ref.Name, err))
		}
	}

	var msg string
	if r.st.Aborted != nil {
		msg = fmt.Sprintf("rotation of %s aborted by %s", r.in.Target, r.st.Aborted.By)
		if r.st.Aborted.Reason != "" {
			msg += " (" + r.st.Aborted.Reason + ")"
		}
	} else {
		msg = fmt.Sprintf("rotation of %s failed: %s", r.in.Target, message(cause))
	}
	r.recordCompensation(dctx, failedAt, len(errs) == 0)
	if len(errs) > 0 {
		err := errors.Join(errs...)
		return r.finish(dctx, StepFailed, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s; compensation did not finish, so the rotation needs a person: %v", msg, err), "CompensationFailed", cause))
	}
	msg += fmt.Sprintf("; rolled back: consumers are on %s again", r.st.Old.Name)
	errType := "RotationFailed"
	if r.st.Aborted != nil {
		errType = "Aborted"
	}
	return r.finish(dctx, StepRolledBack, temporal.NewNonRetryableApplicationError(msg, errType, cause))
}

// finish records the end state; err is returned as the workflow's error.
func (r *rotation) finish(ctx workflow.Context, step Step, err error) (Status, error) {
	failedAt := r.st.Step
	r.setStep(ctx, step)
	r.st.FinishedAt = workflow.Now(ctx)
	if err != nil {
		r.st.Error = err.Error()
	}
	r.recordEnd(ctx, step, failedAt)
	return r.st, err
}

// explain names the step that failed and keeps the activity's error type
// and message, without the activity error's framing (IDs, attempt).
func (r *rotation) explain(step Step, err error) error {
	if r.st.Aborted != nil && temporal.IsCanceledError(err) {
		return errAborted
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %s", step, app.Message()), app.Type(), err)
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v", step, err), "StepFailed", err)
}

func (r *rotation) setStep(ctx workflow.Context, s Step) {
	r.noteStep(ctx, s)
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchStep.ValueSet(string(s))); err != nil {
		workflow.GetLogger(ctx).Warn("could not update RotationStep", "step", s, "error", err)
	}
}

// noteStep records the step for the status query only.
func (r *rotation) noteStep(ctx workflow.Context, s Step) {
	r.st.Step = s
	r.st.StepStartedAt = workflow.Now(ctx)
}

func (r *rotation) setConsumers(state string) {
	for i := range r.st.Consumers {
		r.st.Consumers[i].State = state
	}
}

// short is for steps that make a few API calls.
func short(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute, ScheduleToCloseTimeout: 10 * time.Minute, RetryPolicy: shortRetry(),
	})
}

// quick is for the local activities: short's timeouts and retries, in the
// worker, without a trip through Temporal per attempt.
func quick(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: time.Minute, ScheduleToCloseTimeout: 10 * time.Minute, RetryPolicy: shortRetry(),
	})
}

// shortRetry backs off from a second to half a minute: an API server or
// Vault that is briefly away is waited for, a long outage ends the step.
func shortRetry() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second}
}

// rollout is for waiting on a rollout: long, but watched by heartbeats.
func rollout(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Minute,
		ScheduleToCloseTimeout: time.Hour,
		HeartbeatTimeout:       time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
}
