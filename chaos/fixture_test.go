package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"rotator/activities"
)

// target is one test's namespace: a Secret, a consumer Deployment "app"
// that reads every key of it, and a catalog naming only this target.
type target struct {
	t         *testing.T
	ns        string
	name      string
	secret    string
	catalog   string
	taskQueue string
}

const consumer = "app"

func randomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newTarget creates the namespace, the Secret and its consumer, waits for
// the first rollout and writes the catalog; targetYAML is the target's
// lines after name, namespace and secret, %NS% standing for the namespace.
func newTarget(t *testing.T, ctx context.Context, data map[string]string, targetYAML string, prepare func(ns string)) *target {
	t.Helper()
	s := randomSuffix()
	tg := &target{t: t, ns: "chaos-" + s, name: "chaos-" + s, secret: "app-secret", taskQueue: "chaos-" + s}
	k := devstack.kube
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tg.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A failed test keeps its namespace to look at.
		if !t.Failed() {
			_ = k.CoreV1().Namespaces().Delete(context.Background(), tg.ns, metav1.DeleteOptions{})
		}
	})
	if _, err := k.CoreV1().Secrets(tg.ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: tg.secret}, StringData: data}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(tg.ns)
	}
	var env []corev1.EnvVar
	for _, key := range slices.Sorted(maps.Keys(data)) {
		env = append(env, corev1.EnvVar{Name: strings.ToUpper(key), ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: tg.secret}, Key: key}}})
	}
	replicas := int32(2)
	// Pods are replaced one at a time without a surge pod, so a rollout
	// needs no room on the kwok nodes beyond what the consumer has (a
	// benchmark may fill them).
	zero, one := intstr.FromInt32(0), intstr.FromInt32(1)
	sel := map[string]string{"app": consumer}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: consumer},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Strategy: appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &one, MaxSurge: &zero}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel}, Spec: corev1.PodSpec{
				Containers:   []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Env: env}},
				NodeSelector: map[string]string{"type": "kwok"},
				Tolerations:  []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
			}},
		},
	}
	if _, err := k.AppsV1().Deployments(tg.ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tg.waitRolledOut(ctx)
	cat := fmt.Sprintf("targets:\n  - name: %s\n    namespace: %s\n    secret: %s\n%s", tg.name, tg.ns, tg.secret,
		strings.ReplaceAll(targetYAML, "%NS%", tg.ns))
	tg.catalog = filepath.Join(t.TempDir(), "rotator.yaml")
	if err := os.WriteFile(tg.catalog, []byte(cat), 0o600); err != nil {
		t.Fatal(err)
	}
	return tg
}

// waitRolledOut blocks until the consumer's current generation is rolled
// out, as kubectl judges it.
func (tg *target) waitRolledOut(ctx context.Context) {
	tg.t.Helper()
	out, err := exec.CommandContext(ctx, os.Getenv("KUBECTL"), "-n", tg.ns, "rollout", "status", "deployment/"+consumer, "--timeout=5m").CombinedOutput()
	if err != nil {
		tg.t.Fatalf("rollout of %s: %v: %s", consumer, err, out)
	}
}

// setPaused pauses or resumes the consumer's rollouts: paused, a rotation
// waits in its rollout step for as long as the test needs.
func (tg *target) setPaused(ctx context.Context, paused bool) {
	tg.t.Helper()
	patch := fmt.Sprintf(`{"spec":{"paused":%t}}`, paused)
	if _, err := devstack.kube.AppsV1().Deployments(tg.ns).Patch(ctx, consumer, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		tg.t.Fatal(err)
	}
}

// replicaSets counts the consumer's ReplicaSets: one per rollout.
func (tg *target) replicaSets(ctx context.Context) int {
	tg.t.Helper()
	list, err := devstack.kube.AppsV1().ReplicaSets(tg.ns).List(ctx, metav1.ListOptions{LabelSelector: labels.Set{"app": consumer}.String()})
	if err != nil {
		tg.t.Fatal(err)
	}
	return len(list.Items)
}

func (tg *target) secretData(ctx context.Context, name string) (map[string][]byte, bool) {
	tg.t.Helper()
	s, err := devstack.kube.CoreV1().Secrets(tg.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, false
	}
	return s.Data, true
}

// referencedSecrets lists the Secrets the consumer's pod template names.
// It does not use rotator's own reference finder: the test must not share
// the code it checks.
func referencedSecrets(spec *corev1.PodSpec) []string {
	var names []string
	add := func(n string) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				add(e.ValueFrom.SecretKeyRef.Name)
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				add(e.SecretRef.Name)
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			add(v.Secret.SecretName)
		}
	}
	return names
}

// assertOneLiveVersion checks what a finished rotation must leave: the
// consumer references live alone and is rolled out, rolled out once more
// than before (rollsBefore ReplicaSets), live exists and is labelled
// current, and no other version, staged or pending Secret of the target
// is left.
func (tg *target) assertOneLiveVersion(ctx context.Context, live string, rollsBefore int) {
	tg.t.Helper()
	tg.waitRolledOut(ctx)
	d, err := devstack.kube.AppsV1().Deployments(tg.ns).Get(ctx, consumer, metav1.GetOptions{})
	if err != nil {
		tg.t.Fatal(err)
	}
	if refs := referencedSecrets(&d.Spec.Template.Spec); !slices.Equal(refs, []string{live}) {
		tg.t.Errorf("the consumer references %v, want only the live version %s", refs, live)
	}
	if d.Spec.Paused {
		tg.t.Error("the consumer is still paused: the test did not resume its rollout")
	}
	if got := tg.replicaSets(ctx); got != rollsBefore+1 {
		tg.t.Errorf("the consumer has %d ReplicaSets, want %d: the rotation must roll it out exactly once, kills or not", got, rollsBefore+1)
	}
	list, err := devstack.kube.CoreV1().Secrets(tg.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		tg.t.Fatal(err)
	}
	found := false
	for _, s := range list.Items {
		ours := s.Name == tg.secret || strings.HasPrefix(s.Name, tg.secret+"-") ||
			s.Labels[activities.LabelManagedBy] == activities.ManagedByValue || s.Labels[activities.LabelTarget] != ""
		switch {
		case s.Name == live:
			found = true
			if s.Labels[activities.LabelStage] != activities.StageCurrent || s.Labels[activities.LabelTarget] != tg.name {
				tg.t.Errorf("live Secret %s has labels %v, want %s=%s", live, s.Labels, activities.LabelStage, activities.StageCurrent)
			}
		case ours:
			tg.t.Errorf("orphaned Secret %s (labels %v) is left in %s", s.Name, s.Labels, tg.ns)
		}
	}
	if !found {
		tg.t.Errorf("the live Secret %s does not exist", live)
	}
}
