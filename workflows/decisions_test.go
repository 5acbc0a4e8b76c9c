package workflows_test

import (
	"strings"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"rotator/activities"
	"rotator/workflows"
)

// Approve and abort say who decided and why; a decision without a reason
// is refused by the Update and ignored as a signal, and grace runs on.
func (s *rotationSuite) TestDecisionsNeedAReason() {
	s.happyPath()
	s.expectRetireOld()
	var noReason, blank, tooLong, abortNoReason error
	s.env.RegisterDelayedCallback(func() {
		s.update(workflows.UpdateApprove, "none", workflows.Decision{By: "alice"}, &noReason)
		s.update(workflows.UpdateApprove, "blank", workflows.Decision{By: "alice", Reason: " \t\n "}, &blank)
		s.update(workflows.UpdateApprove, "long", workflows.Decision{By: "alice", Reason: strings.Repeat("é", workflows.MaxReasonLength+1)}, &tooLong)
		s.update(workflows.UpdateAbort, "abort", workflows.Decision{By: "bob"}, &abortNoReason)
		s.env.SignalWorkflow(workflows.SignalApprove, workflows.Decision{By: "ui-user"})
		s.env.SignalWorkflow(workflows.SignalAbort, workflows.Decision{By: "ui-user", Reason: "   "})
	}, time.Hour)
	var inGrace workflows.Status
	s.env.RegisterDelayedCallback(func() { inGrace = s.status() }, 2*time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})

	for _, err := range []error{noReason, blank} {
		s.Require().Error(err)
		s.Contains(err.Error(), "reason: is required: say why you approve")
	}
	s.Require().Error(tooLong)
	s.Contains(tooLong.Error(), "reason: is 501 characters long: keep it to 500")
	s.Require().Error(abortNoReason)
	s.Contains(abortNoReason.Error(), "reason: is required: say why you abort")
	s.Equal(workflows.StepGrace, inGrace.Step, "an ignored signal must not end grace")
	st := s.result()
	s.Equal(workflows.StepDone, st.Step)
	s.Nil(st.Approved)
	s.Nil(st.Aborted)
	s.GreaterOrEqual(st.FinishedAt.Sub(st.StartedAt), 7*24*time.Hour, "only the timer ended grace")
}

// The reason is recorded trimmed, with who gave it, in the status.
func (s *rotationSuite) TestDecisionRecordsWhoAndWhy() {
	s.happyPath()
	s.expectRollback()
	var rejected error
	s.env.RegisterDelayedCallback(func() {
		s.update(workflows.UpdateAbort, "abort", workflows.Decision{By: "bob", Reason: "  401s after rollout\n"}, &rejected)
	}, time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	s.NoError(rejected)
	st := s.rolledBack()
	s.Require().NotNil(st.Aborted)
	s.Equal("bob", st.Aborted.By)
	s.Equal("401s after rollout", st.Aborted.Reason)
}

// A rotation started before reasons were required (no marker for
// "accountable-decisions") takes an approve without one, as it did.
func (s *rotationSuite) TestRotationsStartedBeforeTakeDecisionsWithoutReason() {
	s.env.OnGetVersion("accountable-decisions", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	s.happyPath()
	s.expectRetireOld()
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalApprove, workflows.Decision{By: "e2e"})
	}, time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	st := s.result()
	s.Equal(workflows.StepDone, st.Step)
	s.Require().NotNil(st.Approved)
	s.Equal("e2e", st.Approved.By)
	s.Less(st.FinishedAt.Sub(st.StartedAt), 2*time.Hour)
}

// The worker holds a grace from the input to the catalog's minGrace,
// whoever started the rotation: a shorter one fails in preflight, before
// anything changes.
func (s *rotationSuite) TestGraceShorterThanTheCatalogsMinimumIsRefused() {
	strict := plan
	strict.MinGrace = 24 * time.Hour
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(strict, nil).Once()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, Grace: "1h"})

	app := s.appError(s.env.GetWorkflowError())
	s.Equal(activities.ErrBadInput, app.Type())
	s.True(app.NonRetryable())
	s.Contains(app.Error(), "grace: 1h is shorter than target orchestrator-jwt's minimum of 24h (minGrace in the catalog): ask for at least 24h, leave grace out for the catalog's 168h, or lower minGrace in rotator.yaml")
	for _, a := range []string{"StageSecret", "Promote", "PromoteAndAwait", "RetireSecret"} {
		s.env.AssertNotCalled(s.T(), a, mock.Anything, mock.Anything)
	}
	s.Equal(workflows.StepFailed, s.status().Step)
}

