package activities

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func ownedBy(kind, name string) []metav1.OwnerReference {
	yes := true
	return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID("u-" + name), Controller: &yes}}
}

func meta(name string, owners []metav1.OwnerReference) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: testNS, OwnerReferences: owners}
}

// TestUsersOfASecret: the scan sees every kind that can use a Secret, and
// users() lists what needs it, once: a workload for its pods, a running
// Job for its pod, a ReplicaSet no controller owns for its pods; a
// Deployment's old ReplicaSets, a finished Job and ended or terminating
// pods need nothing.
func TestUsersOfASecret(t *testing.T) {
	spec := podSpec("jwt")
	now := metav1.NewTime(time.Now())
	objs := []runtime.Object{
		deployment("jwt", "1", nil),
		&appsv1.ReplicaSet{ObjectMeta: meta("app-old", ownedBy("Deployment", "app")), Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: spec}}},
		&corev1.Pod{ObjectMeta: meta("app-old-x", ownedBy("ReplicaSet", "app-old")), Spec: spec},
		&batchv1.CronJob{ObjectMeta: meta("backup", nil), Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: spec}}}}},
		&batchv1.Job{ObjectMeta: meta("backup-1", ownedBy("CronJob", "backup")), Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: spec}}},
		&corev1.Pod{ObjectMeta: meta("backup-1-x", ownedBy("Job", "backup-1")), Spec: spec},
		&batchv1.Job{ObjectMeta: meta("done", nil), Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: spec}},
			Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}},
		&corev1.Pod{ObjectMeta: meta("bare", nil), Spec: spec},
		&corev1.Pod{ObjectMeta: meta("ended", nil), Spec: spec, Status: corev1.PodStatus{Phase: corev1.PodSucceeded}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "leaving", Namespace: testNS, DeletionTimestamp: &now, Finalizers: []string{"x"}}, Spec: spec},
		&appsv1.ReplicaSet{ObjectMeta: meta("legacy", nil), Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: spec}}},
		&corev1.Pod{ObjectMeta: meta("legacy-x", ownedBy("ReplicaSet", "legacy")), Spec: spec},
		&corev1.ReplicationController{ObjectMeta: meta("older", nil), Spec: corev1.ReplicationControllerSpec{Template: &corev1.PodTemplateSpec{Spec: spec}}},
		&corev1.Pod{ObjectMeta: meta("unrelated", nil), Spec: podSpec("other")},
	}
	scan, err := scanNamespace(context.Background(), fake.NewClientset(objs...), testNS)
	if err != nil {
		t.Fatal(err)
	}
	got := holderNames(holders(scan.users("jwt")))
	want := []string{
		"cronjob/backup", "deployment/app",
		"job/backup-1 (a running Job, whose template cannot change)",
		"pod/bare (a bare pod)",
		"replicaset/legacy (no controller owns it)",
		"replicationcontroller/older (no controller owns it)",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("users of jwt:\n got %q\nwant %q", got, want)
	}
	// Once the Deployment is on another version, a pod still on the old
	// template needs the old one.
	objs[0] = deployment("jwt-2", "2", nil)
	scan, err = scanNamespace(context.Background(), fake.NewClientset(objs...), testNS)
	if err != nil {
		t.Fatal(err)
	}
	if got := holderNames(holders(scan.users("jwt"))); !slices.Contains(got, "pod/app-old-x (of deployment/app, on a template that no longer names it)") {
		t.Fatalf("users of jwt after the Deployment moved: %q", got)
	}
}

func TestKeyRefsAreTheKeysAPodNeeds(t *testing.T) {
	yes := true
	spec := &corev1.PodSpec{
		Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{
			{Name: "A", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "a"}}},
			{Name: "B", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "b", Optional: &yes}}},
			{Name: "C", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "other"}, Key: "c"}}},
		}}},
		Volumes: []corev1.Volume{
			{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", Items: []corev1.KeyToPath{{Key: "d", Path: "d"}}}}},
			{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Items: []corev1.KeyToPath{{Key: "e", Path: "e"}}}}}}}},
		},
	}
	var got []string
	for _, k := range keyRefs(spec, "s") {
		got = append(got, k.Key+" in "+k.Where)
	}
	want := []string{"a in container app env A", "d in volume v", "e in projected volume p"}
	if !slices.Equal(got, want) {
		t.Fatalf("keyRefs = %q, want %q (optional and other Secrets' keys left out)", got, want)
	}
	if names := secretNames(spec); !slices.Equal(names, []string{"other", "s"}) {
		t.Fatalf("secretNames = %v", names)
	}
}

func TestManagersOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		meta metav1.ObjectMeta
		want []string
	}{
		{"none", metav1.ObjectMeta{Labels: map[string]string{LabelManagedBy: ManagedByValue, "app.kubernetes.io/instance": "x"}}, nil},
		{"helm", metav1.ObjectMeta{Labels: map[string]string{LabelManagedBy: "Helm"}, Annotations: map[string]string{annotationHelmRelease: "web"}},
			[]string{"helm: Helm release web"}},
		{"argo cd", metav1.ObjectMeta{Annotations: map[string]string{annotationArgoTracking: "shop:apps/Deployment:ns/web"}},
			[]string{"argocd: Argo CD application shop"}},
		{"flux", metav1.ObjectMeta{Labels: map[string]string{labelFluxKustomization: "apps"}}, []string{"flux: Flux Kustomization apps"}},
		{"flux by field manager", metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kustomize-controller"}, {Manager: "kubectl"}}},
			[]string{"flux: flux (field manager kustomize-controller)"}},
		{"another tool", metav1.ObjectMeta{Labels: map[string]string{LabelManagedBy: "Kustomize"}}, []string{`kustomize: "Kustomize" (label app.kubernetes.io/managed-by)`}},
		{"an operator", metav1.ObjectMeta{OwnerReferences: func() []metav1.OwnerReference {
			r := ownedBy("SealedSecret", "db")
			r[0].APIVersion = "bitnami.com/v1alpha1"
			return r
		}()}, []string{"operator: SealedSecret db (bitnami.com/v1alpha1)"}},
		{"cert-manager", metav1.ObjectMeta{Annotations: map[string]string{annotationCertificate: "web-tls"}}, []string{"cert-manager: cert-manager Certificate web-tls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, m := range managersOf(&tc.meta) {
				got = append(got, m.ID+": "+m.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("managers = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestScannerSharesAScanThatStartsAfterTheCall: concurrent callers share
// scans, but none takes one that began before it asked.
func TestScannerSharesAScanThatStartsAfterTheCall(t *testing.T) {
	c := fake.NewClientset(deployment("jwt", "1", nil))
	s := newScanner()
	k := &Kube{Client: c, scans: s}
	const callers = 20
	done := make(chan error, callers)
	for range callers {
		go func() {
			_, err := k.scan(context.Background(), testNS)
			done <- err
		}()
	}
	for range callers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	lists := 0
	for _, a := range c.Actions() {
		if a.GetVerb() == "list" && a.GetResource().Resource == "deployments" {
			lists++
		}
	}
	if lists < 1 || lists >= callers {
		t.Fatalf("%d scans for %d concurrent callers, want fewer than one each", lists, callers)
	}
	t.Logf("%d scans for %d concurrent callers", lists, callers)
	if !strings.Contains(strings.Join(verbs(c), ","), "list pods") {
		t.Fatal("the scan did not list pods")
	}
}
