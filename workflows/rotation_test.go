package workflows_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"rotator/activities"
	"rotator/workflows"
)

var kube *activities.Kube

const target = "orchestrator-jwt"

var (
	oldRef = activities.SecretRef{Namespace: "llm-orchestrator", Name: "orchestrator-jwt-secret", Version: 1, Fingerprint: "sha256:aaaaaaaaaaaa"}
	newRef = activities.SecretRef{Namespace: "llm-orchestrator", Name: "orchestrator-jwt-secret-2", Version: 2, Fingerprint: "sha256:bbbbbbbbbbbb"}
	app    = activities.Workload{Kind: "Deployment", Name: "orchestrator"}
	plan   = activities.Plan{Target: target, Kind: "jwt", Namespace: "llm-orchestrator", Base: "orchestrator-jwt-secret",
		Key: "secret", Current: oldRef, NextVersion: 2, Consumers: []activities.Workload{app}, Grace: 7 * 24 * time.Hour,
		KindPlans: activities.KindPlans{JWTBytes: 64}}
	rollouts = activities.PromoteResult{Rollouts: []activities.Rollout{{Workload: app, Generation: 2, Patched: true}}}
)

type rotationSuite struct{ envSuite }

func TestRotation(t *testing.T) { runQuiet(t, new(rotationSuite)) }

func (s *rotationSuite) SetupTest() { s.newEnv(target, kube) }

// happyPath mocks every step to succeed.
func (s *rotationSuite) happyPath() {
	s.env.OnActivity(kube.Preflight, mock.Anything, preflightOf(target, "jwt")).Return(plan, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, stageOf(plan, false)).Return(newRef, nil).Once()
	// Without a Vault record, promote and the rollout wait are one activity.
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool {
		return in.From == oldRef && in.To == newRef && in.Target == target
	})).Return(rollouts, nil).Once()
	s.env.OnActivity(kube.VerifyConsumers, mock.Anything, mock.Anything).Return(activities.AwaitResult{}, nil).Once()
}

func (s *rotationSuite) expectRetireOld() {
	s.env.OnActivity(kube.RetireSecret, mock.Anything, retireOf(oldRef)).
		Return(activities.RetireResult{Deleted: true}, nil).Once()
}

// expectRollback mocks the compensation: consumers back to old, new deleted.
func (s *rotationSuite) expectRollback() {
	back := activities.PromoteResult{Rollouts: []activities.Rollout{{Workload: app, Generation: 3, Patched: true}}}
	s.env.OnActivity(kube.Promote, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool {
		return in.From == newRef && in.To == oldRef
	})).Return(back, nil).Once()
	s.env.OnActivity(kube.AwaitRollout, mock.Anything, awaitOf(back.Rollouts)).Return(activities.AwaitResult{}, nil).Once()
	s.env.OnActivity(kube.RetireSecret, mock.Anything, mock.MatchedBy(func(in activities.RetireInput) bool {
		return in.Secret.Name == newRef.Name && in.StagedByRun != ""
	})).Return(activities.RetireResult{Deleted: true}, nil).Once()
}

func (s *rotationSuite) result() workflows.Status {
	var st workflows.Status
	s.NoError(s.env.GetWorkflowResult(&st))
	return st
}

// rolledBack asserts that the rotation completed, not failed, with the
// result step rolled-back, as an aborted rotation that put everything back
// does, and returns its result.
func (s *rotationSuite) rolledBack() workflows.Status {
	s.T().Helper()
	st := s.result()
	s.Equal(workflows.StepRolledBack, st.Step)
	s.Empty(st.Error, "an abort that rolled back is not an error")
	s.Contains(st.Outcome, "rolled back: consumers are on orchestrator-jwt-secret again")
	return st
}

func (s *rotationSuite) appError(err error) *temporal.ApplicationError {
	var app *temporal.ApplicationError
	s.Require().True(errors.As(err, &app), "want an ApplicationError, got %v", err)
	return app
}

