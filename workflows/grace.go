package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"rotator/catalog"
)

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
		r.notify(ctx, catalog.EventGrace, r.graceMessage(), r.st.GraceDeadline)
		wait := r.grace
		if r.grace > graceEndingNotice && r.wants(catalog.EventGraceEnding) && r.notifying(ctx) {
			ok, err := workflow.AwaitWithTimeout(ctx, r.grace-graceEndingNotice, decided)
			if err != nil {
				return err
			}
			if !ok {
				r.notify(ctx, catalog.EventGraceEnding, r.graceMessage(), r.st.GraceDeadline)
			}
			wait = r.st.GraceDeadline.Sub(workflow.Now(ctx))
		}
		if _, err := workflow.AwaitWithTimeout(ctx, wait, decided); err != nil {
			return err
		}
	}
	if r.approvalRequired != "" && !decided() {
		// The timer alone cannot end this grace: only a person can say
		// the old credential is gone where rotator cannot reach.
		r.st.Reminder = r.approvalRequired
		r.details(ctx)
		r.notify(ctx, catalog.EventNeedsPerson, r.st.Reminder, time.Time{})
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

// graceMessage says what grace means for this rotation and until when.
func (r *rotation) graceMessage() string {
	old := "the old version"
	if r.st.Old != nil {
		old = r.st.Old.Name
	}
	msg := fmt.Sprintf("the consumers run on %s; %s stays valid until %s, then it is retired. Approve to retire it now, abort to roll back.",
		r.newName(), old, r.st.GraceDeadline.UTC().Format(time.RFC3339))
	if r.approvalRequired != "" {
		msg += " Grace ends only with an approval: " + r.approvalRequired
	}
	return msg
}
