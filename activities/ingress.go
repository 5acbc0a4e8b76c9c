package activities

import (
	"context"
	"fmt"
	"slices"

	networkingv1 "k8s.io/api/networking/v1"
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

// referencing returns the names of the Ingresses in ns that serve the
// Secret, sorted.
func (g ingresses) referencing(ctx context.Context, ns, secret string) ([]string, error) {
	list, err := g.client.NetworkingV1().Ingresses(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list Ingresses in %s: %w", ns, err)
	}
	var out []string
	for i := range list.Items {
		if servesSecret(&list.Items[i], secret) {
			out = append(out, list.Items[i].Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// repoint moves every tls entry of the Ingress from one Secret to another
// in one guarded patch, and returns how many entries it changed (0 when
// the Ingress is on to already).
func (g ingresses) repoint(ctx context.Context, ns, name, from, to, reason string) (int, error) {
	ing, err := g.client.NetworkingV1().Ingresses(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	var paths []string
	for i, t := range ing.Spec.TLS {
		if t.SecretName == from {
			paths = append(paths, fmt.Sprintf("/spec/tls/%d/secretName", i))
		}
	}
	if len(paths) == 0 {
		if !servesSecret(ing, to) {
			return 0, fmt.Errorf("ingress/%s serves neither %s nor %s any more: someone edited it during the rotation", name, from, to)
		}
		return 0, nil
	}
	patch, err := guardedReplace(paths, ing.Annotations, from, to, reason)
	if err != nil {
		return 0, err
	}
	if _, err := g.client.NetworkingV1().Ingresses(ns).Patch(ctx, name, types.JSONPatchType, patch,
		metav1.PatchOptions{FieldManager: ManagedByValue}); err != nil {
		return 0, err
	}
	return len(paths), nil
}
