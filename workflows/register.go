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
	TypeCertificateScan        = "CertificateScan"
)

// TypeFor returns the workflow type that rotates targets of the kind.
func TypeFor(kind catalog.Kind) (string, bool) {
	switch kind {
	case catalog.KindJWT:
		return TypeRotateJWTSecret, true
	case catalog.KindPostgres:
		return TypeRotateDatabasePassword, true
	case catalog.KindAPIKeys:
		return TypeRotateAPIKeys, true
	case catalog.KindTLS:
		return TypeRenewTLSCertificate, true
	}
	return "", false
}

// Register registers every rotation workflow under its type name.
func Register(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(RotateJWTSecret, workflow.RegisterOptions{Name: TypeRotateJWTSecret})
	r.RegisterWorkflowWithOptions(RotateDatabasePassword, workflow.RegisterOptions{Name: TypeRotateDatabasePassword})
	r.RegisterWorkflowWithOptions(RotateAPIKeys, workflow.RegisterOptions{Name: TypeRotateAPIKeys})
	r.RegisterWorkflowWithOptions(RenewTLSCertificate, workflow.RegisterOptions{Name: TypeRenewTLSCertificate})
	r.RegisterWorkflowWithOptions(CertificateScan, workflow.RegisterOptions{Name: TypeCertificateScan})
	r.RegisterWorkflowWithOptions(ScheduledRotation, workflow.RegisterOptions{Name: TypeScheduledRotation})
}
