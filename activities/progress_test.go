package activities

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"rotator/catalog"
)

func TestRolloutLimit(t *testing.T) {
	deadline := int32(120)
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{ProgressDeadlineSeconds: &deadline}}
	for _, tc := range []struct {
		name   string
		target time.Duration
		obj    runtime.Object
		want   time.Duration
	}{
		{"the target's", 20 * time.Second, d, 20 * time.Second},
		{"a Deployment's deadline and a margin", 0, d, 120*time.Second + progressMargin},
		{"a StatefulSet's default", 0, &appsv1.StatefulSet{}, catalog.DefaultRolloutTimeout},
		{"nothing seen yet", 0, nil, catalog.DefaultRolloutTimeout},
	} {
		if got := rolloutLimit(tc.target, tc.obj); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestStuckRollouts(t *testing.T) {
	now := time.Now()
	w := Workload{Kind: "Deployment", Name: "api"}
	failing := &appsv1.Deployment{Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{
		Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate",
		Message: `pods "api-x" is forbidden: exceeded quota: pods`, LastTransitionTime: metav1.NewTime(now.Add(-ReplicaFailureGrace - time.Second))}}}}
	p := &progress{rollout: Rollout{Workload: w}, limit: time.Hour, obj: failing, state: "0 of 2 new replicas updated", since: now}
	if err := p.stuck(now); err == nil || !strings.Contains(err.Error(), "cannot create pods for its new template (ReplicaFailure FailedCreate for 31s): pods \"api-x\" is forbidden: exceeded quota") {
		t.Fatalf("a lasting ReplicaFailure: %v", err)
	}
	failing.Status.Conditions[0].LastTransitionTime = metav1.NewTime(now)
	if err := p.stuck(now); err != nil {
		t.Fatalf("a fresh ReplicaFailure ended the rollout: %v", err)
	}
	// A rollback's wait sees the failure of the rollout it undoes until
	// the controllers catch up: it counts only from the wait's start, and
	// only once the controller has seen the rollback's template.
	failing.Status.Conditions[0].LastTransitionTime = metav1.NewTime(now.Add(-time.Minute))
	back := &progress{rollout: Rollout{Workload: w, Generation: 3}, limit: time.Hour, obj: failing, started: now, since: now}
	failing.Status.ObservedGeneration = 2
	if err := back.stuck(now.Add(ReplicaFailureGrace + time.Second)); err != nil {
		t.Fatalf("the failure of the generation before ended the rollback: %v", err)
	}
	failing.Status.ObservedGeneration = 3
	if err := back.stuck(now.Add(time.Second)); err != nil {
		t.Fatalf("a failure from before the wait began ended it at once: %v", err)
	}
	if err := back.stuck(now.Add(ReplicaFailureGrace + time.Second)); err == nil || !strings.Contains(err.Error(), "ReplicaFailure FailedCreate for 1m31s") {
		t.Fatalf("a failure lasting the grace into the wait: %v", err)
	}
	p = &progress{rollout: Rollout{Workload: w}, limit: 10 * time.Second, obj: &appsv1.StatefulSet{}}
	p.observe(&appsv1.StatefulSet{}, "0 of 1 replicas ready")
	if err := p.stuck(time.Now().Add(9 * time.Second)); err != nil {
		t.Fatalf("stuck before the limit: %v", err)
	}
	if err := p.stuck(time.Now().Add(11 * time.Second)); err == nil || !strings.Contains(err.Error(), "made no progress for 11s (0 of 1 replicas ready)") {
		t.Fatalf("after the limit: %v", err)
	}
	// Progress restarts the clock.
	p.observe(&appsv1.StatefulSet{}, "1 of 1 replicas ready")
	if err := p.stuck(time.Now().Add(9 * time.Second)); err != nil {
		t.Fatalf("stuck right after progress: %v", err)
	}
}
