package workflows_test

import (
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"rotator/activities"
	"rotator/catalog"
	"rotator/workflows"
)

var pgActs *activities.Postgres

// TestRollbackRestoresTheBackingSystemFirst: a single-user rollback gives
// the role its old password back before the consumers move back to it (a
// readiness probe that logs in would otherwise keep the rollback from
// rolling out); an alternating-users rollback locks the user that was to
// take over once the consumers are back on the other.
func (s *rotationSuite) TestRollbackRestoresTheBackingSystemFirst() {
	for _, strategy := range []string{catalog.StrategySingleUser, catalog.StrategyAlternating} {
		s.newEnv(target, kube, pgActs)
		p := plan
		p.Kind = catalog.KindPostgres
		p.Postgres = &activities.PostgresPlan{Strategy: strategy, Role: "app", Username: "app"}
		var order []string
		note := func(what string) func(mock.Arguments) { return func(mock.Arguments) { order = append(order, what) } }
		s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(p, nil).Once()
		s.env.OnActivity(pgActs.PreflightDatabase, mock.Anything, mock.Anything).Return(p, nil).Once()
		s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
		s.env.OnActivity(pgActs.ApplyPassword, mock.Anything, mock.Anything).Return(nil).Once()
		s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.Anything).Return(activities.PromoteResult{},
			temporal.NewNonRetryableApplicationError("statefulset/db made no progress", activities.ErrRolloutStuck, nil)).Once()
		s.env.OnActivity(pgActs.RestorePassword, mock.Anything, mock.Anything).Run(note("restore")).Return(nil).Once()
		back := activities.PromoteResult{Rollouts: []activities.Rollout{{Workload: app, Generation: 3, Patched: true}}}
		s.env.OnActivity(kube.Promote, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool { return in.To == oldRef })).
			Run(note("move back")).Return(back, nil).Once()
		s.env.OnActivity(kube.AwaitRollout, mock.Anything, awaitOf(back.Rollouts)).Return(activities.AwaitResult{}, nil).Once()
		s.env.OnActivity(pgActs.LockNewUser, mock.Anything, mock.Anything).Run(note("lock new user")).Return(nil).Once()
		s.env.OnActivity(kube.RetireSecret, mock.Anything, mock.Anything).Return(activities.RetireResult{Deleted: true}, nil).Once()
		s.env.ExecuteWorkflow(workflows.TypeRotateDatabasePassword, workflows.RotateInput{Target: target})

		s.Equal(activities.ErrRotationFailed, s.appError(s.env.GetWorkflowError()).Type())
		// Both activities run for both strategies; each acts only for its
		// own (RestorePassword for single-user, LockNewUser for
		// alternating-users), in this order.
		s.Equal([]string{"restore", "move back", "lock new user"}, order, strategy)
		s.env.AssertExpectations(s.T())
	}
}

// TestApplyThatCannotLogInMovesNoConsumer: apply proves the new login;
// when it fails, no consumer is touched and the rollback restores.
func (s *rotationSuite) TestApplyThatCannotLogInMovesNoConsumer() {
	s.newEnv(target, kube, pgActs)
	p := plan
	p.Kind = catalog.KindPostgres
	p.Postgres = &activities.PostgresPlan{Strategy: catalog.StrategyAlternating, Role: "app", Users: []string{"app_a", "app_b"}, Username: "app_b"}
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(p, nil).Once()
	s.env.OnActivity(pgActs.PreflightDatabase, mock.Anything, mock.Anything).Return(p, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(pgActs.ApplyPassword, mock.Anything, mock.Anything).Return(temporal.NewNonRetryableApplicationError(
		"the password of app_b was set, but logging in with it fails, so no consumer was moved", activities.ErrBadInput, nil)).Once()
	s.env.OnActivity(pgActs.RestorePassword, mock.Anything, mock.Anything).Return(nil).Once()
	s.env.OnActivity(pgActs.LockNewUser, mock.Anything, mock.Anything).Return(nil).Once()
	s.env.OnActivity(kube.RetireSecret, mock.Anything, mock.Anything).Return(activities.RetireResult{Deleted: true}, nil).Once()
	s.env.ExecuteWorkflow(workflows.TypeRotateDatabasePassword, workflows.RotateInput{Target: target})

	app := s.appError(s.env.GetWorkflowError())
	s.Contains(app.Error(), "apply: the password of app_b was set, but logging in with it fails")
	s.env.AssertNotCalled(s.T(), "PromoteAndAwait", mock.Anything, mock.Anything)
	s.env.AssertNotCalled(s.T(), "Promote", mock.Anything, mock.Anything)
	s.Less(s.status().FinishedAt.Sub(s.status().StartedAt), time.Minute)
}
