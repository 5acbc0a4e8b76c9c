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
)

// kindWorkflows lists, for each kind, the workflow that rotates its targets:
// the one place TypeFor and Register read, and which a test checks covers
// every kind the catalog accepts.
var kindWorkflows = []struct {
	kind     catalog.Kind
	typeName string
	workflow any
}{
	{catalog.KindJWT, TypeRotateJWTSecret, RotateJWTSecret},
	{catalog.KindPostgres, TypeRotateDatabasePassword, RotateDatabasePassword},
	{catalog.KindAPIKeys, TypeRotateAPIKeys, RotateAPIKeys},
	{catalog.KindTLS, TypeRenewTLSCertificate, RenewTLSCertificate},
	{catalog.KindRedis, TypeRotateRedisPassword, RotateRedisPassword},
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
}
