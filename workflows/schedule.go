package workflows

import (
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"rotator/activities"
	"rotator/catalog"
)

// TypeScheduledRotation is the workflow type a rotation's Temporal Schedule
// starts.
const TypeScheduledRotation = "ScheduledRotation"

// searchScheduledBy is set by the Temporal server on every run a Schedule
// starts; its value is the Schedule's ID.
var searchScheduledBy = temporal.NewSearchAttributeKeyKeyword("TemporalScheduledById")

// ScheduledInput is what a rotation's Schedule passes to ScheduledRotation.
type ScheduledInput struct {
	Target string       `json:"target"`
	Kind   catalog.Kind `json:"kind"`
}

// ScheduledResult says what one scheduled run did: started a rotation, or
// skipped because one was already running.
type ScheduledResult struct {
	Target string `json:"target"`
	// Started is true when this run started rotate/<target>.
	Started bool `json:"started"`
	// RotationRunID is the run ID of the rotation it started.
	RotationRunID string `json:"rotationRunID,omitempty"`
	// Skipped says why no rotation was started, in the operator's words.
	Skipped string `json:"skipped,omitempty"`
}

// ScheduledRotation starts a rotation of the target as a child workflow and
// completes as soon as the rotation has started.
//
// It exists because a Schedule appends a timestamp to the ID of every run it
// starts, while a rotation must run as exactly rotate/<target>: that ID is
// what keeps two rotations of one target from overlapping, and the rotation
// refuses any other. The child gets the ID, type and input a rotation
// started by hand gets, so it behaves the same. It is abandoned when this
// workflow completes, since it lives through days of grace. If a rotation
// of the target is already running, this run is skipped and says so in its
// result, which is not a failure: the target is being rotated.
func ScheduledRotation(ctx workflow.Context, in ScheduledInput) (ScheduledResult, error) {
	res := ScheduledResult{Target: in.Target}
	wfType, err := checkScheduledInput(in)
	if err != nil {
		return res, err
	}
	requestedBy := "schedule"
	if id, ok := workflow.GetTypedSearchAttributes(ctx).GetKeyword(searchScheduledBy); ok && id != "" {
		requestedBy = "schedule " + id
	}
	id := WorkflowID(in.Target)
	if workflow.GetVersion(ctx, "check-last-rotation", workflow.DefaultVersion, 1) == 1 {
		skip, err := needsPerson(ctx, in.Target)
		if err != nil {
			return res, err
		}
		if skip != "" {
			// Failed, not skipped: a person must look.
			res.Skipped = skip + ": this scheduled run did not start a rotation"
			workflow.GetLogger(ctx).Warn(res.Skipped, "target", in.Target, "workflowID", id)
			return res, temporal.NewNonRetryableApplicationError(res.Skipped, activities.ErrNeedsPerson, nil)
		}
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: id,
		// The rotation runs for days in grace; the wrapper must not take
		// it down when it completes a moment after starting it.
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		// A finished rotation, successful or not, must not block the
		// next one; a running one still does, which is the point.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:         Summary(in.Target, in.Kind, requestedBy),
		// The same attributes starter sets, so the UI's filters find the
		// rotation from its first moment, as they do one started by hand.
		TypedSearchAttributes: temporal.NewSearchAttributes(
			SearchTarget.ValueSet(in.Target), SearchKind.ValueSet(string(in.Kind)),
			SearchStep.ValueSet(string(StepPreflight))),
	})
	var started workflow.Execution
	err = workflow.ExecuteChildWorkflow(cctx, wfType, RotateInput{Target: in.Target, RequestedBy: requestedBy}).
		GetChildWorkflowExecution().Get(ctx, &started)
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		res.Skipped = fmt.Sprintf("a rotation of %s is already running (workflow %s): this scheduled run was skipped", in.Target, id)
		workflow.GetLogger(ctx).Info(res.Skipped, "target", in.Target, "workflowID", id)
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("start %s: %w", id, err)
	}
	res.Started, res.RotationRunID = true, started.RunID
	workflow.GetLogger(ctx).Info("scheduled rotation started", "target", in.Target, "workflowID", id,
		"runID", started.RunID, "type", wfType, "requestedBy", requestedBy)
	return res, nil
}

// checkScheduledInput returns the rotation workflow type for the input, or
// a non-retryable error naming the bad field: retrying cannot fix a
// Schedule's action, only `starter schedules apply` can.
func checkScheduledInput(in ScheduledInput) (string, error) {
	if in.Target == "" {
		return "", temporal.NewNonRetryableApplicationError(
			"target: is required: the schedule's input must name a target of rotator.yaml; recreate it with starter schedules apply",
			activities.ErrBadInput, nil)
	}
	wfType, ok := TypeFor(in.Kind)
	if !ok {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"kind: %q is not a kind this worker rotates (want one of %v): recreate the schedule with starter schedules apply",
			in.Kind, catalog.Kinds()), activities.ErrBadInput, nil)
	}
	return wfType, nil
}

var rotations *activities.Rotations

// needsPerson says why the target must not be rotated now, or "": its last
// rotation left a rollback unfinished, and a new rotation on top would
// start from a state nobody has looked at.
func needsPerson(ctx workflow.Context, target string) (string, error) {
	var last activities.LastRotation
	if err := workflow.ExecuteActivity(short(ctx), rotations.LastRotation, activities.LastRotationInput{
		WorkflowID: WorkflowID(target), StepAttribute: SearchStep.GetName(),
	}).Get(ctx, &last); err != nil {
		return "", err
	}
	if !last.Found || Step(last.Step) != StepCompensationFailed {
		return "", nil
	}
	how := "is waiting for a person"
	if last.Status != "running" {
		how = "ended (" + last.Status + ") while it waited for a person"
	}
	return fmt.Sprintf("the last rotation of %s (workflow %s, run %s) could not finish its rollback and %s: "+
		"see starter status %s, fix what it names and run starter retry %s, or repair it by hand and start a rotation yourself",
		target, WorkflowID(target), last.RunID, how, target, target), nil
}