func (s *rotationSuite) TestFullGraceThenRetire() {
	s.happyPath()
	s.expectRetireOld()
	var inGrace workflows.Status
	s.env.RegisterDelayedCallback(func() { inGrace = s.status() }, 24*time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})

	s.True(s.env.IsWorkflowCompleted())
	st := s.result()
	s.Equal(workflows.StepDone, st.Step)
	s.Equal(workflows.StepGrace, inGrace.Step)
	s.Equal(oldRef, *inGrace.Old)
	s.Equal(newRef, *inGrace.New)
	s.Equal("rolled out", inGrace.Consumers[0].State)
	s.Equal(7*24*time.Hour, inGrace.GraceDeadline.Sub(inGrace.StepStartedAt))
	s.GreaterOrEqual(st.FinishedAt.Sub(st.StartedAt), 7*24*time.Hour, "retire must wait for the whole grace period")
	s.Nil(st.Approved)
}

func (s *rotationSuite) TestApproveUpdateEndsGraceEarly() {
	s.happyPath()
	s.expectRetireOld()
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateApprove, "u1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { s.Fail("approve in grace was rejected", err.Error()) },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				s.NoError(err)
			},
		}, workflows.Decision{By: "alice", Reason: "all tokens re-issued"})
	}, time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})

	st := s.result()
	s.Equal(workflows.StepDone, st.Step)
	s.Require().NotNil(st.Approved)
	s.Equal("alice", st.Approved.By)
	s.Equal("all tokens re-issued", st.Approved.Reason)
	s.Less(st.FinishedAt.Sub(st.StartedAt), 2*time.Hour)
}

func (s *rotationSuite) TestApproveSignalFromUI() {
	s.happyPath()
	s.expectRetireOld()
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalApprove, workflows.Decision{By: "bob", Reason: "checked the dashboards"})
	}, time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	st := s.result()
	s.Equal(workflows.StepDone, st.Step)
	s.Equal("bob", st.Approved.By)
}

func (s *rotationSuite) TestApproveOutsideGraceIsRefused() {
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(plan, nil)
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil)
	// The rollout takes an hour, so the rotation is in promote when approve arrives.
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.Anything).After(time.Hour).Return(rollouts, nil)
	s.env.OnActivity(kube.VerifyConsumers, mock.Anything, mock.Anything).Return(activities.AwaitResult{}, nil)
	s.expectRetireOld()
	var rejected error
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateApprove, "early", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { rejected = err },
			OnAccept:   func() { s.Fail("approve outside grace was accepted") },
			OnComplete: func(any, error) {},
		}, workflows.Decision{By: "alice", Reason: "looks fine"})
		// A signal outside grace is ignored, not stored for later.
		s.env.SignalWorkflow(workflows.SignalApprove, workflows.Decision{By: "mallory", Reason: "early"})
	}, 30*time.Minute)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})

	s.Require().Error(rejected)
	s.Contains(rejected.Error(), "step promote, not grace")
	st := s.result()
	s.Nil(st.Approved, "an early approve must not shorten grace")
	s.GreaterOrEqual(st.FinishedAt.Sub(st.StartedAt), 7*24*time.Hour)
}

func (s *rotationSuite) TestApproveNeedsBy() {
	s.happyPath()
	s.expectRetireOld()
	var rejected error
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateApprove, "anon", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { rejected = err }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, workflows.Decision{})
	}, time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	s.Require().Error(rejected)
	s.Contains(rejected.Error(), "by: is required")
}

func (s *rotationSuite) TestAbortInGraceCompensates() {
	s.happyPath()
	s.expectRollback()
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateAbort, "a1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { s.Fail("abort in grace was rejected", err.Error()) },
			OnAccept: func() {}, OnComplete: func(any, error) {},
		}, workflows.Decision{By: "carol", Reason: "401s in the logs"})
	}, 2*time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})

	st := s.rolledBack()
	s.Contains(st.Outcome, "aborted by carol (401s in the logs)")
	s.Equal("rolled back", st.Consumers[0].State)
	s.env.AssertNotCalled(s.T(), "RetireSecret", mock.Anything, retireOf(oldRef))
}

