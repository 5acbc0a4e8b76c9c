package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// Rotations reads rotations from Temporal, for the workflows that start
// them (Schedules, the certificate scan): a target whose last rotation
// left its rollback unfinished must not be rotated on top of that.
type Rotations struct {
	Temporal client.Client
}

// LastRotationInput names the rotation's workflow and the search attribute
// that holds its step.
type LastRotationInput struct {
	WorkflowID    string `json:"workflowID"`
	StepAttribute string `json:"stepAttribute"`
}

// LastRotation is the latest run of a target's rotation.
type LastRotation struct {
	// Found is false when the target was never rotated.
	Found  bool   `json:"found"`
	RunID  string `json:"runID,omitempty"`
	Status string `json:"status,omitempty"`
	// Step is the step the run was in last (its RotationStep).
	Step     string    `json:"step,omitempty"`
	ClosedAt time.Time `json:"closedAt,omitzero"`
}

// LastRotation describes the latest run of the workflow.
func (r *Rotations) LastRotation(ctx context.Context, in LastRotationInput) (LastRotation, error) {
	if r.Temporal == nil {
		return LastRotation{}, errors.New("the worker registered no Temporal client for the Rotations activities")
	}
	desc, err := r.Temporal.DescribeWorkflow(ctx, in.WorkflowID, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return LastRotation{}, nil
	}
	if err != nil {
		return LastRotation{}, fmt.Errorf("describe %s: %w", in.WorkflowID, err)
	}
	out := LastRotation{Found: true, RunID: desc.WorkflowExecution.RunID,
		Status: strings.ToLower(strings.TrimPrefix(desc.Status.String(), "WORKFLOW_EXECUTION_STATUS_"))}
	if desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && desc.WorkflowCloseTime != nil {
		out.ClosedAt = *desc.WorkflowCloseTime
	}
	out.Step, _ = desc.TypedSearchAttributes.GetKeyword(temporal.NewSearchAttributeKeyKeyword(in.StepAttribute))
	return out, nil
}
