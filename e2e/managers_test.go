package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"rotator/activities"
	"rotator/clients"
	"rotator/workflows"
)

// helmLabels are what Helm 3 puts on every object of a release.
func helmMeta(release string) ([]byte, error) {
	return json.Marshal(map[string]any{"metadata": map[string]any{
		"labels":      map[string]string{"app.kubernetes.io/managed-by": "Helm"},
		"annotations": map[string]string{"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": "apps"},
	}})
}

// TestOtherManagersAreRefused: a Secret that Helm or an operator (the
// External Secrets Operator) manages, or a consumer that Argo CD syncs,
// would get the old name or value back at the manager's next sync.
// Preflight refuses each, naming the manager and what would go wrong, and
// changes nothing.
func TestOtherManagersAreRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, ctx context.Context, f *fixture)
		want    []string
	}{
		{"helm secret", func(t *testing.T, ctx context.Context, f *fixture) {
			patch, err := helmMeta("orchestrator")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := devstack.kube.CoreV1().Secrets(f.ns).Patch(ctx, f.secret, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}, []string{"Secret app-jwt is managed by Helm release orchestrator", "the next helm upgrade or rollback recreates it",
			"add helm to the target's acknowledgedManagers"}},
		{"argo cd consumer", func(t *testing.T, ctx context.Context, f *fixture) {
			patch := []byte(`{"metadata":{"annotations":{"argocd.argoproj.io/tracking-id":"orchestrator:apps/Deployment:` + f.ns + `/api"}}}`)
			if _, err := devstack.kube.AppsV1().Deployments(f.ns).Patch(ctx, "api", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}, []string{"deployment/api is managed by Argo CD application orchestrator",
			"its next sync (at once with self-heal) puts Secret app-jwt back into its template", "add argocd to the target's acknowledgedManagers"}},
		{"external secret", func(t *testing.T, ctx context.Context, f *fixture) { ownByExternalSecret(t, ctx, f) },
			[]string{"Secret app-jwt is managed by ExternalSecret app-jwt (external-secrets.io/v1beta1)",
				"its controller writes the Secret from its own source", "rotate the value at that source instead"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			f := newFixture(t, ctx, "", deployment("api", 1, envRef("app-jwt")))
			tc.prepare(t, ctx, f)
			before := f.state(ctx, "api")
			wid := startRotation(t, ctx, f, workflows.TypeRotateJWTSecret, false)
			app := failedWith(t, ctx, wid)
			assertEach(t, "the refusal", app.Message(), append([]string{"preflight: target " + f.target}, tc.want...)...)
			after := f.state(ctx, "api")
			if len(after.secrets) != len(before.secrets) || after.specs["api"] != before.specs["api"] {
				t.Error("a refused preflight changed the namespace")
			}
			if got := f.stage(ctx, f.secret); got != "" {
				t.Errorf("a refused preflight labelled the Secret %s=%s", activities.LabelStage, got)
			}
		})
	}
}

// ownByExternalSecret makes the fixture's Secret what the External Secrets
// Operator leaves: owned by an ExternalSecret (its CRD is installed once;
// no operator runs, so nothing else changes).
func ownByExternalSecret(t *testing.T, ctx context.Context, f *fixture) {
	t.Helper()
	cfg, err := clients.KubeConfig(50, 100)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "externalsecrets.external-secrets.io"},
		"spec": map[string]any{
			"group": "external-secrets.io", "scope": "Namespaced",
			"names": map[string]any{"plural": "externalsecrets", "singular": "externalsecret", "kind": "ExternalSecret"},
			"versions": []any{map[string]any{"name": "v1beta1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	if _, err := crds.Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	es := dyn.Resource(schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1beta1", Resource: "externalsecrets"}).Namespace(f.ns)
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret",
		"metadata": map[string]any{"name": f.secret}, "spec": map[string]any{"target": map[string]any{"name": f.secret}}}}
	var created *unstructured.Unstructured
	for {
		// The CRD takes a moment to be served.
		if created, err = es.Create(ctx, obj, metav1.CreateOptions{}); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("create ExternalSecret: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	yes := true
	owner := metav1.OwnerReference{APIVersion: "external-secrets.io/v1beta1", Kind: "ExternalSecret", Name: f.secret,
		UID: created.GetUID(), Controller: &yes, BlockOwnerDeletion: &yes}
	s, err := devstack.kube.CoreV1().Secrets(f.ns).Get(ctx, f.secret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.OwnerReferences = []metav1.OwnerReference{owner}
	if _, err := devstack.kube.CoreV1().Secrets(f.ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestAcknowledgedManagerKeepsItsSecret: a target that acknowledges Helm
// rotates a Helm-managed Secret; retire keeps the original (a helm upgrade
// would recreate it), labelled retired, with Helm's label on it intact.
func TestAcknowledgedManagerKeepsItsSecret(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	f := newFixture(t, ctx, "    acknowledgedManagers: [helm]\n", deployment("api", 1, envRef("app-jwt")))
	patch, err := helmMeta("orchestrator")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := devstack.kube.CoreV1().Secrets(f.ns).Patch(ctx, f.secret, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	f.rotate(ctx)
	waitForStep(t, ctx, f, workflows.StepGrace)
	f.approve(ctx)
	if err := f.result(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := devstack.kube.CoreV1().Secrets(f.ns).Get(ctx, f.secret, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("retire deleted the Secret Helm manages: %v", err)
	}
	if s.Labels[activities.LabelStage] != activities.StageRetired || s.Labels["app.kubernetes.io/managed-by"] != "Helm" {
		t.Errorf("the kept Secret's labels are %v: want %s=%s and Helm's managed-by label intact", s.Labels, activities.LabelStage, activities.StageRetired)
	}
	var st workflows.Status
	if err := devstack.temporal.GetWorkflow(ctx, workflows.WorkflowID(f.target), "").Get(ctx, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Retired) == 0 {
		t.Fatal("the result says nothing of the retired version")
	}
	assertEach(t, "the result", st.Retired[0], "app-jwt: kept, labelled retired: managed by Helm release orchestrator")
	if n := referencesTo(f.deploymentSpec(ctx, "api"), f.secret+"-2"); n != 1 {
		t.Error("deployment/api is not on the new version")
	}
}
