package workflows_test

import (
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"rotator/activities"
	"rotator/workflows"
)

// TestPlanSaysWhatARotationWouldDo: a plan runs preflight only, and says
// the new version, each change and its rollout, the steps with the window
// wait, and when the closed window opens.
func (s *rotationSuite) TestPlanSaysWhatARotationWouldDo() {
	s.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.PlanID(target)})
	s.env.SetStartTime(noon)
	p := windowPlan
	p.Keys = []string{"issuer", "secret"}
	p.Seen = []activities.Seen{{Workload: app, Paths: []string{"/containers/0/env/0/valueFrom/secretKeyRef/name"}}}
	p.Notify = []activities.NotifyRoute{{Sink: "hooks"}}
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.MatchedBy(func(in activities.PreflightInput) bool {
		return in.Target == target && in.Kind == ""
	})).Return(p, nil).Once()
	s.env.ExecuteWorkflow(workflows.TypePlanRotation, workflows.PlanInput{Target: target})
	s.Require().NoError(s.env.GetWorkflowError())
	var got workflows.RotationPlan
	s.Require().NoError(s.env.GetWorkflowResult(&got))

	s.Equal("orchestrator-jwt-secret-2", got.New)
	s.Equal([]string{"issuer", "secret"}, got.Keys)
	s.Require().Len(got.Changes, 1)
	s.Equal("deployment/orchestrator", got.Changes[0].Object)
	s.Equal("/containers/0/env/0/valueFrom/secretKeyRef/name: orchestrator-jwt-secret -> orchestrator-jwt-secret-2", got.Changes[0].Patch)
	s.Contains(got.Changes[0].Rollout, "one rollout")
	s.Equal("7d", got.Grace)
	s.Equal([]string{"hooks"}, got.Notify)
	s.True(got.WindowOpensAt.Equal(time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)), "window opens at %s", got.WindowOpensAt)
	var steps []workflows.Step
	for _, st := range got.Steps {
		steps = append(steps, st.Step)
	}
	s.Equal([]workflows.Step{workflows.StepPreflight, workflows.StepStage, workflows.StepAwaitWindow, workflows.StepPromote,
		workflows.StepVerify, workflows.StepGrace, workflows.StepRetire}, steps)
	s.env.AssertNotCalled(s.T(), "StageSecret", mock.Anything, mock.Anything)
}

// TestPlanFailsLikeTheRotation: a preflight refusal fails the plan with
// the message a rotation's preflight fails with.
func (s *rotationSuite) TestPlanFailsLikeTheRotation() {
	s.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.PlanID(target)})
	refusal := temporal.NewNonRetryableApplicationError("target orchestrator-jwt: deployment/api reads key \"audience\"", activities.ErrBadInput, nil)
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(activities.Plan{}, refusal).Once()
	s.env.ExecuteWorkflow(workflows.TypePlanRotation, workflows.PlanInput{Target: target})
	app := s.appError(s.env.GetWorkflowError())
	s.Equal(activities.ErrBadInput, app.Type())
	s.Equal("preflight: target orchestrator-jwt: deployment/api reads key \"audience\"", app.Message())
}
