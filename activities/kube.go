package activities

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	vaultapi "github.com/hashicorp/vault/api"

	"rotator/catalog"
	"rotator/postgres"
)

// Kube holds the Kubernetes client and the catalog; its methods are the
// steps of a rotation that touch the cluster.
type Kube struct {
	Client  kubernetes.Interface
	Catalog *catalog.Catalog
	// Vault records versions for targets with a Vault path and holds keys
	// staged there; nil when no target uses Vault.
	Vault *vaultapi.Client
	// HeartbeatEvery is how often a rollout wait reports progress; zero
	// means 10 s.
	HeartbeatEvery time.Duration
	// Fingerprints makes the fingerprints of the Secret versions.
	Fingerprints Fingerprinter
	// scans shares namespace scans between concurrent activities; nil
	// scans each time.
	scans *scanner
}

func (k *Kube) workloads() workloads { return workloads{client: k.Client} }

// badInput is a permanent error: retrying cannot fix the input.
func badInput(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrBadInput, nil)
}

func (k *Kube) refOf(s *corev1.Secret, key string) SecretRef {
	v, _ := strconv.Atoi(s.Labels[LabelVersion])
	if v == 0 {
		v = 1
	}
	fp := k.fingerprintOf(s, key)
	vv, _ := strconv.Atoi(s.Annotations[AnnotationVaultVersion])
	var managers []string
	for _, m := range managersOf(s) {
		managers = append(managers, m.Name)
	}
	return SecretRef{Namespace: s.Namespace, Name: s.Name, Version: v, Fingerprint: fp,
		Username: string(s.Data[postgres.UsernameKey]), VaultVersion: vv, UID: string(s.UID), TLS: s.Type == corev1.SecretTypeTLS,
		ManagedBy: strings.Join(managers, ", ")}
}

// classify turns Kubernetes errors that retrying cannot fix (RBAC
// refusals, invalid objects, or any the caller names) into non-retryable
// errors; everything else (conflicts, timeouts, 5xx) is retried.
func classify(err error, retryable ...func(error) bool) error {
	for _, f := range retryable {
		if f(err) {
			return err
		}
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return err
	}
	switch {
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return temporal.NewNonRetryableApplicationError(err.Error()+": grant the worker's ServiceAccount this permission (see deploy/)", ErrBadInput, err)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsMethodNotSupported(err):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, err)
	}
	return err
}

// isTestFailed tells a failed JSON patch test op (the workload changed
// under us; retry) from a patch whose result fails validation. The
// apiserver answers both with 422 Invalid; a patch that cannot be applied
// (a failed test, a path a concurrent edit removed) carries no causes and
// a generic message, while validation names the fields it rejects.
func isTestFailed(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) {
		return false
	}
	d := status.Status().Details
	return d == nil || len(d.Causes) == 0
}

func plural(n int) string {
	if n == 1 {
		return "s"
	}
	return ""
}

// secretType is the type the kind's Secrets have (a certificate's is
// kubernetes.io/tls, which is what Ingress controllers require).
func secretType(kind catalog.Kind) corev1.SecretType {
	if m, ok := kindMaterials(kind); ok && m.secretType != "" {
		return m.secretType
	}
	return corev1.SecretTypeOpaque
}
