package workflows_test

import (
	"log/slog"
	"os"
	"reflect"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"rotator/activities"
	"rotator/catalog"
	"rotator/workflows"
)

// envSuite is what every workflow suite shares: a fresh test environment
// per test with rotator's workflows registered, mocks checked at the end.
type envSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
}

// runQuiet runs a suite with the SDK's logs cut to errors above Error:
// the tests assert on results, and the replayed steps are noise.
func runQuiet(t *testing.T, s interface {
	suite.TestingSuite
	SetLogger(log.Logger)
}) {
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 1}))))
	suite.Run(t, s)
}

// newEnv starts a test's environment with the activity structs given; a
// non-empty target makes rotate/<target> the workflow ID.
func (s *envSuite) newEnv(target string, acts ...any) {
	s.env = s.NewTestWorkflowEnvironment()
	for _, a := range acts {
		s.env.RegisterActivity(a)
	}
	workflows.Register(s.env)
	if target != "" {
		s.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.WorkflowID(target)})
	}
}

func (s *envSuite) TearDownTest() { s.env.AssertExpectations(s.T()) }

// status runs the status query.
func (s *envSuite) status() workflows.Status {
	v, err := s.env.QueryWorkflow(workflows.QueryStatus)
	s.Require().NoError(err)
	var st workflows.Status
	s.Require().NoError(v.Get(&st))
	return st
}

// currentDetails is what the Temporal UI shows as the rotation's current
// details, read with the metadata query the UI sends.
func (s *envSuite) currentDetails() string {
	v, err := s.env.QueryWorkflow("__temporal_workflow_metadata")
	s.Require().NoError(err)
	var md sdkpb.WorkflowMetadata
	s.Require().NoError(v.Get(&md))
	return md.GetCurrentDetails()
}

// preflightOf matches the preflight of the target, whatever the
// rotation's key.
func preflightOf(target string, kind catalog.Kind) any {
	return mock.MatchedBy(func(in activities.PreflightInput) bool { return in.Target == target && in.Kind == kind })
}

// stageOf matches the stage of the plan.
func stageOf(p activities.Plan, emergency bool) any {
	return mock.MatchedBy(func(in activities.StageInput) bool {
		return reflect.DeepEqual(in.Plan, p) && in.Emergency == emergency && in.Rotation != ""
	})
}

// retireOf matches retire's deletion of a version the rotation replaced
// (not a compensation's of the version it staged).
func retireOf(ref activities.SecretRef) any {
	return mock.MatchedBy(func(in activities.RetireInput) bool { return in.Secret == ref && in.StagedByRun == "" })
}

// awaitOf matches the wait for the rollouts.
func awaitOf(rollouts []activities.Rollout) any {
	return mock.MatchedBy(func(in activities.AwaitInput) bool { return reflect.DeepEqual(in.Rollouts, rollouts) })
}
