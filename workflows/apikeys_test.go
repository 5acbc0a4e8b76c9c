package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"rotator/activities"
	"rotator/workflows"
)

var (
	keysActs  *activities.APIKeys
	vaultActs *activities.Vault
)

const keysTarget = "orchestrator-llm"

var (
	keysOld  = activities.SecretRef{Namespace: "llm-orchestrator", Name: "orchestrator-llm-keys", Version: 1, Fingerprint: "sha256:111111111111", VaultVersion: 3}
	keysNew  = activities.SecretRef{Namespace: "llm-orchestrator", Name: "orchestrator-llm-keys-2", Version: 2, Fingerprint: "sha256:222222222222", VaultVersion: 4}
	keysPlan = activities.Plan{Target: keysTarget, Kind: "apikeys", Namespace: "llm-orchestrator", Base: "orchestrator-llm-keys",
		Key: "openai-api-key", Current: keysOld, NextVersion: 2, Consumers: []activities.Workload{app}, Grace: 7 * 24 * time.Hour,
		Vault: &activities.VaultPlan{Mount: "secret", Path: "llm-orchestrator/orchestrator-llm"}}
	staged = activities.StagedKeys{Fingerprints: map[string]string{"openai": "sha256:333333333333", "anthropic": "sha256:444444444444"}}
	prior  = activities.VaultLabels{Current: 3, Pending: 4, Previous: 2}
)

// keysPlanWith is the plan PreflightKeys returns; admin says which
// providers have an admin key.
func keysPlanWith(admin map[string]bool) activities.Plan {
	p := keysPlan
	p.APIKeys = &activities.APIKeysPlan{StageTimeout: 72 * time.Hour, Probe: true, Providers: []activities.ProviderPlan{
		{Name: "openai", Key: "openai-api-key", BaseURL: "http://openai", Admin: admin["openai"], OldKeyID: map[bool]string{true: "key_old"}[admin["openai"]]},
		{Name: "anthropic", Key: "anthropic-api-key", BaseURL: "http://anthropic", Admin: admin["anthropic"], OldKeyID: map[bool]string{true: "apikey_old"}[admin["anthropic"]]},
	}}
	return p
}

type apiKeysSuite struct{ envSuite }

func TestAPIKeysRotation(t *testing.T) { runQuiet(t, new(apiKeysSuite)) }

func (s *apiKeysSuite) SetupTest() { s.newEnv(keysTarget, kube, keysActs, vaultActs) }

func (s *apiKeysSuite) preflight(p activities.Plan) {
	s.env.OnActivity(kube.Preflight, mock.Anything, preflightOf(keysTarget, "apikeys")).Return(keysPlan, nil).Once()
	s.env.OnActivity(keysActs.PreflightKeys, mock.Anything, keysPlan).Return(p, nil).Once()
}

// change mocks stage to verify, with the Vault labels moving at promote.
func (s *apiKeysSuite) change(p activities.Plan, emergency bool) {
	s.env.OnActivity(kube.StageSecret, mock.Anything, stageOf(p, emergency)).Return(keysNew, nil).Once()
	s.env.OnActivity(kube.Promote, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool {
		return in.From == keysOld && in.To == keysNew
	})).Return(rollouts, nil).Once()
	s.env.OnActivity(vaultActs.PromoteVersion, mock.Anything, activities.VaultInput{Vault: *p.Vault, Version: 4}).Return(prior, nil).Once()
	s.env.OnActivity(kube.AwaitRollout, mock.Anything, mock.Anything).Return(activities.AwaitResult{}, nil).Once()
	s.env.OnActivity(kube.VerifyConsumers, mock.Anything, mock.Anything).Return(activities.AwaitResult{}, nil).Once()
	s.env.OnActivity(keysActs.Probe, mock.Anything, p).Return(nil).Once()
}

func (s *apiKeysSuite) stageKeys(after time.Duration, onDone func(error)) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateKeysStaged, after.String(), &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { onDone(err) },
			OnAccept:   func() {},
			OnComplete: func(_ any, err error) { onDone(err) },
		}, workflows.Decision{By: "alice"})
	}, after)
}

