package activities

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"rotator/catalog"
)

// These tests pin the requests a single-consumer rotation makes (issue 8:
// at most 15 per JWT rotation, retire included), and that each saving
// keeps its guard.

const testNS = "team"

func deployment(secret, rv string, annotations map[string]string) *appsv1.Deployment {
	one := int32(1)
	spec := podSpec(secret)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: testNS, ResourceVersion: rv, Generation: 1, Annotations: annotations},
		Spec:       appsv1.DeploymentSpec{Replicas: &one, Template: corev1.PodTemplateSpec{Spec: spec}},
	}
}

func secret(name, uid string, labels map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS, UID: types.UID(uid), Labels: labels},
		Data: map[string][]byte{"secret": []byte("value-of-" + name)}}
}

// verbs lists the client's requests as "verb resource".
func verbs(c *fake.Clientset) []string {
	var out []string
	for _, a := range c.Actions() {
		out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
	}
	return out
}

func activityEnv(t *testing.T, k *Kube) *testsuite.TestActivityEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(k)
	return env
}

// execute runs an activity that must succeed and returns its result.
func execute[T any](t *testing.T, env *testsuite.TestActivityEnvironment, activity, in any) T {
	t.Helper()
	var out T
	val, err := env.ExecuteActivity(activity, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := val.Get(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPreflightRecordsWhatPromoteNeeds(t *testing.T) {
	c := fake.NewClientset(secret("jwt", "u1", nil), deployment("jwt", "7", map[string]string{"a": "b"}))
	cat := &catalog.Catalog{Targets: []catalog.Target{{Name: "t", Kind: catalog.KindJWT, Namespace: testNS, Secret: "jwt", Key: "secret"}}}
	k := &Kube{Client: c, Catalog: cat}
	p := execute[Plan](t, activityEnv(t, k), k.Preflight, PreflightInput{Target: "t"})
	if len(p.Seen) != 1 || p.Seen[0].ResourceVersion != "7" || !p.Seen[0].Annotated || len(p.Seen[0].Paths) != 5 {
		t.Fatalf("seen = %+v, want the deployment at resourceVersion 7 with its 5 references", p.Seen)
	}
	if p.Current.UID != "u1" {
		t.Fatalf("current = %+v, want its UID", p.Current)
	}
}

// jwtCatalog is a catalog with one jwt target t on Secret jwt.
func jwtCatalog() *catalog.Catalog {
	return &catalog.Catalog{Targets: []catalog.Target{{Name: "t", Kind: catalog.KindJWT, Namespace: testNS, Secret: "jwt", Key: "secret",
		Sections: catalog.Sections{JWT: &catalog.JWT{Bytes: 32}}}}}
}

func TestStageFirstAttemptReadsOnlyTheCurrentVersion(t *testing.T) {
	cur := secret("jwt", "u1", nil)
	cur.Data["issuer"] = []byte("https://issuer.example")
	c := fake.NewClientset(cur)
	k := &Kube{Client: c, Catalog: jwtCatalog()}
	p := Plan{Target: "t", Kind: catalog.KindJWT, Namespace: testNS, Base: "jwt", Key: "secret", NextVersion: 2, KindPlans: KindPlans{JWTBytes: 32},
		Current: SecretRef{Namespace: testNS, Name: "jwt", Version: 1}}
	if _, err := activityEnv(t, k).ExecuteActivity(k.StageSecret, StageInput{Plan: p}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(verbs(c), ","); got != "get secrets,create secrets" {
		t.Fatalf("requests = %s, want the current version's read (for the keys it carries) and the create; adoption is promote's", got)
	}
	base, _ := c.CoreV1().Secrets(testNS).Get(context.Background(), "jwt", metav1.GetOptions{})
	if len(base.Labels) != 0 {
		t.Fatalf("stage labelled the original Secret: %v", base.Labels)
	}
	staged, _ := c.CoreV1().Secrets(testNS).Get(context.Background(), "jwt-2", metav1.GetOptions{})
	if string(staged.Data["issuer"]) != "https://issuer.example" || len(staged.Data["secret"]) == 0 ||
		string(staged.Data["secret"]) == string(cur.Data["secret"]) || staged.Annotations[AnnotationReplaces] != "jwt" {
		t.Fatalf("staged data keys %v, annotations %v: want a new secret, the issuer carried over and the version it replaces",
			sortedKeys(staged.Data), staged.Annotations)
	}
}

func TestStageOnANameTakenBySomebodyElseStops(t *testing.T) {
	taken := secret("jwt-2", "u2", nil)
	taken.Annotations = map[string]string{AnnotationRunID: "somebody-else"}
	c := fake.NewClientset(secret("jwt", "u1", nil), taken)
	k := &Kube{Client: c, Catalog: jwtCatalog()}
	p := Plan{Target: "t", Kind: catalog.KindJWT, Namespace: testNS, Base: "jwt", Key: "secret", NextVersion: 2, KindPlans: KindPlans{JWTBytes: 32},
		Current: SecretRef{Namespace: testNS, Name: "jwt", Version: 1}}
	_, err := activityEnv(t, k).ExecuteActivity(k.StageSecret, StageInput{Plan: p})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || app.Type() != ErrConflict {
		t.Fatalf("err = %v, want a non-retryable conflict that names the Secret", err)
	}
	if got := strings.Join(verbs(c), ","); got != "get secrets,create secrets,get secrets" {
		t.Fatalf("requests = %s, want the create and a look at whose the Secret is", got)
	}
}

// Preflight and stage run as local activities in one workflow task: a
// worker that dies after the create runs both again, and they must land
// on the same Secret rather than stage a second version.
func TestPreflightAndStageAgainFindTheirOwnVersion(t *testing.T) {
	ctx := context.Background()
	d := deployment("jwt", "7", nil)
	otherRun := secret("jwt-2", "u2", map[string]string{LabelTarget: "t", LabelVersion: "2", LabelStage: StagePending})
	otherRun.Annotations = map[string]string{AnnotationRunID: "an-earlier-failed-run"}
	c := fake.NewClientset(secret("jwt", "u1", nil), d, otherRun)
	cat := &catalog.Catalog{Targets: []catalog.Target{{Name: "t", Kind: catalog.KindJWT, Namespace: testNS, Secret: "jwt", Key: "secret",
		Sections: catalog.Sections{JWT: &catalog.JWT{Bytes: 32}}}}}
	k := &Kube{Client: c, Catalog: cat}
	env := activityEnv(t, k)
	preflight := func() Plan { return execute[Plan](t, env, k.Preflight, PreflightInput{Target: "t"}) }
	stage := func(p Plan) SecretRef { return execute[SecretRef](t, env, k.StageSecret, StageInput{Plan: p}) }
	first := preflight()
	if first.NextVersion != 3 {
		t.Fatalf("next version = %d, want 3: version 2 is another run's", first.NextVersion)
	}
	staged := stage(first)
	again := preflight()
	if again.NextVersion != first.NextVersion {
		t.Fatalf("preflight again: next version = %d, want %d, the version this run staged", again.NextVersion, first.NextVersion)
	}
	if ref := stage(again); ref != staged {
		t.Fatalf("stage again = %+v, want the Secret staged before, %+v", ref, staged)
	}
	list, err := c.CoreV1().Secrets(testNS).List(ctx, metav1.ListOptions{LabelSelector: LabelTarget + "=t"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 {
		t.Fatalf("%d versions labelled for the target, want 2: the other run's and this run's one", len(list.Items))
	}
}

// seenOf is what preflight records of a consumer.
func seenOf(d *appsv1.Deployment, secret string) Seen {
	return Seen{Workload: Workload{Kind: "Deployment", Name: d.Name}, ResourceVersion: d.ResourceVersion,
		Paths: secretRefPaths(&d.Spec.Template.Spec, secret), Annotated: d.Annotations != nil}
}

func promoteInput(seen ...Seen) PromoteInput {
	return PromoteInput{Namespace: testNS, Target: "t", Reason: "test",
		From:      SecretRef{Namespace: testNS, Name: "jwt", Version: 1, Fingerprint: "sha256:aaaaaaaaaaaa"},
		To:        SecretRef{Namespace: testNS, Name: "jwt-2", Version: 2, Fingerprint: "sha256:bbbbbbbbbbbb"},
		Consumers: []Workload{{Kind: "Deployment", Name: "app"}}, Seen: seen}
}

func TestPromotePatchesFromWhatPreflightSaw(t *testing.T) {
	d := deployment("jwt", "7", nil)
	c := fake.NewClientset(d, secret("jwt", "u1", nil), secret("jwt-2", "u2", map[string]string{LabelStage: StagePending}))
	k := &Kube{Client: c, Catalog: jwtCatalog()}
	seen := seenOf(d, "jwt")
	val, err := activityEnv(t, k).ExecuteActivity(k.Promote, promoteInput(seen))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(verbs(c), ","); got != "patch deployments,patch secrets,patch secrets" {
		t.Fatalf("requests = %s, want one patch per workload and per version, no read", got)
	}
	var res PromoteResult
	if err := val.Get(&res); err != nil {
		t.Fatal(err)
	}
	if r := res.Rollouts[0]; !r.Patched || r.From != "jwt" || r.To != "jwt-2" {
		t.Fatalf("rollout = %+v", r)
	}
	got, _ := c.AppsV1().Deployments(testNS).Get(context.Background(), "app", metav1.GetOptions{})
	if n := len(secretRefPaths(&got.Spec.Template.Spec, "jwt-2")); n != 5 || got.Annotations[AnnotationChangeCause] != "test" {
		t.Fatalf("deployment after promote: %d references to jwt-2, annotations %v", n, got.Annotations)
	}
	// The original Secret is adopted as version 1 in the patch that
	// labels it previous.
	old, _ := c.CoreV1().Secrets(testNS).Get(context.Background(), "jwt", metav1.GetOptions{})
	want := map[string]string{LabelStage: StagePrevious, LabelTarget: "t", LabelVersion: "1", LabelManagedBy: ManagedByValue}
	for k, v := range want {
		if old.Labels[k] != v {
			t.Fatalf("old Secret labels = %v, want %v", old.Labels, want)
		}
	}
	if old.Annotations[AnnotationFingerprint] != "sha256:aaaaaaaaaaaa" {
		t.Fatalf("old Secret annotations = %v", old.Annotations)
	}
}

// invalidPatch is how the apiserver answers a JSON patch whose test op
// fails: 422 Invalid without causes.
func invalidPatch() error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 422, Reason: metav1.StatusReasonInvalid,
		Details: &metav1.StatusDetails{}, Message: "the server rejected our request due to an error in our request"}}
}

func TestPromoteReadsAWorkloadThatChangedSincePreflight(t *testing.T) {
	d := deployment("jwt", "7", nil)
	c := fake.NewClientset(d, secret("jwt", "u1", nil), secret("jwt-2", "u2", nil))
	first := true
	c.PrependReactor("patch", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		if first {
			// The resourceVersion test fails: somebody edited it.
			first = false
			return true, nil, invalidPatch()
		}
		return false, nil, nil
	})
	k := &Kube{Client: c, Catalog: jwtCatalog()}
	if _, err := activityEnv(t, k).ExecuteActivity(k.Promote, promoteInput(seenOf(d, "jwt"))); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(verbs(c), ","); got != "patch deployments,get deployments,patch deployments,patch secrets,patch secrets" {
		t.Fatalf("requests = %s, want a read and a fresh patch after the failed one", got)
	}
}

func TestVerifyCheckedInRolloutReadsNoWorkload(t *testing.T) {
	c := fake.NewClientset(deployment("jwt", "7", nil))
	k := &Kube{Client: c, Catalog: jwtCatalog()}
	in := VerifyInput{Namespace: testNS, Old: SecretRef{Name: "jwt"}, New: SecretRef{Name: "jwt-2"},
		Consumers: []Workload{{Kind: "Deployment", Name: "app"}}, CheckedInRollout: true}
	if _, err := activityEnv(t, k).ExecuteActivity(k.VerifyConsumers, in); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Actions()); n != 0 {
		t.Fatalf("verify made %d requests: %v", n, verbs(c))
	}
	// Without the rollout's check it reads them, and finds the consumer
	// still on the old version.
	in.CheckedInRollout = false
	if _, err := activityEnv(t, k).ExecuteActivity(k.VerifyConsumers, in); err == nil || !strings.Contains(err.Error(), "does not reference the new Secret jwt-2") {
		t.Fatalf("err = %v, want the consumer that missed the new version", err)
	}
}

func TestCheckedInRollout(t *testing.T) {
	app := Workload{Kind: "Deployment", Name: "app"}
	db := Workload{Kind: "StatefulSet", Name: "db"}
	for _, tc := range []struct {
		name     string
		rollouts []Rollout
		want     bool
	}{
		{"every consumer checked", []Rollout{{Workload: app, To: "s-2"}, {Workload: db, To: "s-2"}}, true},
		{"recorded by an older worker", []Rollout{{Workload: app}, {Workload: db}}, false},
		{"one missing", []Rollout{{Workload: app, To: "s-2"}}, false},
		{"other target", []Rollout{{Workload: app, To: "s-3"}, {Workload: db, To: "s-2"}}, false},
	} {
		if got := CheckedInRollout(tc.rollouts, []Workload{app, db}, "s-2"); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestAwaitWatchesFromThePatchAndChecksTheTemplate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		secret  string // what the rolled-out template references
		wantErr string
	}{
		{"moved", "jwt-2", ""},
		{"edited back during the rollout", "jwt", "still references the old Secret jwt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := deployment(tc.secret, "8", nil)
			d.Generation = 2
			c := fake.NewClientset(d)
			k := &Kube{Client: c, Catalog: jwtCatalog(), HeartbeatEvery: time.Second}
			go func() {
				// The controller finishes the rollout once the watch is open.
				for !hasWatch(c) {
					time.Sleep(5 * time.Millisecond)
				}
				done := d.DeepCopy()
				done.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}
				_, _ = c.AppsV1().Deployments(testNS).UpdateStatus(context.Background(), done, metav1.UpdateOptions{})
			}()
			_, err := activityEnv(t, k).ExecuteActivity(k.AwaitRollout, AwaitInput{Namespace: testNS, Rollouts: []Rollout{{
				Workload: Workload{Kind: "Deployment", Name: "app"}, Generation: 2, Patched: true, ResourceVersion: "8", From: "jwt", To: "jwt-2"}}})
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			for _, a := range c.Actions() {
				if a.GetVerb() == "list" {
					t.Fatalf("the wait listed: %v; it should watch from the patch's resourceVersion", verbs(c))
				}
			}
		})
	}
}