func (s *rotationSuite) TestGraceAtTheCatalogsMinimumIsAccepted() {
	strict := plan
	strict.MinGrace = 24 * time.Hour
	s.env.OnActivity(kube.Preflight, mock.Anything, preflightOf(target, "jwt")).Return(strict, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.Anything).Return(rollouts, nil).Once()
	s.env.OnActivity(kube.VerifyConsumers, mock.Anything, mock.Anything).Return(activities.AwaitResult{}, nil).Once()
	s.expectRetireOld()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, Grace: "1d"})
	st := s.result()
	s.Equal(workflows.StepDone, st.Step)
	s.GreaterOrEqual(st.FinishedAt.Sub(st.StartedAt), 24*time.Hour)
	s.Less(st.FinishedAt.Sub(st.StartedAt), 25*time.Hour)
}

// A rotation started before minGrace keeps the grace it asked for.
func (s *rotationSuite) TestRotationsStartedBeforeKeepTheirGrace() {
	s.env.OnGetVersion("accountable-decisions", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	strict := plan
	strict.MinGrace = 24 * time.Hour
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(strict, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.Anything).Return(rollouts, nil).Once()
	s.env.OnActivity(kube.VerifyConsumers, mock.Anything, mock.Anything).Return(activities.AwaitResult{}, nil).Once()
	s.expectRetireOld()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, Grace: "1h"})
	s.Equal(workflows.StepDone, s.result().Step)
}

// A rotation of a name the catalog does not know gets no series of its
// own: its failure is counted by kind and step, its name is no label.
func (s *metricsSuite) TestUnknownTargetCreatesNoLabel() {
	const rogue = "rogue-0123456789"
	s.newEnv(rogue, kube)
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(activities.Plan{},
		temporal.NewNonRetryableApplicationError(`target: target "`+rogue+`" is not in the catalog`, activities.ErrBadInput, nil)).Once()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: rogue})
	s.Require().Error(s.env.GetWorkflowError())

	s.Equal(1.0, s.mustValue(workflows.MetricFailures+"_total", map[string]string{"kind": "jwt", "step": "preflight"}))
	families, err := s.metrics.Gatherer().Gather()
	s.Require().NoError(err)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				s.NotContains(l.GetValue(), rogue, "series %s has label %s=%s from the input", f.GetName(), l.GetName(), l.GetValue())
			}
		}
	}
}

// The gauges carry the name preflight found in the catalog.
func (s *metricsSuite) TestGaugesCarryTheCatalogsName() {
	s.forward(nil)
	s.env.OnActivity(kube.RetireSecret, mock.Anything, retireOf(oldRef)).
		Return(activities.RetireResult{Deleted: true}, nil).Once()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, Grace: "1h"})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Positive(s.mustValue(workflows.MetricLastSuccess, jwtTarget))
}

// A signal that does not apply where the rotation is, such as an approve
// before grace, is not taken and not silent: the status says who sent it,
// in which step, and why it was refused.
func (s *rotationSuite) TestIgnoredSignalIsShownInStatus() {
	s.happyPath()
	s.expectRetireOld()
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalRetry, workflows.Decision{By: "ui-user", Reason: "clicked by mistake"})
	}, time.Hour)
	var inGrace workflows.Status
	var details, detailsBefore string
	s.env.RegisterDelayedCallback(func() { detailsBefore = s.currentDetails() }, 30*time.Minute)
	s.env.RegisterDelayedCallback(func() { inGrace, details = s.status(), s.currentDetails() }, 2*time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})

	s.Equal(workflows.StepGrace, inGrace.Step, "an ignored signal must not change the step")
	s.Contains(detailsBefore, "grace until "+inGrace.GraceDeadline.UTC().Format(time.RFC3339))
	s.Contains(detailsBefore, "starter approve "+target+" --reason")
	s.NotContains(detailsBefore, "was not taken")
	s.Contains(details, "retry from ui-user at ")
	s.Contains(details, "was not taken: rotation of "+target+" is in step grace")
	s.Require().Len(inGrace.Ignored, 1)
	ig := inGrace.Ignored[0]
	s.Equal(workflows.SignalRetry, ig.Signal)
	s.Equal("ui-user", ig.By)
	s.Equal(workflows.StepGrace, ig.Step)
	s.Contains(ig.Why, "retry runs a rollback that could not finish again")
	s.Equal(workflows.StepDone, s.result().Step)
}
