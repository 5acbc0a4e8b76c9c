package workflows

import (
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"rotator/activities"
	"rotator/catalog"
)

var certs *activities.TLS

// RenewTLSCertificate renews a certificate the way the runbook's "30 days
// before expiry" asks, without its copy-paste: Vault's PKI engine issues
// the certificate inside the stage step, it becomes a new immutable
// kubernetes.io/tls Secret, every Deployment, StatefulSet, DaemonSet and
// Ingress that uses the old one moves to it, and verify checks the chain,
// the key, the names and (optionally) what the server presents.
func RenewTLSCertificate(ctx workflow.Context, in RotateInput) (Status, error) {
	return run(ctx, in, tlsSteps())
}

// tlsSteps are the kind's hooks into the skeleton.
func tlsSteps() kindSteps {
	return kindSteps{
		kind: catalog.KindTLS,
		verify: func(ctx workflow.Context, r *rotation) error {
			var info activities.CertInfo
			if err := workflow.ExecuteActivity(login(ctx), certs.VerifyCertificate,
				activities.CertInput{Plan: r.plan, New: *r.st.New}).Get(ctx, &info); err != nil {
				return err
			}
			r.st.Certificate = &info
			return nil
		},
	}
}

// CertificateScanID is the workflow ID of the daily scan (a schedule adds
// a timestamp).
const CertificateScanID = "certificate-scan"

// CertificateScanInput starts a scan; it has no fields yet, so the
// schedule and the UI start it with {}.
type CertificateScanInput struct{}

// Renewal is a renewal the scan started or found running.
type Renewal struct {
	Target string `json:"target"`
	RunID  string `json:"runID,omitempty"`
	// Skipped says why no renewal was started.
	Skipped string `json:"skipped,omitempty"`
	// NeedsPerson says the last rotation's rollback did not finish.
	NeedsPerson bool `json:"needsPerson,omitempty"`
}

// ScanStatus is what a scan found and did; it is also its status query.
type ScanStatus struct {
	At           time.Time              `json:"at"`
	Certificates []activities.CertState `json:"certificates"`
	Renewals     []Renewal              `json:"renewals,omitempty"`
	// Failures are certificates that need a person: expired, unreadable
	// or unparsable, or renewals that could not start.
	Failures []string `json:"failures,omitempty"`
}

// CertificateScan reads every tls target's current certificate and starts
// a renewal (RenewTLSCertificate under rotate/<target>, which outlives the
// scan) for each within its renewBefore window. Expired and unparsable
// certificates are renewed too, and fail the scan so that they show as a
// failed run in the UI and in metrics instead of passing silently.
func CertificateScan(ctx workflow.Context, _ CertificateScanInput) (ScanStatus, error) {
	st := ScanStatus{At: workflow.Now(ctx)}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (ScanStatus, error) { return st, nil }); err != nil {
		return st, fmt.Errorf("register status query: %w", err)
	}
	var res activities.ScanResult
	if err := workflow.ExecuteActivity(short(ctx), certs.ScanCertificates, activities.ScanInput{Now: st.At}).Get(ctx, &res); err != nil {
		return st, err
	}
	st.Certificates = res.Certificates
	for _, c := range res.Certificates {
		switch {
		case c.Error != "":
			st.Failures = append(st.Failures, fmt.Sprintf("%s: %s", c.Target, c.Error))
		case c.Expired:
			st.Failures = append(st.Failures, fmt.Sprintf("%s: the certificate in %s expired at %s", c.Target, c.Secret, c.NotAfter.Format(time.RFC3339)))
		}
		// An unparsable certificate in an existing Secret is replaced
		// too; a missing Secret is not something a renewal can fix.
		if !c.Due && !c.Expired && (c.Error == "" || c.Secret == "") {
			continue
		}
		r := startRenewal(ctx, c.Target)
		switch {
		case r.NeedsPerson:
			st.Failures = append(st.Failures, fmt.Sprintf("%s: %s", c.Target, r.Skipped))
		case r.Skipped == "" && r.RunID == "":
			st.Failures = append(st.Failures, fmt.Sprintf("%s: the renewal did not start", c.Target))
		}
		st.Renewals = append(st.Renewals, r)
	}
	workflow.GetLogger(ctx).Info("certificate scan finished", "checked", len(st.Certificates), "renewals", len(st.Renewals), "failures", len(st.Failures))
	if len(st.Failures) > 0 {
		return st, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%d certificate%s need attention: %s",
			len(st.Failures), plural(len(st.Failures)), strings.Join(st.Failures, "; ")), activities.ErrCertificatesNeedAttention, nil)
	}
	return st, nil
}

// startRenewal starts the target's renewal as an abandoned child, so it
// runs its grace period long after the scan ended; one already running is
// left alone.
func startRenewal(ctx workflow.Context, target string) Renewal {
	if workflow.GetVersion(ctx, "check-last-rotation", workflow.DefaultVersion, 1) == 1 {
		skip, err := needsPerson(ctx, target)
		if err != nil {
			workflow.GetLogger(ctx).Error("could not read the last rotation", "target", target, "error", err)
			return Renewal{Target: target}
		}
		if skip != "" {
			return Renewal{Target: target, Skipped: skip, NeedsPerson: true}
		}
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            WorkflowID(target),
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:         Summary(target, catalog.KindTLS, "certificate-scan"),
	})
	child := workflow.ExecuteChildWorkflow(cctx, TypeRenewTLSCertificate, RotateInput{Target: target, RequestedBy: "certificate-scan"})
	var exec workflow.Execution
	if err := child.GetChildWorkflowExecution().Get(ctx, &exec); err != nil {
		if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			return Renewal{Target: target, Skipped: "a rotation of " + target + " is already running"}
		}
		workflow.GetLogger(ctx).Error("renewal did not start", "target", target, "error", err)
		return Renewal{Target: target}
	}
	return Renewal{Target: target, RunID: exec.RunID}
}
