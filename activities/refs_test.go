package activities

import (
	"encoding/json"
	"slices"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func podSpec(secret string) corev1.PodSpec {
	ref := func(name string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: "secret"}}
	}
	return corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Env: []corev1.EnvVar{{Name: "A", ValueFrom: ref(secret)}}}},
		Containers: []corev1.Container{
			{Name: "app", Env: []corev1.EnvVar{
				{Name: "PLAIN", Value: secret}, // a literal value equal to the name is not a reference
				{Name: "OTHER", ValueFrom: ref("unrelated")},
				{Name: "JWT", ValueFrom: ref(secret)},
			}},
			{Name: "sidecar", EnvFrom: []corev1.EnvFromSource{
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}},
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}},
			}},
		},
		Volumes: []corev1.Volume{
			{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}},
			{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}},
			}}}},
		},
	}
}

func TestSecretRefPathsFindsEveryKindOfReference(t *testing.T) {
	spec := podSpec("jwt")
	got := secretRefPaths(&spec, "jwt")
	want := []string{
		"/initContainers/0/env/0/valueFrom/secretKeyRef/name",
		"/containers/0/env/2/valueFrom/secretKeyRef/name",
		"/containers/1/envFrom/1/secretRef/name",
		"/volumes/0/secret/secretName",
		"/volumes/1/projected/sources/1/secret/name",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paths:\n got %q\nwant %q", got, want)
	}
	if n := len(secretRefPaths(&spec, "jwt-2")); n != 0 {
		t.Fatalf("found %d references to a Secret that is not referenced", n)
	}
}

func TestRepointPatchMovesEveryReferenceAndNothingElse(t *testing.T) {
	for _, annotations := range []map[string]string{nil, {"keep": "me"}} {
		d := appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "app", Annotations: annotations},
			Spec:       appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: podSpec("jwt")}},
		}
		patch, n, err := repointPatch("/spec/template", &d.Spec.Template.Spec, d.Annotations, "jwt", "jwt-2", "rotator test")
		if err != nil || n != 5 {
			t.Fatalf("repointPatch: n=%d err=%v", n, err)
		}
		doc, _ := json.Marshal(d)
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			t.Fatal(err)
		}
		out, err := p.Apply(doc)
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		var after appsv1.Deployment
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatal(err)
		}
		if left := secretRefPaths(&after.Spec.Template.Spec, "jwt"); len(left) != 0 {
			t.Errorf("references left on the old Secret: %v", left)
		}
		if moved := secretRefPaths(&after.Spec.Template.Spec, "jwt-2"); len(moved) != 5 {
			t.Errorf("want 5 references on the new Secret, got %v", moved)
		}
		if after.Spec.Template.Spec.Containers[0].Env[0].Value != "jwt" ||
			after.Spec.Template.Spec.Containers[1].EnvFrom[0].ConfigMapRef.Name != "jwt" {
			t.Error("the patch changed fields that are not Secret references")
		}
		if after.Annotations[AnnotationChangeCause] != "rotator test" || (annotations != nil && after.Annotations["keep"] != "me") {
			t.Errorf("annotations: %v", after.Annotations)
		}
	}
}

func TestRepointPatchFailsOnConcurrentEdit(t *testing.T) {
	d := appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: podSpec("jwt")}}}
	patch, _, err := repointPatch("/spec/template", &d.Spec.Template.Spec, nil, "jwt", "jwt-2", "x")
	if err != nil {
		t.Fatal(err)
	}
	// Someone points the volume elsewhere between our read and our patch.
	d.Spec.Template.Spec.Volumes[0].Secret.SecretName = "someone-elses"
	doc, _ := json.Marshal(d)
	p, _ := jsonpatch.DecodePatch(patch)
	if _, err := p.Apply(doc); err == nil {
		t.Fatal("the patch overwrote a concurrent edit; its test ops should have failed")
	}
}

func TestRolloutState(t *testing.T) {
	three := int32(3)
	dep := func(obs int64, updated, total, available int32, cond string) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "app", Generation: 2}, Spec: appsv1.DeploymentSpec{Replicas: &three}}
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: obs, UpdatedReplicas: updated, Replicas: total, AvailableReplicas: available}
		if cond != "" {
			d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Reason: cond}}
		}
		return d
	}
	for _, tc := range []struct {
		name    string
		d       *appsv1.Deployment
		done    bool
		failure bool
	}{
		{"not observed", dep(1, 3, 3, 3, ""), false, false},
		{"updating", dep(2, 1, 4, 3, ""), false, false},
		{"old pods terminating", dep(2, 3, 4, 3, ""), false, false},
		{"not available", dep(2, 3, 3, 2, ""), false, false},
		{"complete", dep(2, 3, 3, 3, "NewReplicaSetAvailable"), true, false},
		{"deadline", dep(2, 1, 4, 3, "ProgressDeadlineExceeded"), false, true},
	} {
		done, _, err := rolloutState(tc.d, 2)
		if done != tc.done || (err != nil) != tc.failure {
			t.Errorf("%s: done=%v err=%v", tc.name, done, err)
		}
	}
	onDelete := &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}}}
	if _, _, err := rolloutState(onDelete, 1); err == nil {
		t.Error("an OnDelete StatefulSet never rolls out by itself; want an error")
	}
	ds := &appsv1.DaemonSet{Status: appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 2, UpdatedNumberScheduled: 2, NumberAvailable: 2}}
	if done, _, err := rolloutState(ds, 2); !done || err != nil {
		t.Errorf("daemonset: done=%v err=%v", done, err)
	}
}
