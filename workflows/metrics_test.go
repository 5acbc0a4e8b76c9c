package workflows_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"rotator/activities"
	"rotator/observe"
	"rotator/workflows"
)

// metricsSuite runs rotations with the worker's real metrics handler and
// reads the results as a Prometheus scrape would.
type metricsSuite struct {
	envSuite
	metrics *observe.Metrics
}

func TestRotationMetrics(t *testing.T) { runQuiet(t, new(metricsSuite)) }

func (s *metricsSuite) SetupTest() {
	m, err := observe.NewMetrics(slog.New(slog.DiscardHandler))
	s.Require().NoError(err)
	s.metrics = m
	s.SetMetricsHandler(m.Temporal())
	s.newEnv(target, kube)
}

// value reads one series; ok is false when it does not exist.
func (s *metricsSuite) value(name string, labels map[string]string) (float64, bool) {
	v, ok, err := observe.Value(s.metrics.Gatherer(), name, labels)
	s.Require().NoError(err)
	return v, ok
}

// mustValue reads one series that must exist.
func (s *metricsSuite) mustValue(name string, labels map[string]string) float64 {
	v, ok := s.value(name, labels)
	s.Require().True(ok, "no series %s%v", name, labels)
	return v
}

var jwtTarget = map[string]string{"target": target, "kind": "jwt"}

// forward mocks the steps up to verify; verify returns verifyErr.
func (s *metricsSuite) forward(verifyErr error) {
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(plan, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool { return in.To == newRef })).
		Return(rollouts, nil).Once()
	s.env.OnActivity(kube.VerifyConsumers, mock.Anything, mock.Anything).Return(activities.AwaitResult{}, verifyErr).Once()
}

// rollback mocks a compensation; promoteErr makes re-pointing fail.
func (s *metricsSuite) rollback(promoteErr error) {
	back := activities.PromoteResult{Rollouts: []activities.Rollout{{Workload: app, Generation: 3, Patched: true}}}
	s.env.OnActivity(kube.Promote, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool { return in.To == oldRef })).
		Return(back, promoteErr).Once()
	if promoteErr != nil {
		return
	}
	s.env.OnActivity(kube.AwaitRollout, mock.Anything, awaitOf(back.Rollouts)).Return(activities.AwaitResult{}, nil).Once()
	s.env.OnActivity(kube.RetireSecret, mock.Anything, mock.MatchedBy(func(in activities.RetireInput) bool { return in.StagedByRun != "" })).
		Return(activities.RetireResult{Deleted: true}, nil).Once()
}

