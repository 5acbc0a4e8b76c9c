package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"rotator/activities"
	"rotator/workflows"
)

var certActs *activities.TLS

// TestCertificateScanRenewsDueAndReportsFailures checks which certificates
// the scan renews and that expired or unparsable ones fail the scan
// rather than pass silently.
func TestCertificateScanRenewsDueAndReportsFailures(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(certActs)
	env.RegisterActivity(rotationActs)
	workflows.Register(env)
	env.OnActivity(rotationActs.LastRotation, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.LastRotationInput) (activities.LastRotation, error) {
			if in.WorkflowID == workflows.WorkflowID("stuck") {
				return activities.LastRotation{Found: true, RunID: "r9", Status: "running", Step: string(workflows.StepCompensationFailed)}, nil
			}
			return activities.LastRotation{}, nil
		})
	start := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	env.OnActivity(certActs.ScanCertificates, mock.Anything, mock.MatchedBy(func(in activities.ScanInput) bool {
		return in.Now.Equal(start) // the scan's clock is the workflow's
	})).Return(activities.ScanResult{Certificates: []activities.CertState{
		{Target: "fresh", Secret: "fresh-tls", NotAfter: start.Add(60 * 24 * time.Hour)},
		{Target: "due", Secret: "due-tls", NotAfter: start.Add(10 * 24 * time.Hour), Due: true},
		{Target: "expired", Secret: "expired-tls", NotAfter: start.Add(-time.Hour), Due: true, Expired: true},
		{Target: "garbage", Secret: "garbage-tls", Error: "Secret ns/garbage-tls: tls.crt holds no PEM certificate"},
		{Target: "missing", Error: "target missing: secret: Secret ns/missing-tls does not exist"},
		{Target: "stuck", Secret: "stuck-tls", NotAfter: start.Add(24 * time.Hour), Due: true},
	}}, nil).Once()
	// The renewals are abandoned children: the scan only waits until each
	// has started, so what it started is read from its status.
	env.OnWorkflow(workflows.TypeRenewTLSCertificate, mock.Anything, mock.Anything).Return(workflows.Status{Step: workflows.StepDone}, nil).Maybe()
	env.ExecuteWorkflow(workflows.TypeCertificateScan, workflows.CertificateScanInput{})

	require.True(t, env.IsWorkflowCompleted())
	err := env.GetWorkflowError()
	require.Error(t, err, "expired and unparsable certificates must fail the scan")
	for _, want := range []string{"4 certificates need attention", "expired: the certificate in expired-tls expired", "garbage: Secret ns/garbage-tls", "missing: target missing",
		"stuck: the last rotation of stuck (workflow rotate/stuck, run r9) could not finish its rollback"} {
		require.Contains(t, err.Error(), want)
	}
	v, err := env.QueryWorkflow(workflows.QueryStatus)
	require.NoError(t, err)
	var st workflows.ScanStatus
	require.NoError(t, v.Get(&st))
	renewed := map[string]bool{}
	for _, r := range st.Renewals {
		if r.NeedsPerson {
			continue
		}
		require.NotEmpty(t, r.RunID, "renewal of %s did not start", r.Target)
		renewed[r.Target] = true
	}
	require.Equal(t, map[string]bool{"due": true, "expired": true, "garbage": true}, renewed,
		"due, expired and unparsable certificates are renewed; fresh ones and missing Secrets are not")
}

func TestCertificateScanAllFreshChangesNothing(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(certActs)
	workflows.Register(env)
	env.OnActivity(certActs.ScanCertificates, mock.Anything, mock.Anything).Return(activities.ScanResult{Certificates: []activities.CertState{
		{Target: "fresh", Secret: "fresh-tls", NotAfter: time.Now().Add(60 * 24 * time.Hour)},
	}}, nil).Once()
	env.ExecuteWorkflow(workflows.TypeCertificateScan, workflows.CertificateScanInput{})
	require.NoError(t, env.GetWorkflowError())
	var st workflows.ScanStatus
	require.NoError(t, env.GetWorkflowResult(&st))
	require.Len(t, st.Certificates, 1)
	require.Empty(t, st.Renewals)
}
