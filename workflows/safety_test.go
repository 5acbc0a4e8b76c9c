package workflows_test

import (
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"rotator/activities"
	"rotator/workflows"
)

// These tests cover version workload-safety of the skeleton: what a
// production namespace needs beyond the demo's shape.

var barePod = activities.Holder{Workload: activities.Workload{Kind: "Pod", Name: "debug"}, Why: "a bare pod"}

func (s *rotationSuite) update(name, id string, d workflows.Decision, rejected *error) {
	s.env.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{
		OnReject: func(err error) { *rejected = err }, OnAccept: func() {}, OnComplete: func(any, error) {},
	}, d)
}

// TestRetireWaitsForWhatStillUsesTheOldVersion: retire deletes the old
// version only once no live object uses it, checking again meanwhile, and
// the status names what it waits for.
func (s *rotationSuite) TestRetireWaitsForWhatStillUsesTheOldVersion() {
	s.happyPath()
	inUse := activities.RetireResult{UsedBy: []activities.Holder{barePod}}
	s.env.OnActivity(kube.RetireSecret, mock.Anything, mock.MatchedBy(func(in activities.RetireInput) bool {
		return in.Secret == oldRef && in.Report && !in.Keep
	})).Return(inUse, nil).Times(3)
	s.env.OnActivity(kube.RetireSecret, mock.Anything, mock.MatchedBy(func(in activities.RetireInput) bool {
		return in.Secret == oldRef && in.Report && !in.Keep
	})).Return(activities.RetireResult{Deleted: true}, nil).Once()
	var waiting workflows.Status
	var early error
	s.env.RegisterDelayedCallback(func() {
		waiting = s.status()
		// Approve again without keepOld: refused, and says how to end it.
		s.update(workflows.UpdateApprove, "again", workflows.Decision{By: "alice", Reason: "done"}, &early)
	}, time.Hour+20*time.Second)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, Grace: "1h"})

	st := s.result()
	s.Equal(workflows.StepDone, st.Step)
	s.Equal(workflows.StepRetire, waiting.Step)
	s.Equal([]string{"pod/debug (a bare pod)"}, waiting.RetireWaitsFor)
	s.Contains(waiting.Reminder, "starter approve "+target+" --keep-old")
	s.Require().Error(early)
	s.Contains(early.Error(), "approve with keepOld")
	s.Empty(st.RetireWaitsFor)
	s.Equal([]string{oldRef.Name + ": deleted"}, st.Retired)
	// 15 s, 30 s and 60 s between the checks.
	s.GreaterOrEqual(st.FinishedAt.Sub(st.StartedAt), time.Hour+105*time.Second)
}

// TestKeepOldEndsTheWait: approve --keep-old finishes the rotation with
// the old version kept (labelled retired by the activity) and its
// credential not revoked.
func (s *rotationSuite) TestKeepOldEndsTheWait() {
	s.happyPath()
	s.env.OnActivity(kube.RetireSecret, mock.Anything, mock.MatchedBy(func(in activities.RetireInput) bool { return in.Report && !in.Keep })).
		Return(activities.RetireResult{UsedBy: []activities.Holder{barePod}}, nil)
	s.env.OnActivity(kube.RetireSecret, mock.Anything, mock.MatchedBy(func(in activities.RetireInput) bool { return in.Secret == oldRef && in.Keep })).
		Return(activities.RetireResult{Kept: "kept as an engineer asked (approve --keep-old)"}, nil).Once()
	var rejected error
	s.env.RegisterDelayedCallback(func() {
		s.update(workflows.UpdateApprove, "keep", workflows.Decision{By: "erin", Reason: "debug pod stays", KeepOld: true}, &rejected)
	}, 3*time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, Grace: "1h"})

	s.NoError(rejected)
	st := s.result()
	s.Equal(workflows.StepDone, st.Step)
	s.Require().NotNil(st.KeptOld)
	s.Equal("erin", st.KeptOld.By)
	s.Contains(st.Retired[0], oldRef.Name+": kept, labelled retired")
	s.Contains(st.Retired[1], "not revoked")
	s.Less(st.FinishedAt.Sub(st.StartedAt), 3*time.Hour+time.Minute)
}

