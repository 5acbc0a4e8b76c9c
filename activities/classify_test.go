package activities

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"go.temporal.io/sdk/temporal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestClassifyKubeErrors: what the apiserver answers decides whether a
// step is retried. The failed-test answer is the body kube-apiserver
// v1.34 sends for a JSON patch whose test op fails (captured from the
// devstack): 422 Invalid, a generic message, no causes.
func TestClassifyKubeErrors(t *testing.T) {
	deployments := schema.GroupResource{Group: "apps", Resource: "deployments"}
	testFailed := &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 422,
		Reason: metav1.StatusReasonInvalid, Message: "the server rejected our request due to an error in our request",
		Details: &metav1.StatusDetails{}}}
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "api", field.ErrorList{
		field.Invalid(field.NewPath("spec", "template", "spec", "volumes").Index(0).Child("secret", "secretName"), "Bad_Name", "must be a DNS subdomain")})
	tests := []struct {
		name      string
		err       error
		retryable bool
	}{
		{"failed test op of a patch", testFailed, true},
		{"patch result fails validation", invalid, false},
		{"conflict", apierrors.NewConflict(deployments, "api", errors.New("the object has been modified")), true},
		{"503", apierrors.NewServiceUnavailable("etcd leader changed"), true},
		{"500", apierrors.NewInternalError(errors.New("boom")), true},
		{"timeout", apierrors.NewTimeoutError("request timed out", 1), true},
		{"403 from RBAC", apierrors.NewForbidden(deployments, "api", errors.New(`User "x" cannot patch resource "deployments"`)), false},
		{"404", apierrors.NewNotFound(deployments, "api"), true},
		{"not an API error", errors.New("dial tcp: connection refused"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify(fmt.Errorf("repoint deployment/api from a to b: %w", tt.err), isTestFailed)
			var app *temporal.ApplicationError
			permanent := errors.As(err, &app) && app.NonRetryable()
			if permanent == tt.retryable {
				t.Fatalf("classify(%v): permanent=%v, want retryable=%v", tt.err, permanent, tt.retryable)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("classify lost the cause: %v", err)
			}
		})
	}
	if isTestFailed(invalid) || !isTestFailed(testFailed) {
		t.Error("isTestFailed must tell a failed test op from a validation error")
	}
}

// TestLoginError: a server that refuses the new password fails the check
// for good after RefusedLoginBudget; an unreachable one never does, since
// an outage says nothing about the password.
func TestLoginError(t *testing.T) {
	refused := fmt.Errorf("log in with app-db-2: %w", &pgconn.PgError{Severity: "FATAL", Code: "28P01", Message: "password authentication failed"})
	unreachable := fmt.Errorf("log in with app-db-2: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	tests := []struct {
		name      string
		err       error
		since     time.Duration
		permanent bool
	}{
		{"refused, first attempts", refused, 30 * time.Second, false},
		{"refused for the budget", refused, RefusedLoginBudget, true},
		{"unreachable for long", unreachable, 9 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := loginError(tt.err, tt.since)
			var app *temporal.ApplicationError
			if permanent := errors.As(err, &app) && app.NonRetryable(); permanent != tt.permanent {
				t.Fatalf("loginError(%v, %s): permanent=%v, want %v", tt.err, tt.since, permanent, tt.permanent)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("loginError lost the cause: %v", err)
			}
		})
	}
}