// TestAbortStartedBeforeFails: a rotation that began before aborts ended
// completed (no "decided-ends-clean" marker) still fails with ErrAborted
// when aborted, as its history says it did.
func (s *rotationSuite) TestAbortStartedBeforeFails() {
	s.env.OnGetVersion("decided-ends-clean", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	s.happyPath()
	s.expectRollback()
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalAbort, workflows.Decision{By: "carol", Reason: "401s in the logs"})
	}, 2*time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})

	app := s.appError(s.env.GetWorkflowError())
	s.Equal(activities.ErrAborted, app.Type())
	s.Contains(app.Error(), "aborted by carol (401s in the logs)")
	s.Contains(app.Error(), "consumers are on orchestrator-jwt-secret again")
}

// TestCancelInGraceRollsBackAndEndsCanceled: a cancellation from the
// Temporal UI rolls back like an abort and ends the run canceled, not
// failed.
func (s *rotationSuite) TestCancelInGraceRollsBackAndEndsCanceled() {
	s.happyPath()
	s.expectRollback()
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 2*time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})

	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.True(temporal.IsCanceledError(err), "want a canceled run, got %v", err)
	st := s.status()
	s.Equal(workflows.StepRolledBack, st.Step)
	s.Contains(st.Outcome, "consumers are on orchestrator-jwt-secret again")
	s.env.AssertNotCalled(s.T(), "RetireSecret", mock.Anything, retireOf(oldRef))
}

func (s *rotationSuite) TestAbortSignalDuringRolloutCancelsAndCompensates() {
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(plan, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	// The forward rollout hangs; abort must not wait for it.
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool { return in.To == newRef })).
		After(10*time.Hour).Return(rollouts, nil).Once()
	s.expectRollback()
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalAbort, workflows.Decision{By: "dave", Reason: "errors after rollout"})
	}, time.Minute)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})

	s.rolledBack()
	s.env.AssertNotCalled(s.T(), "VerifyConsumers", mock.Anything, mock.Anything)
}

// TestFailedRolloutCompensates: a rollback after a failure leaves the run
// failed, for a person to look at, however cleanly it rolled back.
func (s *rotationSuite) TestFailedRolloutCompensates() {
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(plan, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool { return in.To == newRef })).
		Return(activities.PromoteResult{}, temporal.NewNonRetryableApplicationError("deployment/orchestrator exceeded its progress deadline", activities.ErrRolloutFailed, nil)).Once()
	s.expectRollback()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})

	app := s.appError(s.env.GetWorkflowError())
	s.Equal(activities.ErrRotationFailed, app.Type())
	s.Contains(app.Error(), "progress deadline")
	s.Equal(workflows.StepRolledBack, s.status().Step)
	s.env.AssertNotCalled(s.T(), "RetireSecret", mock.Anything, retireOf(oldRef))
}

func (s *rotationSuite) TestStageFailureDeletesOnlyWhatItStaged() {
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(plan, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).
		Return(activities.SecretRef{}, temporal.NewNonRetryableApplicationError("Secret exists", activities.ErrConflict, nil)).Once()
	s.env.OnActivity(kube.RetireSecret, mock.Anything, mock.MatchedBy(func(in activities.RetireInput) bool {
		return in.Secret.Name == "orchestrator-jwt-secret-2" && in.StagedByRun != ""
	})).Return(activities.RetireResult{}, nil).Once()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	s.Error(s.env.GetWorkflowError())
	s.env.AssertNotCalled(s.T(), "Promote", mock.Anything, mock.Anything)
	s.env.AssertNotCalled(s.T(), "PromoteAndAwait", mock.Anything, mock.Anything)
}

