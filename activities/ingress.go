package activities

import (
	"context"
	"fmt"
	"slices"

	"go.temporal.io/sdk/temporal"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// ingresses finds and repoints Ingresses whose tls[].secretName names a
// Secret: a certificate's consumers are not only pods.
type ingresses struct {
	client kubernetes.Interface
}

func servesSecret(ing *networkingv1.Ingress, secret string) bool {
	return slices.ContainsFunc(ing.Spec.TLS, func(t networkingv1.IngressTLS) bool { return t.SecretName == secret })
}

// repoint moves every tls entry of the Ingress from one Secret to another
// in one guarded patch, and returns how many entries it changed (0 when
// the Ingress is on to already). Its errors are ready for the workflow:
// an edited Ingress is permanent, a failed test op is retried; a deleted
// one is a NotFound error for the caller to skip.
func (g ingresses) repoint(ctx context.Context, ns, name, from, to, reason string) (int, error) {
	ing, err := g.client.NetworkingV1().Ingresses(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Deleted during the rotation: the caller skips it.
		return 0, err
	}
	if err != nil {
		return 0, classify(fmt.Errorf("get ingress/%s: %w", name, err))
	}
	var paths []string
	for i, t := range ing.Spec.TLS {
		if t.SecretName == from {
			paths = append(paths, fmt.Sprintf("/spec/tls/%d/secretName", i))
		}
	}
	if len(paths) == 0 {
		if !servesSecret(ing, to) {
			return 0, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"ingress/%s serves neither %s nor %s any more: someone edited it during the rotation", name, from, to), ErrConflict, nil)
		}
		return 0, nil
	}
	patch, err := guardedReplace(paths, ing.Annotations, from, to, reason)
	if err != nil {
		return 0, err
	}
	if _, err := g.client.NetworkingV1().Ingresses(ns).Patch(ctx, name, types.JSONPatchType, patch,
		metav1.PatchOptions{FieldManager: ManagedByValue}); err != nil {
		return 0, classify(fmt.Errorf("repoint ingress/%s from %s to %s: %w", name, from, to, err), isTestFailed)
	}
	return len(paths), nil
}