func hasWatch(c *fake.Clientset) bool {
	for _, a := range c.Actions() {
		if a.GetVerb() == "watch" {
			return true
		}
	}
	return false
}

func TestRetireScansTheNamespaceAndDeletesByUID(t *testing.T) {
	c := fake.NewClientset(secret("jwt", "u1", nil))
	k := &Kube{Client: c, Catalog: jwtCatalog()}
	ref := SecretRef{Namespace: testNS, Name: "jwt", Version: 1, UID: "u1"}
	var opts metav1.DeleteOptions
	c.PrependReactor("delete", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		opts = a.(k8stesting.DeleteActionImpl).DeleteOptions
		return false, nil, nil
	})
	if _, err := activityEnv(t, k).ExecuteActivity(k.RetireSecret, RetireInput{Secret: ref}); err != nil {
		t.Fatal(err)
	}
	got := verbs(c)
	slices.Sort(got[:9]) // the lists run at once
	want := "list cronjobs,list daemonsets,list deployments,list ingresses,list jobs,list pods,list replicasets,list replicationcontrollers,list statefulsets," +
		"get secrets,delete secrets"
	if got := strings.Join(got, ","); got != want {
		t.Fatalf("requests = %s, want the scan of every kind that can use a Secret, a read for its managers, and the delete", got)
	}
	if opts.Preconditions == nil || opts.Preconditions.UID == nil || *opts.Preconditions.UID != "u1" {
		t.Fatalf("delete preconditions = %+v, want UID u1", opts.Preconditions)
	}
}

