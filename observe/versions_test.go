package observe_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"rotator/activities"
	"rotator/catalog"
	"rotator/observe"
)

// TestSyncVersions: each target's version age and whether it is overdue
// come from its current Secret's creation.
func TestSyncVersions(t *testing.T) {
	m, err := observe.NewMetrics(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	every := catalog.Duration{Duration: 90 * day}
	cat := &catalog.Catalog{Targets: []catalog.Target{
		{Name: "fresh", Kind: catalog.KindJWT, Namespace: "ns", Secret: "fresh", Every: every},
		{Name: "old", Kind: catalog.KindJWT, Namespace: "ns", Secret: "old", Every: every},
	}}
	kube := fake.NewClientset(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "fresh-4", Namespace: "ns", CreationTimestamp: metav1.NewTime(now.Add(-10 * day)),
			Labels: map[string]string{activities.LabelTarget: "fresh", activities.LabelStage: activities.StageCurrent}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "ns", CreationTimestamp: metav1.NewTime(now.Add(-200 * day))}})
	m.SyncVersions(context.Background(), kube, cat, now, slog.New(slog.DiscardHandler))
	for target, want := range map[string][2]float64{"fresh": {(10 * day).Seconds(), 0}, "old": {(200 * day).Seconds(), 1}} {
		for i, name := range []string{observe.MetricVersionAge, observe.MetricOverdue} {
			v, ok, err := observe.Value(m.Gatherer(), name, map[string]string{"target": target})
			if err != nil || !ok || v != want[i] {
				t.Errorf("%s{target=%q} = %v (present %t, %v), want %v", name, target, v, ok, err, want[i])
			}
		}
	}
}
