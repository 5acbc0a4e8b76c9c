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

var notifier *activities.Notifier

// maxNotifyFailures is how many failed notifications the status keeps.
const maxNotifyFailures = 10

// graceEndingNotice is how long before grace ends the grace-ending event
// is sent.
const graceEndingNotice = 24 * time.Hour

// notices is the rotation's notification bookkeeping.
type notices struct {
	// version is "notify", asked the first time a notification is due,
	// so that a target without sinks adds nothing to its history.
	version *workflow.Version
	// sent numbers the events, for their delivery ids.
	sent int
	// pending counts notifications not yet answered; finish waits for
	// them, so the last event is not lost when the run ends.
	pending int
	// retireWait says needs-person was sent for the retire wait.
	retireWait bool
}

// notifying reports whether this run sends notifications at all.
func (r *rotation) notifying(ctx workflow.Context) bool {
	if r.notices.version == nil {
		v := workflow.GetVersion(ctx, "notify", workflow.DefaultVersion, 1)
		r.notices.version = &v
	}
	return *r.notices.version == 1
}

// wants reports whether any of the target's sinks takes the event.
func (r *rotation) wants(e catalog.Event) bool {
	for _, route := range r.plan.Notify {
		if route.Wants(e) {
			return true
		}
	}
	return false
}

// notify sends the event to each of the target's sinks that takes it, one
// activity per sink, so that a sink that is down is retried without
// sending the others the message twice. It never waits for the answer and
// never fails the rotation.
func (r *rotation) notify(ctx workflow.Context, e catalog.Event, msg string, deadline time.Time) {
	if !r.wants(e) || !r.notifying(ctx) {
		return
	}
	id := r.noticeID(ctx)
	for _, route := range r.plan.Notify {
		if route.Wants(e) {
			r.send(ctx, activities.NotifyInput{Target: r.in.Target, Sink: route.Sink, Event: e, ID: id,
				Step: string(r.st.Step), Message: msg, Deadline: deadline, Urgent: e == catalog.EventCompensationFailed})
		}
	}
}

// notifyAll sends an event that comes before the plan (a failed
// preflight) to every sink of the target that takes it; the worker finds
// them in its catalog.
func (r *rotation) notifyAll(ctx workflow.Context, e catalog.Event, msg string) {
	if r.in.Target == "" || !r.notifying(ctx) {
		return
	}
	r.send(ctx, activities.NotifyInput{Target: r.in.Target, Event: e, ID: r.noticeID(ctx), Step: string(r.st.Step), Message: msg})
}

func (r *rotation) noticeID(ctx workflow.Context) string {
	r.notices.sent++
	return fmt.Sprintf("%s.%d", workflow.GetInfo(ctx).WorkflowExecution.RunID, r.notices.sent)
}

func (r *rotation) send(ctx workflow.Context, in activities.NotifyInput) {
	// Disconnected: the events of an abort or a cancellation are sent too.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	f := workflow.ExecuteActivity(notifyOptions(dctx), notifier.Notify, in)
	r.notices.pending++
	workflow.Go(dctx, func(gctx workflow.Context) {
		defer func() { r.notices.pending-- }()
		if err := f.Get(gctx, nil); err != nil {
			why := fmt.Sprintf("%s to %s: %s", in.Event, sinkName(in.Sink), message(err))
			r.st.NotifyFailures = append(r.st.NotifyFailures, why)
			if n := len(r.st.NotifyFailures); n > maxNotifyFailures {
				r.st.NotifyFailures = r.st.NotifyFailures[n-maxNotifyFailures:]
			}
			workflow.GetLogger(gctx).Warn("notification not delivered", "target", r.in.Target, "event", in.Event,
				"sink", sinkName(in.Sink), "error", message(err))
		}
	})
}

func sinkName(s string) string {
	if s == "" {
		return "the target's sinks"
	}
	return s
}

// awaitNotices waits for the notifications still on their way, so that
// the run does not end before its last event was delivered or given up on.
func (r *rotation) awaitNotices(ctx workflow.Context) {
	if r.notices.pending == 0 {
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_ = workflow.Await(dctx, func() bool { return r.notices.pending == 0 })
}

// notifyOptions retries a receiver that is down for up to a quarter of an
// hour; a refusal is not retried.
func notifyOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 15 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        2 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        2 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrNotifyRefused, activities.ErrBadInput},
		},
	})
}

// notifyEnd sends the event of the step the rotation ends in.
func (r *rotation) notifyEnd(ctx workflow.Context, step Step, err error) {
	switch {
	case step == StepDone:
		msg := fmt.Sprintf("the consumers run on %s", r.newName())
		if len(r.st.Retired) > 0 {
			msg += "; retired: " + strings.Join(r.st.Retired, "; ")
		}
		r.notify(ctx, catalog.EventDone, msg, time.Time{})
	case step == StepRolledBack && (err == nil || temporal.IsCanceledError(err)):
		r.notify(ctx, catalog.EventRolledBack, r.st.Outcome, time.Time{})
	case err != nil:
		r.notify(ctx, catalog.EventFailed, message(err), time.Time{})
	}
}

// newName is the new version's name, or "the new version" before stage.
func (r *rotation) newName() string {
	if r.st.New != nil {
		return r.st.New.Name
	}
	return "the new version"
}

// startedMessage says what the rotation is about to do.
func (r *rotation) startedMessage() string {
	var consumers []string
	for _, c := range r.st.Consumers {
		consumers = append(consumers, c.Workload.String())
	}
	who := "no consumers"
	if len(consumers) > 0 {
		who = strings.Join(consumers, ", ")
	}
	msg := fmt.Sprintf("%s-%d replaces %s for %s", r.plan.Base, r.plan.NextVersion, r.plan.Current.Name, who)
	if r.in.RequestedBy != "" {
		msg += "; requested by " + r.in.RequestedBy
	}
	if r.in.Emergency {
		msg += "; emergency: no grace"
	}
	return msg
}
