package activities

import (
	"context"
	"errors"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"go.temporal.io/sdk/temporal"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func ingress(name string, secrets ...string) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
	for _, s := range secrets {
		ing.Spec.TLS = append(ing.Spec.TLS, networkingv1.IngressTLS{SecretName: s})
	}
	return ing
}

func TestIngressServingAndRepoint(t *testing.T) {
	ctx := context.Background()
	g := ingresses{fake.NewClientset(ingress("web", "tls-1", "other"), ingress("api", "tls-1"), ingress("docs", "other"))}

	scan, err := scanNamespace(ctx, g.client, "ns")
	if err != nil {
		t.Fatal(err)
	}
	if got := refsOf(scan.users("tls-1")); len(got) != 2 || got[0].Name != "api" || got[1].Name != "web" || len(scan.users("tls-2")) != 0 {
		t.Fatalf("users of tls-1: %v", got)
	}
	if n, err := g.repoint(ctx, "ns", "web", "tls-1", "tls-2", "rotator test"); err != nil || n != 1 {
		t.Fatalf("repoint: %d, %v", n, err)
	}
	web, _ := g.client.NetworkingV1().Ingresses("ns").Get(ctx, "web", metav1.GetOptions{})
	if web.Spec.TLS[0].SecretName != "tls-2" || web.Spec.TLS[1].SecretName != "other" || web.Annotations[AnnotationChangeCause] != "rotator test" {
		t.Errorf("after repoint: %+v %v", web.Spec.TLS, web.Annotations)
	}
	// A retry finds nothing to do.
	if n, err := g.repoint(ctx, "ns", "web", "tls-1", "tls-2", "rotator test"); err != nil || n != 0 {
		t.Errorf("second repoint: %d, %v", n, err)
	}
	// An Ingress edited to serve neither is a permanent conflict.
	var app *temporal.ApplicationError
	if _, err := g.repoint(ctx, "ns", "docs", "tls-1", "tls-2", "x"); !errors.As(err, &app) || app.Type() != ErrConflict || !app.NonRetryable() {
		t.Errorf("repoint of an unrelated Ingress: %v", err)
	}
	// A deleted one is for the caller to skip.
	if _, err := g.repoint(ctx, "ns", "gone", "tls-1", "tls-2", "x"); !apierrors.IsNotFound(err) {
		t.Errorf("repoint of a deleted Ingress: %v", err)
	}
}
