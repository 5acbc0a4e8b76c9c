package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"rotator/workflows"
)

// eventMatch says whether an event is the one waited for; types maps each
// activity's scheduled event ID to its activity type.
type eventMatch func(ev *historypb.HistoryEvent, types map[int64]string) bool

// waitEvent follows the workflow's history with a long poll until an event
// matches; the rotation ending first is an error.
func waitEvent(ctx context.Context, c client.Client, id, what string, match eventMatch) (*historypb.HistoryEvent, error) {
	types := map[int64]string{}
	it := c.GetWorkflowHistory(ctx, id, "", true, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("wait for %s: %w", what, err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			types[ev.EventId] = a.ActivityType.GetName()
		}
		if match(ev, types) {
			return ev, nil
		}
	}
	return nil, fmt.Errorf("wait for %s: the rotation ended first", what)
}

// activityCompleted matches the completion of an activity of the type.
func activityCompleted(name string) eventMatch {
	return func(ev *historypb.HistoryEvent, types map[int64]string) bool {
		a := ev.GetActivityTaskCompletedEventAttributes()
		return a != nil && types[a.ScheduledEventId] == name
	}
}

// activityScheduled matches the scheduling of an activity of one of the
// types.
func activityScheduled(names ...string) eventMatch {
	return func(ev *historypb.HistoryEvent, _ map[int64]string) bool {
		a := ev.GetActivityTaskScheduledEventAttributes()
		return a != nil && slices.Contains(names, a.ActivityType.GetName())
	}
}

// stepReached matches the RotationStep search attribute taking the value.
func stepReached(step workflows.Step) eventMatch {
	return func(ev *historypb.HistoryEvent, _ map[int64]string) bool {
		got, ok := workflows.StepSet(ev)
		return ok && got == step
	}
}

// waitRunning polls the workflow's pending activities until one of the
// type runs on the worker with the identity; with heartbeat, until that
// attempt heartbeated too (a rollout wait that is watching).
func waitRunning(ctx context.Context, c client.Client, id, activity, identity string, heartbeat bool) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		d, err := c.DescribeWorkflow(ctx, id, "")
		if err != nil {
			return fmt.Errorf("describe %s: %w", id, err)
		}
		for _, p := range d.RawResponse.PendingActivities {
			if p.ActivityType.GetName() != activity || p.State != enumspb.PENDING_ACTIVITY_STATE_STARTED ||
				!strings.HasPrefix(p.LastWorkerIdentity, identity) {
				continue
			}
			if !heartbeat || (p.LastHeartbeatTime != nil && p.LastHeartbeatTime.AsTime().After(p.LastStartedTime.AsTime())) {
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to run on worker %s: %w", activity, identity, ctx.Err())
		}
	}
}

// attempt is one activity attempt and the worker it started on.
type attempt struct {
	activity string
	attempt  int32
	identity string
	started  time.Time
}

// attemptLog collects attempts while the rotation runs.
type attemptLog struct {
	mu   sync.Mutex
	seen map[string]attempt
	done chan struct{}
}

// watchAttempts polls the workflow's pending activities until ctx ends.
func watchAttempts(ctx context.Context, c client.Client, id string) *attemptLog {
	l := &attemptLog{seen: map[string]attempt{}, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if d, err := c.DescribeWorkflow(ctx, id, ""); err == nil {
				l.mu.Lock()
				for _, p := range d.RawResponse.PendingActivities {
					key := fmt.Sprintf("%s#%d", p.ActivityType.GetName(), p.Attempt)
					if _, ok := l.seen[key]; !ok && p.State == enumspb.PENDING_ACTIVITY_STATE_STARTED {
						l.seen[key] = attempt{p.ActivityType.GetName(), p.Attempt, strings.SplitAfter(p.LastWorkerIdentity, "@")[0], p.LastStartedTime.AsTime()}
					}
				}
				l.mu.Unlock()
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return l
}

func (l *attemptLog) list() []attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]attempt, 0, len(l.seen))
	for _, a := range l.seen {
		out = append(out, a)
	}
	return out
}

// pending describes what the workflow has in flight, for the kill log.
func pending(ctx context.Context, c client.Client, id string) string {
	d, err := c.DescribeWorkflow(ctx, id, "")
	if err != nil {
		return "unknown: " + err.Error()
	}
	var out []string
	for _, p := range d.RawResponse.PendingActivities {
		out = append(out, fmt.Sprintf("%s %s attempt %d", p.ActivityType.GetName(),
			strings.ToLower(strings.TrimPrefix(p.State.String(), "PENDING_ACTIVITY_STATE_")), p.Attempt))
	}
	if len(out) == 0 {
		return "no activity"
	}
	return strings.Join(out, ", ")
}

// takeover finds when the worker with the identity first completed a
// workflow or activity task of the workflow after since: the moment the
// rotation moved on again.
func takeover(ctx context.Context, c client.Client, id, identity string, since time.Time) (time.Duration, bool, error) {
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return 0, false, err
		}
		var by string
		if a := ev.GetWorkflowTaskCompletedEventAttributes(); a != nil {
			by = a.Identity
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil {
			by = a.Identity
		}
		if by != "" && strings.HasPrefix(by, identity) && ev.EventTime.AsTime().After(since) {
			return ev.EventTime.AsTime().Sub(since), true, nil
		}
	}
	return 0, false, nil
}
