package workflows_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"rotator/activities"
	"rotator/catalog"
	"rotator/workflows"
)

type scheduleSuite struct{ envSuite }

func TestScheduledRotation(t *testing.T) { runQuiet(t, new(scheduleSuite)) }

var rotationActs *activities.Rotations

func (s *scheduleSuite) SetupTest() {
	s.newEnv("", rotationActs)
	s.env.RegisterWorkflowWithOptions(fakeScheduler, workflow.RegisterOptions{Name: "fakeScheduler"})
	s.lastRotation(activities.LastRotation{Found: true, Status: "completed", Step: string(workflows.StepDone)})
}

// lastRotation mocks what Temporal says of the target's last rotation.
func (s *scheduleSuite) lastRotation(last activities.LastRotation) {
	s.env.OnActivity(rotationActs.LastRotation, mock.Anything, mock.MatchedBy(func(in activities.LastRotationInput) bool {
		return in.StepAttribute == workflows.SearchStep.GetName()
	})).Return(last, nil).Maybe()
}

// TestLastRollbackUnfinishedFailsAndStartsNothing: a target whose last
// rotation could not finish its rollback is not rotated again by a
// Schedule; the run fails, saying why and what to do.
func (s *scheduleSuite) TestLastRollbackUnfinishedFailsAndStartsNothing() {
	for _, status := range []string{"running", "terminated"} {
		s.Run(status, func() {
			s.newEnv("", rotationActs)
			s.lastRotation(activities.LastRotation{Found: true, RunID: "r1", Status: status, Step: string(workflows.StepCompensationFailed)})
			s.env.ExecuteWorkflow(workflows.TypeScheduledRotation, workflows.ScheduledInput{Target: "orchestrator-jwt", Kind: "jwt"})
			err := s.env.GetWorkflowError()
			var app *temporal.ApplicationError
			s.Require().True(errors.As(err, &app), "want a failure, got %v", err)
			s.Equal(activities.ErrNeedsPerson, app.Type())
			for _, want := range []string{"could not finish its rollback", "run r1", "starter retry orchestrator-jwt", "did not start a rotation"} {
				s.Contains(app.Error(), want)
			}
		})
	}
}

// fakeScheduler plays the Temporal server's scheduler, which the test
// environment lacks: it starts ScheduledRotation under a timestamped ID
// with the TemporalScheduledById attribute the server sets.
func fakeScheduler(ctx workflow.Context, scheduleID string, in workflows.ScheduledInput) (workflows.ScheduledResult, error) {
	ctx = workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: "scheduled/" + in.Target + "-2025-01-01T00:00:00Z",
		TypedSearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword("TemporalScheduledById").ValueSet(scheduleID)),
	})
	var res workflows.ScheduledResult
	err := workflow.ExecuteChildWorkflow(ctx, workflows.TypeScheduledRotation, in).Get(ctx, &res)
	return res, err
}

// rotation records how the mocked rotation was started.
type rotation struct {
	id, parent string
	in         workflows.RotateInput
}

// expectRotation mocks the rotation workflow of the type and records how
// it was started.
func (s *scheduleSuite) expectRotation(wfType string) *rotation {
	got := &rotation{}
	s.env.OnWorkflow(wfType, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in workflows.RotateInput) (workflows.Status, error) {
			info := workflow.GetInfo(ctx)
			got.id, got.in = info.WorkflowExecution.ID, in
			if info.ParentWorkflowExecution != nil {
				got.parent = info.ParentWorkflowExecution.ID
			}
			return workflows.Status{Target: in.Target, Step: workflows.StepGrace}, nil
		}).Once()
	return got
}

func (s *scheduleSuite) result() workflows.ScheduledResult {
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.ScheduledResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	return res
}

func (s *scheduleSuite) TestStartsTheRotationAsByHand() {
	for _, tc := range []struct {
		kind   catalog.Kind
		wfType string
	}{
		{"jwt", workflows.TypeRotateJWTSecret},
		{"postgres", workflows.TypeRotateDatabasePassword},
		{"apikeys", workflows.TypeRotateAPIKeys},
	} {
		s.Run(string(tc.kind), func() {
			s.SetupTest()
			got := s.expectRotation(tc.wfType)
			s.env.ExecuteWorkflow("fakeScheduler", "rotation/"+target,
				workflows.ScheduledInput{Target: target, Kind: tc.kind})

			res := s.result()
			s.True(res.Started)
			s.NotEmpty(res.RotationRunID)
			s.Empty(res.Skipped)
			s.Equal(target, res.Target)
			s.Equal(workflows.WorkflowID(target), got.id, "a rotation runs only as rotate/<target>")
			s.Equal("scheduled/"+target+"-2025-01-01T00:00:00Z", got.parent)
			s.Equal(workflows.RotateInput{Target: target, RequestedBy: "schedule rotation/" + target}, got.in)
			s.TearDownTest()
		})
	}
}

// Started by hand from the UI, without a Schedule, the wrapper still works
// and says who asked as well as it can.
func (s *scheduleSuite) TestWithoutScheduleAttributeRequestedByIsSchedule() {
	got := s.expectRotation(workflows.TypeRotateJWTSecret)
	s.env.ExecuteWorkflow(workflows.TypeScheduledRotation, workflows.ScheduledInput{Target: target, Kind: "jwt"})

	s.True(s.result().Started)
	s.Equal(workflows.RotateInput{Target: target, RequestedBy: "schedule"}, got.in)
}

func (s *scheduleSuite) TestAlreadyRunningIsSkippedAndSaysSo() {
	// The test environment refuses a child whose ID is in use by any
	// running workflow; running the wrapper itself as rotate/<target> is
	// how a running rotation of the target is stood up here. The real
	// server's refusal is covered by the end-to-end test.
	s.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.WorkflowID(target)})
	s.env.ExecuteWorkflow(workflows.TypeScheduledRotation, workflows.ScheduledInput{Target: target, Kind: "jwt"})

	res := s.result()
	s.False(res.Started)
	s.Empty(res.RotationRunID)
	s.Equal("a rotation of orchestrator-jwt is already running (workflow rotate/orchestrator-jwt): this scheduled run was skipped", res.Skipped)
}

func (s *scheduleSuite) TestBadInputFailsWithoutRetryNamingTheField() {
	for _, tc := range []struct {
		name string
		in   workflows.ScheduledInput
		want string
	}{
		{"no target", workflows.ScheduledInput{Kind: "jwt"}, "target: is required"},
		{"unknown kind", workflows.ScheduledInput{Target: target, Kind: "carrier-pigeon"}, `kind: "carrier-pigeon" is not a kind this worker rotates`},
		{"no kind", workflows.ScheduledInput{Target: target}, `kind: "" is not a kind`},
	} {
		s.Run(tc.name, func() {
			s.SetupTest()
			s.env.ExecuteWorkflow(workflows.TypeScheduledRotation, tc.in)
			s.True(s.env.IsWorkflowCompleted())
			err := s.env.GetWorkflowError()
			s.Require().Error(err)
			var app *temporal.ApplicationError
			s.Require().True(errors.As(err, &app), "want an ApplicationError, got %v", err)
			s.True(app.NonRetryable())
			s.Equal(activities.ErrBadInput, app.Type())
			s.Contains(app.Message(), tc.want)
			s.TearDownTest()
		})
	}
}
