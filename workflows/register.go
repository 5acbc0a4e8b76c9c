package workflows

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"rotator/catalog"
)

// Workflow type names, one per kind, as the UI and the CLI start them.
const (
	TypeRotateJWTSecret        = "RotateJWTSecret"
	TypeRotateDatabasePassword = "RotateDatabasePassword"
	TypeRotateAPIKeys          = "RotateAPIKeys"
	TypeRenewTLSCertificate    = "RenewTLSCertificate"
	TypeRotateRedisPassword    = "RotateRedisPassword"
	TypeCertificateScan        = "CertificateScan"
	TypePlanRotation           = "PlanRotation"
)

// kindWorkflows lists, for each kind, the workflow that rotates its targets:
// the one place TypeFor and Register read, and which a test checks covers
// every kind the catalog accepts.
var kindWorkflows = []struct {
	kind     catalog.Kind
	typeName string
	workflow any
	// steps are the kind's hooks, for PlanRotation.
	steps func() kindSteps
}{
	{catalog.KindJWT, TypeRotateJWTSecret, RotateJWTSecret, jwtSteps},
	{catalog.KindPostgres, TypeRotateDatabasePassword, RotateDatabasePassword, postgresSteps},
	{catalog.KindAPIKeys, TypeRotateAPIKeys, RotateAPIKeys, apiKeysSteps},
	{catalog.KindTLS, TypeRenewTLSCertificate, RenewTLSCertificate, tlsSteps},
	{catalog.KindRedis, TypeRotateRedisPassword, RotateRedisPassword, redisSteps},
}

// stepsFor returns the hooks of a kind.
func stepsFor(kind catalog.Kind) (kindSteps, bool) {
	for _, r := range kindWorkflows {
		if r.kind == kind {
			return r.steps(), true
		}
	}
	return kindSteps{}, false
}

// TypeFor returns the workflow type that rotates targets of the kind.
func TypeFor(kind catalog.Kind) (string, bool) {
	for _, r := range kindWorkflows {
		if r.kind == kind {
			return r.typeName, true
		}
	}
	return "", false
}

// Register registers every rotation workflow under its type name, and
// the certificate scan and the Schedules' entry point.
func Register(r worker.WorkflowRegistry) {
	for _, rot := range kindWorkflows {
		r.RegisterWorkflowWithOptions(rot.workflow, workflow.RegisterOptions{Name: rot.typeName})
	}
	r.RegisterWorkflowWithOptions(CertificateScan, workflow.RegisterOptions{Name: TypeCertificateScan})
	r.RegisterWorkflowWithOptions(ScheduledRotation, workflow.RegisterOptions{Name: TypeScheduledRotation})
	r.RegisterWorkflowWithOptions(PlanRotation, workflow.RegisterOptions{Name: TypePlanRotation})
}