func TestRetireStillRefusesASecretInUse(t *testing.T) {
	c := fake.NewClientset(secret("jwt", "u1", nil), deployment("jwt", "7", nil))
	k := &Kube{Client: c, Catalog: jwtCatalog()}
	_, err := activityEnv(t, k).ExecuteActivity(k.RetireSecret, RetireInput{Secret: SecretRef{Namespace: testNS, Name: "jwt", UID: "u1"}})
	if err == nil || !strings.Contains(err.Error(), "still used by deployment/app") {
		t.Fatalf("err = %v, want a refusal", err)
	}
	if _, err := c.CoreV1().Secrets(testNS).Get(context.Background(), "jwt", metav1.GetOptions{}); err != nil {
		t.Fatalf("the Secret is gone: %v", err)
	}
}

func TestRetireKeepsASecretRecreatedUnderTheName(t *testing.T) {
	c := fake.NewClientset(secret("jwt", "u9", nil))
	c.PrependReactor("delete", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewConflict(corev1.Resource("secrets"), "jwt", errors.New("precondition failed: UID"))
	})
	k := &Kube{Client: c, Catalog: jwtCatalog()}
	val, err := activityEnv(t, k).ExecuteActivity(k.RetireSecret, RetireInput{Secret: SecretRef{Namespace: testNS, Name: "jwt", UID: "u1"}})
	if err != nil {
		t.Fatal(err)
	}
	var res RetireResult
	if err := val.Get(&res); err != nil || res.Deleted {
		t.Fatalf("result = %+v, %v: want kept", res, err)
	}
}
