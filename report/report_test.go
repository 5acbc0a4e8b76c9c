package report

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"rotator/activities"
	"rotator/catalog"
)

func secret(name string, created time.Time, lbl map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: lbl, CreationTimestamp: metav1.NewTime(created)}}
}

// TestCurrent: the current version is the Secret labelled current (the
// newer of two at promote), else the base Secret, unmanaged; with neither
// the error says what was looked for.
func TestCurrent(t *testing.T) {
	ctx := context.Background()
	day := 24 * time.Hour
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	tg := catalog.Target{Name: "a", Namespace: "ns", Secret: "app", Kind: catalog.KindJWT, Every: catalog.Duration{Duration: 90 * day}}
	cur := func(name string, age time.Duration) *corev1.Secret {
		return secret(name, now.Add(-age), map[string]string{activities.LabelTarget: "a", activities.LabelStage: activities.StageCurrent})
	}
	kube := fake.NewClientset(secret("app", now.Add(-400*day), nil), cur("app-2", 100*day), cur("app-3", 10*day),
		secret("app-1", now.Add(-200*day), map[string]string{activities.LabelTarget: "a", activities.LabelStage: "retired"}))
	v, err := Current(ctx, kube, tg)
	if err != nil || v.Name != "app-3" || !v.Managed || !v.Created.Equal(now.Add(-10*day)) {
		t.Errorf("Current = %+v, %v; want app-3, managed, 10 days old", v, err)
	}

	v, err = Current(ctx, fake.NewClientset(secret("app", now.Add(-400*day), nil)), tg)
	if err != nil || v.Name != "app" || v.Managed {
		t.Errorf("never rotated: %+v, %v; want the base Secret, unmanaged", v, err)
	}
	if _, err := Current(ctx, fake.NewClientset(), tg); err == nil || !strings.Contains(err.Error(), "nor Secret ns/app exists") {
		t.Errorf("no Secret: %v", err)
	}

	if Overdue(tg, 91*day) || !Overdue(tg, 92*day) {
		t.Error("overdue after the cadence plus a day, not before")
	}
	tls := catalog.Target{Kind: catalog.KindTLS, Sections: catalog.Sections{TLS: &catalog.TLS{TTL: catalog.Duration{Duration: 90 * day}, RenewBefore: catalog.Duration{Duration: 30 * day}}}}
	if Cadence(tls) != 60*day {
		t.Errorf("tls cadence %s, want ttl less renewBefore", Cadence(tls))
	}
}
