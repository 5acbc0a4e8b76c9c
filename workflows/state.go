package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"rotator/activities"
	"rotator/catalog"
)

var errAborted = errors.New("aborted")

// message is an error's own text without the chain Temporal appends.
func message(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
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
	if err != nil && r.plan.Target == "" && failedAt == StepPreflight {
		// No plan, so no routes: the worker's catalog has the sinks.
		r.notifyAll(ctx, catalog.EventFailed, message(err))
	} else {
		r.notifyEnd(ctx, step, err)
	}
	r.awaitNotices(ctx)
	return r.st, err
}

// explain names the step that failed and keeps the activity's error type
// and message, without the activity error's framing (IDs, attempt).
func (r *rotation) explain(step Step, err error) error {
	if errors.Is(err, errAborted) || (r.st.Aborted != nil && temporal.IsCanceledError(err)) {
		return errAborted
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %s", step, app.Message()), app.Type(), err)
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v", step, err), activities.ErrStepFailed, err)
}

func (r *rotation) setStep(ctx workflow.Context, s Step) {
	r.noteStep(ctx, s)
	r.details(ctx)
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchStep.ValueSet(string(s))); err != nil {
		workflow.GetLogger(ctx).Warn("could not update RotationStep", "step", s, "error", err)
	}
}

// noteStep records the step for the status query only.
func (r *rotation) noteStep(ctx workflow.Context, s Step) {
	r.st.Step = s
	r.st.StepStartedAt = workflow.Now(ctx)
}

// setConsumers sets the state of every consumer still in the plan.
func (r *rotation) setConsumers(state string) {
	for i := range r.st.Consumers {
		if r.st.Consumers[i].State != stateDeleted {
			r.st.Consumers[i].State = state
		}
	}
}

func (r *rotation) setConsumer(w activities.Workload, state string) {
	for i := range r.st.Consumers {
		if r.st.Consumers[i].Workload == w {
			r.st.Consumers[i].State = state
		}
	}
}

// plural1 is the verb's s: "it uses", "they use".
func plural1(n int) string {
	if n == 1 {
		return "s"
	}
	return ""
}

func them(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}
