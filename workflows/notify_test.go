package workflows_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"rotator/activities"
	"rotator/catalog"
	"rotator/workflows"
)

var notifier *activities.Notifier

type notifySuite struct {
	rotationSuite
	mu   sync.Mutex
	sent []sentNotice
}

// sentNotice is one Notify call as the activity saw it, with the test
// clock's time.
type sentNotice struct {
	activities.NotifyInput
	at time.Time
}

func TestNotifications(t *testing.T) { runQuiet(t, new(notifySuite)) }

func (s *notifySuite) SetupTest() {
	s.newEnv(target, kube, notifier)
	s.sent = nil
}

// notifyPlan is the plan of a target with two sinks: hooks takes every
// event, oncall only failures.
var notifyPlan = func() activities.Plan {
	p := plan
	p.Notify = []activities.NotifyRoute{{Sink: "hooks"}, {Sink: "oncall", Events: []catalog.Event{catalog.EventCompensationFailed, catalog.EventFailed}}}
	return p
}()

// record mocks Notify, keeping each call; err is what every call returns.
func (s *notifySuite) record(err error) {
	s.env.OnActivity(notifier.Notify, mock.Anything, mock.Anything).Return(err).Maybe().Run(func(args mock.Arguments) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.sent = append(s.sent, sentNotice{args.Get(1).(activities.NotifyInput), s.env.Now()})
	})
}

func (s *notifySuite) forward(p activities.Plan) {
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(p, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.Anything).Return(rollouts, nil).Once()
	s.env.OnActivity(kube.VerifyConsumers, mock.Anything, mock.Anything).Return(activities.AwaitResult{}, nil).Once()
}

// events lists the events sent to a sink, in order.
func (s *notifySuite) events(sink string) []string {
	var out []string
	for _, n := range s.sent {
		if n.Sink == sink {
			out = append(out, string(n.Event))
		}
	}
	return out
}

// TestEventsOfAFullRotation: a rotation that runs its grace out tells hooks
// that it started, that it is in grace (with the deadline), that grace ends
// within 24 hours (a day before), and that it is done; oncall, which takes
// failures only, hears nothing. Each event has its own delivery id.
func (s *notifySuite) TestEventsOfAFullRotation() {
	s.record(nil)
	s.forward(notifyPlan)
	s.expectRetireOld()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, RequestedBy: "alice"})
	st := s.result()
	s.Equal(workflows.StepDone, st.Step)

	s.Equal([]string{"started", "grace", "grace-ending", "done"}, s.events("hooks"))
	s.Empty(s.events("oncall"))
	ids := map[string]bool{}
	for _, n := range s.sent {
		s.False(ids[n.ID], "delivery id %s used twice", n.ID)
		ids[n.ID] = true
		s.Equal(target, n.Target)
		s.False(n.Urgent)
	}
	started, grace, ending := s.sent[0], s.sent[1], s.sent[2]
	s.Contains(started.Message, "orchestrator-jwt-secret-2 replaces orchestrator-jwt-secret for deployment/orchestrator; requested by alice")
	s.True(st.GraceDeadline.Equal(grace.Deadline), "grace deadline %s, want %s", grace.Deadline, st.GraceDeadline)
	s.Contains(grace.Message, "orchestrator-jwt-secret stays valid until "+st.GraceDeadline.UTC().Format(time.RFC3339))
	s.True(st.GraceDeadline.Add(-24*time.Hour).Equal(ending.at), "grace-ending is sent a day before grace ends, not at %s", ending.at)
	s.GreaterOrEqual(st.FinishedAt.Sub(st.StartedAt), 7*24*time.Hour, "grace-ending must not shorten grace")
	s.Empty(st.NotifyFailures)
}

// TestNoSinksNoNotifications: a target without sinks schedules no Notify
// activity.
func (s *notifySuite) TestNoSinksNoNotifications() {
	s.record(nil)
	s.forward(plan)
	s.expectRetireOld()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	s.Equal(workflows.StepDone, s.result().Step)
	s.Empty(s.sent)
}

// TestAbortNotifiesRolledBack: an abort in grace tells hooks the rotation
// rolled back, with who aborted; it is not a failure, so oncall hears
// nothing.
func (s *notifySuite) TestAbortNotifiesRolledBack() {
	s.record(nil)
	s.forward(notifyPlan)
	s.expectRollback()
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalAbort, workflows.Decision{By: "carol", Reason: "401s"})
	}, time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	s.Equal(workflows.StepRolledBack, s.result().Step)
	s.Equal([]string{"started", "grace", "rolled-back"}, s.events("hooks"))
	s.Empty(s.events("oncall"))
	s.Contains(s.sent[len(s.sent)-1].Message, "aborted by carol (401s)")
}

// TestCompensationFailedIsUrgent: a rollback that cannot finish tells both
// sinks, marked urgent, with the retry command's reminder; once retried,
// the failure that caused it reaches both.
func (s *notifySuite) TestCompensationFailedIsUrgent() {
	s.record(nil)
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(notifyPlan, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.Anything).
		Return(activities.PromoteResult{}, temporal.NewNonRetryableApplicationError("deployment/orchestrator made no progress", activities.ErrRolloutStuck, nil)).Once()
	forbidden := temporal.NewNonRetryableApplicationError(`deployments "orchestrator" is forbidden`, activities.ErrBadInput, nil)
	s.env.OnActivity(kube.Promote, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool { return in.To == oldRef })).
		Return(activities.PromoteResult{}, forbidden).Once()
	s.expectRollback()
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalRetry, workflows.Decision{By: "frank", Reason: "RBAC fixed"})
	}, time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	s.Require().Error(s.env.GetWorkflowError())

	s.Equal([]string{"started", "compensation-failed", "failed"}, s.events("hooks"))
	s.Equal([]string{"compensation-failed", "failed"}, s.events("oncall"))
	for _, n := range s.sent {
		s.Equal(n.Event == catalog.EventCompensationFailed, n.Urgent, "only compensation-failed is urgent")
		if n.Event == catalog.EventCompensationFailed {
			s.Contains(n.Message, "starter retry "+target)
			s.Equal(string(workflows.StepCompensationFailed), n.Step)
		}
	}
}

// TestPreflightFailureNotifiesTheCatalogsSinks: without a plan there are
// no routes, so the event goes out with no sink named, for the worker to
// find the target's sinks in its catalog.
func (s *notifySuite) TestPreflightFailureNotifiesTheCatalogsSinks() {
	s.record(nil)
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(activities.Plan{},
		temporal.NewNonRetryableApplicationError("Secret orchestrator-jwt-secret not found", activities.ErrBadInput, nil)).Once()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	s.Require().Error(s.env.GetWorkflowError())
	s.Require().Len(s.sent, 1)
	s.Equal(catalog.EventFailed, s.sent[0].Event)
	s.Empty(s.sent[0].Sink)
	s.Contains(s.sent[0].Message, "not found")
}

// TestUndeliveredNotificationsNeverFailTheRotation: a sink that refuses
// everything leaves the rotation to finish, the failures in its status.
func (s *notifySuite) TestUndeliveredNotificationsNeverFailTheRotation() {
	s.record(temporal.NewNonRetryableApplicationError("sink hooks: the receiver answered 404 Not Found", activities.ErrNotifyRefused, nil))
	s.forward(notifyPlan)
	s.expectRetireOld()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	st := s.result()
	s.Equal(workflows.StepDone, st.Step)
	s.Len(st.NotifyFailures, 4)
	s.True(strings.HasPrefix(st.NotifyFailures[0], "started to hooks: sink hooks: the receiver answered 404"), st.NotifyFailures[0])
}