// TestAbortDuringStageLetsTheStageFinish: an abort does not cut a step
// that changes something short; the compensation that deletes what it
// staged runs only after it returned, so nothing lands afterwards.
func (s *rotationSuite) TestAbortDuringStageLetsTheStageFinish() {
	var stageEnded, deleteStarted time.Time
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(plan, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).After(30*time.Second).Return(newRef, nil).
		Run(func(mock.Arguments) { stageEnded = s.env.Now() }).Once()
	s.env.OnActivity(kube.RetireSecret, mock.Anything, mock.MatchedBy(func(in activities.RetireInput) bool {
		return in.Secret.Name == newRef.Name && in.StagedByRun != ""
	})).Run(func(mock.Arguments) { deleteStarted = s.env.Now() }).Return(activities.RetireResult{Deleted: true}, nil).Once()
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalAbort, workflows.Decision{By: "dave", Reason: "wrong target"})
	}, time.Second)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})

	s.Equal(workflows.StepRolledBack, s.result().Step)
	s.False(stageEnded.IsZero())
	s.False(deleteStarted.Before(stageEnded), "compensation started before the stage it undoes ended")
	s.env.AssertNotCalled(s.T(), "PromoteAndAwait", mock.Anything, mock.Anything)
}

// TestUnfinishedCompensationWaitsForRetry: a rollback step that fails
// leaves the rotation in compensation-failed, saying what is left where,
// until starter retry runs the rest again.
func (s *rotationSuite) TestUnfinishedCompensationWaitsForRetry() {
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(plan, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.Anything).
		Return(activities.PromoteResult{}, temporal.NewNonRetryableApplicationError("deployment/orchestrator made no progress", activities.ErrRolloutStuck, nil)).Once()
	forbidden := temporal.NewNonRetryableApplicationError(`deployments "orchestrator" is forbidden`, activities.ErrBadInput, nil)
	s.env.OnActivity(kube.Promote, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool { return in.To == oldRef })).
		Return(activities.PromoteResult{}, forbidden).Once()
	s.expectRollback()
	var stuck workflows.Status
	var early, retried error
	s.env.RegisterDelayedCallback(func() {
		stuck = s.status()
		s.update(workflows.UpdateRetry, "anon", workflows.Decision{}, &early)
		s.update(workflows.UpdateRetry, "r1", workflows.Decision{By: "frank", Reason: "RBAC fixed"}, &retried)
	}, time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})

	s.Equal(workflows.StepCompensationFailed, stuck.Step)
	s.Contains(stuck.Error, "compensation did not finish, so the rotation needs a person")
	s.Contains(stuck.Error, "is forbidden")
	s.Contains(stuck.Left, "deployment/orchestrator on orchestrator-jwt-secret-2 (the new version; moving it back did not finish)")
	s.Contains(stuck.Left, "Secret orchestrator-jwt-secret-2 still exists")
	s.Contains(stuck.Reminder, "starter retry "+target)
	s.Require().Error(early)
	s.Contains(early.Error(), "by: is required")
	s.NoError(retried)
	app := s.appError(s.env.GetWorkflowError())
	s.Equal(activities.ErrRotationFailed, app.Type())
	st := s.status()
	s.Equal(workflows.StepRolledBack, st.Step)
	s.Empty(st.Left)
	s.Equal("frank", st.Retried[0].By)
}