func (s *metricsSuite) TestCompletedRotationSetsLastSuccessAndGraceWhileInGrace() {
	s.forward(nil)
	s.env.OnActivity(kube.RetireSecret, mock.Anything, retireOf(oldRef)).
		Return(activities.RetireResult{Deleted: true}, nil).Once()
	var started, deadline, lastSuccessInGrace float64
	var inGrace workflows.Status
	var hadLastSuccess bool
	s.env.RegisterDelayedCallback(func() {
		inGrace = s.status()
		started = s.mustValue(workflows.MetricGraceStarted, jwtTarget)
		deadline = s.mustValue(workflows.MetricGraceDeadline, jwtTarget)
		lastSuccessInGrace, hadLastSuccess = s.value(workflows.MetricLastSuccess, jwtTarget)
	}, 24*time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	s.Require().NoError(s.env.GetWorkflowError())
	var st workflows.Status
	s.Require().NoError(s.env.GetWorkflowResult(&st))

	s.Equal(workflows.StepGrace, inGrace.Step)
	s.Equal(float64(inGrace.StepStartedAt.UnixMilli())/1000, started, "grace started at the grace step's start")
	s.Equal(float64(inGrace.GraceDeadline.UnixMilli())/1000, deadline)
	s.Equal((7 * 24 * time.Hour).Seconds(), deadline-started)
	s.False(hadLastSuccess && lastSuccessInGrace > 0, "no success before retire")

	s.Equal(float64(st.FinishedAt.UnixMilli())/1000, s.mustValue(workflows.MetricLastSuccess, jwtTarget))
	s.Zero(s.mustValue(workflows.MetricGraceStarted, jwtTarget), "grace is over")
	s.Zero(s.mustValue(workflows.MetricGraceDeadline, jwtTarget))
	s.Equal(1.0, s.mustValue(workflows.MetricCompleted+"_total", map[string]string{"kind": "jwt"}))
	_, failed := s.value(workflows.MetricFailures+"_total", nil)
	s.False(failed, "a completed rotation counts no failure")
}

func (s *metricsSuite) TestFailedStepCountsFailureAndCompensation() {
	s.forward(temporal.NewNonRetryableApplicationError("orchestrator still serves the old key", activities.ErrKeyRejected, nil))
	s.rollback(nil)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	s.Require().Error(s.env.GetWorkflowError())

	s.Equal(1.0, s.mustValue(workflows.MetricFailures+"_total", map[string]string{"kind": "jwt", "step": "verify"}))
	s.Equal(1.0, s.mustValue(workflows.MetricCompensations+"_total",
		map[string]string{"kind": "jwt", "step": "verify", "outcome": workflows.CompensationRolledBack}))
	_, ok := s.value(workflows.MetricFailures+"_total", map[string]string{"step": "compensating"})
	s.False(ok, "the failure is counted at the step that failed, once")
	v, ok := s.value(workflows.MetricLastSuccess, jwtTarget)
	s.False(ok && v > 0, "a failed rotation sets no last success")
	_, ok = s.value(workflows.MetricCompleted+"_total", nil)
	s.False(ok)
}

func (s *metricsSuite) TestIncompleteCompensationIsCounted() {
	s.forward(temporal.NewNonRetryableApplicationError("orchestrator still serves the old key", activities.ErrKeyRejected, nil))
	s.rollback(temporal.NewNonRetryableApplicationError("deployments.apps is forbidden", "Forbidden", nil))
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	s.Require().Error(s.env.GetWorkflowError())

	s.Equal(1.0, s.mustValue(workflows.MetricCompensations+"_total",
		map[string]string{"kind": "jwt", "step": "verify", "outcome": workflows.CompensationIncomplete}))
	_, ok := s.value(workflows.MetricCompensations+"_total", map[string]string{"outcome": workflows.CompensationRolledBack})
	s.False(ok)
	s.Equal(1.0, s.mustValue(workflows.MetricFailures+"_total", map[string]string{"kind": "jwt", "step": "verify"}))
}

func (s *metricsSuite) TestAbortInGraceCompensatesWithoutFailure() {
	s.forward(nil)
	s.rollback(nil)
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalAbort, workflows.Decision{By: "carol", Reason: "test"})
	}, time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	s.Require().NoError(s.env.GetWorkflowError(), "an abort that rolled back completes")

	s.Equal(1.0, s.mustValue(workflows.MetricCompensations+"_total",
		map[string]string{"kind": "jwt", "step": "grace", "outcome": workflows.CompensationRolledBack}))
	_, failed := s.value(workflows.MetricFailures+"_total", nil)
	s.False(failed, "an abort is a decision, not a failure")
	s.Zero(s.mustValue(workflows.MetricGraceDeadline, jwtTarget), "grace ends with the abort")
}

func (s *metricsSuite) TestPreflightFailureIsCounted() {
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(activities.Plan{},
		temporal.NewNonRetryableApplicationError("Secret orchestrator-jwt-secret not found", activities.ErrBadInput, nil)).Once()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	s.Require().Error(s.env.GetWorkflowError())

	s.Equal(1.0, s.mustValue(workflows.MetricFailures+"_total", map[string]string{"kind": "jwt", "step": "preflight"}))
	_, ok := s.value(workflows.MetricCompensations+"_total", nil)
	s.False(ok, "nothing changed, so nothing is compensated")
}