func (s *apiKeysSuite) TestWaitsForKeysThenRevokesAfterGrace() {
	p := keysPlanWith(map[string]bool{"openai": true, "anthropic": true})
	s.preflight(p)
	s.env.OnActivity(keysActs.VerifyStagedKeys, mock.Anything, p).Return(staged, nil).Once()
	s.change(p, false)
	s.env.OnActivity(kube.RetireSecret, mock.Anything, retireOf(keysOld)).Return(activities.RetireResult{Deleted: true}, nil).Once()
	s.env.OnActivity(keysActs.RevokeOldKeys, mock.Anything, p).Return(activities.RevokeResult{Revoked: []string{"openai:key_old", "anthropic:apikey_old"}}, nil).Once()

	var waiting, inGrace workflows.Status
	s.env.RegisterDelayedCallback(func() { waiting = s.status() }, 30*time.Hour)
	var stageErr error = errNotCalled
	s.stageKeys(48*time.Hour, func(err error) { stageErr = err })
	s.env.RegisterDelayedCallback(func() { inGrace = s.status() }, 72*time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateAPIKeys, workflows.RotateInput{Target: keysTarget})

	s.Require().True(s.env.IsWorkflowCompleted())
	var st workflows.Status
	s.Require().NoError(s.env.GetWorkflowResult(&st))
	s.NoError(stageErr, "keys-staged update should report the providers' acceptance")
	s.Equal(workflows.StepAwaitKeys, waiting.Step, "the rotation must wait for the engineer's keys")
	s.Contains(waiting.Reminder, "starter stage-keys "+keysTarget)
	s.Contains(waiting.Reminder, "Vault secret/llm-orchestrator/orchestrator-llm/staged")
	s.Equal(workflows.StepGrace, inGrace.Step)
	s.Empty(inGrace.Reminder)
	s.Equal(staged.Fingerprints, st.StagedKeys)
	s.Equal(workflows.StepDone, st.Step)
	s.Equal([]string{"openai:key_old", "anthropic:apikey_old"}, st.Revoked)
	s.GreaterOrEqual(st.FinishedAt.Sub(st.StartedAt), 48*time.Hour+7*24*time.Hour)
}

var errNotCalled = temporal.NewApplicationError("callback not called", "test")

func (s *apiKeysSuite) TestRefusedKeyChangesNothingAndWaitsForBetterKeys() {
	p := keysPlanWith(map[string]bool{"openai": true, "anthropic": true})
	s.preflight(p)
	refused := temporal.NewNonRetryableApplicationError("anthropic refused the staged anthropic-api-key: 401 authentication_error", activities.ErrKeyRejected, nil)
	s.env.OnActivity(keysActs.VerifyStagedKeys, mock.Anything, p).Return(activities.StagedKeys{}, refused).Once()
	s.env.OnActivity(keysActs.VerifyStagedKeys, mock.Anything, p).Return(staged, nil).Once()
	s.change(p, true)
	s.env.OnActivity(kube.RetireSecret, mock.Anything, retireOf(keysOld)).Return(activities.RetireResult{Deleted: true}, nil).Once()
	s.env.OnActivity(keysActs.RevokeOldKeys, mock.Anything, p).Return(activities.RevokeResult{Revoked: []string{"openai:key_old"}}, nil).Once()

	var first, second error = errNotCalled, errNotCalled
	var afterRefusal workflows.Status
	s.stageKeys(time.Hour, func(err error) { first = err })
	s.env.RegisterDelayedCallback(func() { afterRefusal = s.status() }, 2*time.Hour)
	s.stageKeys(3*time.Hour, func(err error) { second = err })
	s.env.ExecuteWorkflow(workflows.TypeRotateAPIKeys, workflows.RotateInput{Target: keysTarget, Emergency: true})

	s.Require().Error(first, "the refusal must reach the sender of keys-staged")
	s.Contains(first.Error(), "anthropic refused")
	s.NoError(second)
	s.Equal(workflows.StepAwaitKeys, afterRefusal.Step, "a refused key must leave the rotation waiting, with nothing staged")
	s.Nil(afterRefusal.New)
	s.Contains(afterRefusal.KeysError, "anthropic")
	var st workflows.Status
	s.Require().NoError(s.env.GetWorkflowResult(&st))
	s.Equal(workflows.StepDone, st.Step)
	s.Empty(st.KeysError)
	s.Less(st.FinishedAt.Sub(st.StartedAt), 4*time.Hour, "emergency must not wait for grace")
}

func (s *apiKeysSuite) TestNoKeysStagedInTimeChangesNothing() {
	p := keysPlanWith(map[string]bool{"openai": true})
	s.preflight(p)
	s.env.OnActivity(keysActs.DiscardStagedKeys, mock.Anything, p).Return(nil).Once()
	s.env.ExecuteWorkflow(workflows.TypeRotateAPIKeys, workflows.RotateInput{Target: keysTarget})

	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), "no keys were staged within 72h0m0s")
	s.Contains(err.Error(), "nothing was changed")
}