// TestRetryOutsideAFailedCompensationIsRefused.
func (s *rotationSuite) TestRetryOutsideAFailedCompensationIsRefused() {
	s.happyPath()
	s.expectRetireOld()
	var rejected error
	s.env.RegisterDelayedCallback(func() {
		s.update(workflows.UpdateRetry, "r", workflows.Decision{By: "frank"}, &rejected)
	}, time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	s.Require().Error(rejected)
	s.Contains(rejected.Error(), "step grace, not compensation-failed")
}

// TestDeletedConsumerIsSkipped: a consumer deleted during the rotation is
// no failure: nothing of it uses either version any more.
func (s *rotationSuite) TestDeletedConsumerIsSkipped() {
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(plan, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.Anything).
		Return(activities.PromoteResult{Deleted: []activities.Workload{app}}, nil).Once()
	s.expectRetireOld()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, Grace: "1h"})
	// Nothing left to verify: the rollout wait had no consumer to check.
	s.env.AssertNotCalled(s.T(), "VerifyConsumers", mock.Anything, mock.Anything)
	st := s.result()
	s.Equal(workflows.StepDone, st.Step)
	s.Equal("deleted during the rotation", st.Consumers[0].State)
}

// TestStillOnOldFailsVerifyWhereTheOldPasswordStopsWorking: what still
// uses the old version after the rollout is reported; where the old
// credential no longer works (single-user PostgreSQL) it fails verify.
func (s *rotationSuite) TestStillOnOldFailsVerifyWhereTheOldPasswordStopsWorking() {
	stale := activities.PromoteResult{Rollouts: rollouts.Rollouts,
		StillOnOld: []activities.Holder{{Workload: activities.Workload{Kind: "Deployment", Name: "late"}}}}
	for _, stops := range []bool{false, true} {
		s.SetupTest()
		p := plan
		p.OldStopsAtApply = stops
		s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(p, nil).Once()
		s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
		s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.Anything).Return(stale, nil).Once()
		s.env.OnActivity(kube.VerifyConsumers, mock.Anything, mock.Anything).Return(activities.AwaitResult{}, nil).Once()
		if stops {
			s.expectRollback()
		} else {
			s.expectRetireOld()
		}
		s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, Grace: "1h"})
		st := s.status()
		s.Equal([]string{"deployment/late"}, st.StillOnOld)
		err := s.env.GetWorkflowError()
		if stops {
			s.Contains(s.appError(err).Error(), "verify: deployment/late still uses Secret orchestrator-jwt-secret, whose password no longer works")
		} else {
			s.NoError(err)
		}
		s.env.AssertExpectations(s.T())
	}
}

// TestPreviousKeyDroppedAtRetire: with jwt.previous: dropAtRetire, retire
// rolls the consumers onto a version without the previous key, then
// deletes the old version and the dual-key one.
func (s *rotationSuite) TestPreviousKeyDroppedAtRetire() {
	p := plan
	p.DualKey, p.DropPrevious = true, true
	third := activities.SecretRef{Namespace: newRef.Namespace, Name: "orchestrator-jwt-secret-3", Version: 3, Fingerprint: newRef.Fingerprint}
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(p, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool { return in.To == newRef })).
		Return(rollouts, nil).Once()
	s.env.OnActivity(kube.VerifyConsumers, mock.Anything, mock.Anything).Return(activities.AwaitResult{}, nil).Once()
	s.env.OnActivity(kube.StageWithoutPrevious, mock.Anything, mock.MatchedBy(func(in activities.DropPreviousInput) bool { return in.From == newRef })).
		Return(third, nil).Once()
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool {
		return in.From == newRef && in.To == third
	})).Return(rollouts, nil).Once()
	s.expectRetireOld()
	s.env.OnActivity(kube.RetireSecret, mock.Anything, retireOf(newRef)).Return(activities.RetireResult{Deleted: true}, nil).Once()
	var inGrace workflows.Status
	s.env.RegisterDelayedCallback(func() { inGrace = s.status() }, 30*time.Minute)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, Grace: "1h"})

	st := s.result()
	s.Contains(inGrace.PreviousKey, "until retire")
	s.Equal(third, *st.New)
	s.Contains(st.PreviousKey, "dropped at retire")
	s.Equal([]string{oldRef.Name + ": deleted", newRef.Name + ": deleted"}, st.Retired)
}