func (s *rotationSuite) TestBadInputFailsInPreflightAndChangesNothing() {
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(activities.Plan{},
		temporal.NewNonRetryableApplicationError(`target: target "nope" is not in the catalog`, activities.ErrBadInput, nil)).Once()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})

	app := s.appError(s.env.GetWorkflowError())
	s.Equal(activities.ErrBadInput, app.Type())
	s.True(app.NonRetryable())
	s.Contains(app.Error(), "not in the catalog")
	for _, a := range []string{"StageSecret", "Promote", "PromoteAndAwait", "AwaitRollout", "VerifyConsumers", "RetireSecret"} {
		s.env.AssertNotCalled(s.T(), a, mock.Anything, mock.Anything)
	}
	s.Equal(workflows.StepFailed, s.status().Step)
}

func (s *rotationSuite) TestWrongWorkflowIDIsRefused() {
	s.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "my-rotation"})
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	app := s.appError(s.env.GetWorkflowError())
	s.Equal(activities.ErrBadInput, app.Type())
	s.Contains(app.Error(), `must run as "rotate/orchestrator-jwt"`)
	s.env.AssertNotCalled(s.T(), "Preflight", mock.Anything, mock.Anything)
}

func (s *rotationSuite) TestBadGraceInputIsRefused() {
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, Grace: "-1h"})
	app := s.appError(s.env.GetWorkflowError())
	s.Contains(app.Error(), "grace:")
	s.env.AssertNotCalled(s.T(), "Preflight", mock.Anything, mock.Anything)
}

func (s *rotationSuite) TestGraceOverride() {
	s.happyPath()
	s.expectRetireOld()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, Grace: "2h"})
	st := s.result()
	s.Equal(workflows.StepDone, st.Step)
	s.Less(st.FinishedAt.Sub(st.StartedAt), 3*time.Hour)
}

func (s *rotationSuite) TestEmergencySkipsGrace() {
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(plan, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, stageOf(plan, true)).Return(newRef, nil).Once()
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.Anything).Return(rollouts, nil).Once()
	s.env.OnActivity(kube.VerifyConsumers, mock.Anything, mock.Anything).Return(activities.AwaitResult{}, nil).Once()
	s.expectRetireOld()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, Emergency: true, RequestedBy: "sec-team"})
	st := s.result()
	s.Equal(workflows.StepDone, st.Step)
	s.True(st.Emergency)
	s.True(st.GraceDeadline.IsZero())
	s.Less(st.FinishedAt.Sub(st.StartedAt), time.Minute)
}

func (s *rotationSuite) TestRetireRefusalFailsWithoutRollback() {
	s.happyPath()
	s.env.OnActivity(kube.RetireSecret, mock.Anything, retireOf(oldRef)).Return(activities.RetireResult{},
		temporal.NewNonRetryableApplicationError("Secret orchestrator-jwt-secret is still referenced by deployment/late", activities.ErrStillInUse, nil)).Once()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, Grace: "1h"})
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), "still referenced by deployment/late")
	// After grace the new version is live everywhere: rolling back would be wrong.
	s.env.AssertNotCalled(s.T(), "Promote", mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool { return in.To == oldRef }))
}

func (s *rotationSuite) TestConsumersCheckedInRolloutSkipVerify() {
	// Promote's rollouts name the Secrets they move between, so the
	// rollout wait checks each consumer's template and verify has nothing
	// left to read.
	checked := activities.PromoteResult{Rollouts: []activities.Rollout{
		{Workload: app, Generation: 2, Patched: true, From: oldRef.Name, To: newRef.Name}}}
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(plan, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.Anything).Return(checked, nil).Once()
	s.expectRetireOld()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, Grace: "1h"})
	s.Equal(workflows.StepDone, s.result().Step)
	s.env.AssertNotCalled(s.T(), "VerifyConsumers", mock.Anything, mock.Anything)
}