func (s *apiKeysSuite) TestWithoutAdminKeyRetireWaitsForApproval() {
	p := keysPlanWith(map[string]bool{"openai": true})
	s.preflight(p)
	s.env.OnActivity(keysActs.VerifyStagedKeys, mock.Anything, p).Return(staged, nil).Once()
	s.change(p, false)
	s.env.OnActivity(kube.RetireSecret, mock.Anything, retireOf(keysOld)).Return(activities.RetireResult{Deleted: true}, nil).Once()
	s.env.OnActivity(keysActs.RevokeOldKeys, mock.Anything, p).Return(activities.RevokeResult{Revoked: []string{"openai:key_old"}}, nil).Once()

	s.stageKeys(time.Hour, func(error) {})
	var afterGrace workflows.Status
	s.env.RegisterDelayedCallback(func() { afterGrace = s.status() }, 9*24*time.Hour)
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalApprove, workflows.Decision{By: "bob", Reason: "old anthropic key revoked in console"})
	}, 10*24*time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateAPIKeys, workflows.RotateInput{Target: keysTarget})

	s.Equal(workflows.StepGrace, afterGrace.Step, "grace must not end by the timer while an old key needs revoking by hand")
	s.Contains(afterGrace.Reminder, "revoke the old anthropic key")
	s.Contains(afterGrace.Reminder, "starter approve "+keysTarget)
	var st workflows.Status
	s.Require().NoError(s.env.GetWorkflowResult(&st))
	s.Equal(workflows.StepDone, st.Step)
	s.Equal("bob", st.Approved.By)
}

func (s *apiKeysSuite) TestFailedRolloutRestoresVaultLabels() {
	p := keysPlanWith(map[string]bool{"openai": true, "anthropic": true})
	s.preflight(p)
	s.env.OnActivity(keysActs.VerifyStagedKeys, mock.Anything, p).Return(staged, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(keysNew, nil).Once()
	s.env.OnActivity(kube.Promote, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool { return in.To == keysNew })).Return(rollouts, nil).Once()
	s.env.OnActivity(vaultActs.PromoteVersion, mock.Anything, mock.Anything).Return(prior, nil).Once()
	s.env.OnActivity(kube.AwaitRollout, mock.Anything, awaitOf(rollouts.Rollouts)).
		Return(activities.AwaitResult{}, temporal.NewNonRetryableApplicationError("deployment/orchestrator: ProgressDeadlineExceeded", activities.ErrRolloutFailed, nil)).Once()
	back := activities.PromoteResult{Rollouts: []activities.Rollout{{Workload: app, Generation: 3, Patched: true}}}
	s.env.OnActivity(kube.Promote, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool { return in.To == keysOld })).Return(back, nil).Once()
	s.env.OnActivity(kube.AwaitRollout, mock.Anything, awaitOf(back.Rollouts)).Return(activities.AwaitResult{}, nil).Once()
	s.env.OnActivity(vaultActs.RollbackVersion, mock.Anything, activities.VaultInput{Vault: *p.Vault, Version: 4, Restore: prior}).Return(nil).Once()
	s.env.OnActivity(keysActs.DiscardStagedKeys, mock.Anything, p).Return(nil).Once()
	s.env.OnActivity(kube.RetireSecret, mock.Anything, mock.MatchedBy(func(in activities.RetireInput) bool {
		return in.Secret.Name == keysNew.Name && in.StagedByRun != ""
	})).Return(activities.RetireResult{Deleted: true}, nil).Once()

	s.stageKeys(time.Minute, func(error) {})
	s.env.ExecuteWorkflow(workflows.TypeRotateAPIKeys, workflows.RotateInput{Target: keysTarget})
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), "rolled back")
}

func (s *apiKeysSuite) TestKeysStagedOutsideTheWaitIsRefused() {
	p := keysPlanWith(map[string]bool{"openai": true, "anthropic": true})
	s.preflight(p)
	s.env.OnActivity(keysActs.VerifyStagedKeys, mock.Anything, p).Return(staged, nil).Once()
	s.change(p, false)
	s.env.OnActivity(kube.RetireSecret, mock.Anything, mock.Anything).Return(activities.RetireResult{Deleted: true}, nil).Once()
	s.env.OnActivity(keysActs.RevokeOldKeys, mock.Anything, p).Return(activities.RevokeResult{}, nil).Once()

	s.stageKeys(time.Hour, func(error) {})
	var late error = errNotCalled
	s.stageKeys(2*time.Hour, func(err error) { late = err })
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalKeysStaged, workflows.Decision{By: "mallory"})
	}, 3*time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateAPIKeys, workflows.RotateInput{Target: keysTarget})

	s.Require().Error(late)
	s.Contains(late.Error(), "not awaiting-keys")
	var st workflows.Status
	s.Require().NoError(s.env.GetWorkflowResult(&st))
	s.Equal(workflows.StepDone, st.Step, "a stray keys-staged signal must not disturb the rotation")
}
