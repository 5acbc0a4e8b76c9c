package workflows

import "go.temporal.io/sdk/workflow"

// awaitGrace keeps the old version valid until the grace period ends, an
// engineer approves, or an engineer aborts.
func (r *rotation) awaitGrace(ctx workflow.Context) error {
	r.setStep(ctx, StepGrace)
	decided := func() bool { return r.st.Approved != nil || r.st.Aborted != nil }
	if !r.in.Emergency {
		r.st.GraceDeadline = workflow.Now(ctx).Add(r.grace)
	}
	r.recordGrace(ctx, r.st.GraceDeadline)
	r.details(ctx)
	if !r.in.Emergency {
		if _, err := workflow.AwaitWithTimeout(ctx, r.grace, decided); err != nil {
			return err
		}
	}
	if r.approvalRequired != "" && !decided() {
		// The timer alone cannot end this grace: only a person can say
		// the old credential is gone where rotator cannot reach.
		r.st.Reminder = r.approvalRequired
		r.details(ctx)
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
