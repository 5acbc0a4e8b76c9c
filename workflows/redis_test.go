package workflows_test

import (
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"rotator/activities"
	"rotator/catalog"
	"rotator/redisacl"
	"rotator/workflows"
)

var redisActs *activities.Redis

// redisPlan is a plan of a redis target after preflight.
func redisPlan() activities.Plan {
	p := plan
	p.Kind = catalog.KindRedis
	p.Key = catalog.RedisPasswordKey
	p.Redis = &activities.RedisPlan{Server: redisacl.Server{Addr: "redis.data.svc:6380", TLS: true}, User: "app", Persist: redisacl.PersistACLSave}
	return p
}

// redisInputOf matches a redis step's input by the versions it names.
func redisInputOf(old, new activities.SecretRef) any {
	return mock.MatchedBy(func(in activities.RedisInput) bool {
		return in.Old == old && in.New == new && in.Plan.Redis != nil && in.Plan.Redis.User == "app"
	})
}

// TestRedisRotationReadsLikeTheRunbook: the new password is added before
// any consumer moves, proven by a login once they have, and the others
// are removed only after approve and the old Secret's retire; nothing is
// removed from the new version.
func (s *rotationSuite) TestRedisRotationReadsLikeTheRunbook() {
	s.newEnv(target, kube, redisActs)
	p := redisPlan()
	var order []string
	note := func(what string) func(mock.Arguments) { return func(mock.Arguments) { order = append(order, what) } }
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(p, nil).Once()
	s.env.OnActivity(redisActs.PreflightRedis, mock.Anything, mock.Anything).Return(p, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(redisActs.ApplyRedisPassword, mock.Anything, redisInputOf(oldRef, newRef)).Run(note("apply")).Return(nil).Once()
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.Anything).Run(note("promote")).Return(rollouts, nil).Once()
	s.env.OnActivity(kube.VerifyConsumers, mock.Anything, mock.Anything).Return(activities.AwaitResult{}, nil).Maybe()
	s.env.OnActivity(redisActs.VerifyRedisLogin, mock.Anything, redisInputOf(oldRef, newRef)).Run(note("verify")).Return(nil).Once()
	s.env.OnActivity(kube.RetireSecret, mock.Anything, retireOf(oldRef)).Run(note("retire old Secret")).
		Return(activities.RetireResult{Deleted: true}, nil).Once()
	s.env.OnActivity(redisActs.RemoveOldRedisPassword, mock.Anything, redisInputOf(oldRef, newRef)).Run(note("remove old password")).Return(nil).Once()
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalApprove, workflows.Decision{By: "bob", Reason: "all clients reconnected"})
	}, time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateRedisPassword, workflows.RotateInput{Target: target})

	st := s.result()
	s.Equal(workflows.StepDone, st.Step)
	s.Equal([]string{"apply", "promote", "verify", "retire old Secret", "remove old password"}, order)
	s.env.AssertNotCalled(s.T(), "RemoveNewRedisPassword", mock.Anything, mock.Anything)
}

// TestRedisRollbackRemovesTheNewPasswordOnceConsumersAreBack: a stuck
// rollout moves the consumers back first, then removes the new password;
// the old one is never touched.
func (s *rotationSuite) TestRedisRollbackRemovesTheNewPasswordOnceConsumersAreBack() {
	s.newEnv(target, kube, redisActs)
	p := redisPlan()
	var order []string
	note := func(what string) func(mock.Arguments) { return func(mock.Arguments) { order = append(order, what) } }
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(p, nil).Once()
	s.env.OnActivity(redisActs.PreflightRedis, mock.Anything, mock.Anything).Return(p, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(redisActs.ApplyRedisPassword, mock.Anything, mock.Anything).Return(nil).Once()
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.Anything).Return(activities.PromoteResult{},
		temporal.NewNonRetryableApplicationError("deployment/orchestrator made no progress", activities.ErrRolloutStuck, nil)).Once()
	back := activities.PromoteResult{Rollouts: []activities.Rollout{{Workload: app, Generation: 3, Patched: true}}}
	s.env.OnActivity(kube.Promote, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool { return in.To == oldRef })).
		Run(note("move back")).Return(back, nil).Once()
	s.env.OnActivity(kube.AwaitRollout, mock.Anything, awaitOf(back.Rollouts)).Return(activities.AwaitResult{}, nil).Once()
	s.env.OnActivity(redisActs.RemoveNewRedisPassword, mock.Anything, redisInputOf(oldRef, newRef)).Run(note("remove new password")).Return(nil).Once()
	s.env.OnActivity(kube.RetireSecret, mock.Anything, mock.Anything).Return(activities.RetireResult{Deleted: true}, nil).Once()
	s.env.ExecuteWorkflow(workflows.TypeRotateRedisPassword, workflows.RotateInput{Target: target})

	app := s.appError(s.env.GetWorkflowError())
	s.Equal(activities.ErrRotationFailed, app.Type())
	s.Contains(app.Error(), "rolled back: consumers are on "+oldRef.Name+" again")
	s.Equal([]string{"move back", "remove new password"}, order)
	s.env.AssertNotCalled(s.T(), "RemoveOldRedisPassword", mock.Anything, mock.Anything)
	s.env.AssertNotCalled(s.T(), "VerifyRedisLogin", mock.Anything, mock.Anything)
}

// TestRedisApplyThatCannotLogInMovesNoConsumer: apply proves the new
// password with a login; when that fails, no consumer is touched and the
// new password is removed.
func (s *rotationSuite) TestRedisApplyThatCannotLogInMovesNoConsumer() {
	s.newEnv(target, kube, redisActs)
	p := redisPlan()
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(p, nil).Once()
	s.env.OnActivity(redisActs.PreflightRedis, mock.Anything, mock.Anything).Return(p, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(redisActs.ApplyRedisPassword, mock.Anything, mock.Anything).Return(temporal.NewNonRetryableApplicationError(
		"log in as app with orchestrator-jwt-secret-2: WRONGPASS", activities.ErrBadInput, nil)).Once()
	s.env.OnActivity(redisActs.RemoveNewRedisPassword, mock.Anything, mock.Anything).Return(nil).Once()
	s.env.OnActivity(kube.RetireSecret, mock.Anything, mock.Anything).Return(activities.RetireResult{Deleted: true}, nil).Once()
	s.env.ExecuteWorkflow(workflows.TypeRotateRedisPassword, workflows.RotateInput{Target: target})

	app := s.appError(s.env.GetWorkflowError())
	s.Contains(app.Error(), "apply: log in as app with orchestrator-jwt-secret-2: WRONGPASS")
	s.env.AssertNotCalled(s.T(), "PromoteAndAwait", mock.Anything, mock.Anything)
	s.env.AssertNotCalled(s.T(), "Promote", mock.Anything, mock.Anything)
}
