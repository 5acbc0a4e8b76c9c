// Package report answers the auditor's question "which secrets are older
// than policy?": each catalog target's current version as the cluster
// has it, its age, its cadence and whether it is overdue. The starter's
// report and the worker's gauges read it the same way.
package report

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"rotator/activities"
	"rotator/catalog"
)

// Slack is how far past its cadence a version may be before it is
// overdue: a Schedule's jitter and a grace that an approval ends late.
const Slack = 24 * time.Hour

// Version is a target's current version.
type Version struct {
	// Name is the Secret the consumers use.
	Name string `json:"name"`
	// Created is when that Secret was created: when it was staged, for a
	// version rotator made.
	Created time.Time `json:"created"`
	// Managed says rotator made it; otherwise it is the base Secret, never
	// rotated by rotator, and its age is that Secret's.
	Managed bool `json:"managed"`
}

// Current finds the target's current version: the Secret labelled current
// for it, else its base Secret.
func Current(ctx context.Context, kube kubernetes.Interface, t catalog.Target) (Version, error) {
	list, err := kube.CoreV1().Secrets(t.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.Set{
		activities.LabelTarget: t.Name, activities.LabelStage: activities.StageCurrent}.String()})
	if err != nil {
		return Version{}, fmt.Errorf("list the Secrets of %s in %s: %w", t.Name, t.Namespace, err)
	}
	if len(list.Items) > 0 {
		// Two current versions are a rotation under way at promote; the
		// newer one is what the consumers move to.
		newest := slices.MaxFunc(list.Items, func(a, b corev1.Secret) int {
			return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
		})
		return Version{Name: newest.Name, Created: newest.CreationTimestamp.Time, Managed: true}, nil
	}
	s, err := kube.CoreV1().Secrets(t.Namespace).Get(ctx, t.Secret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Version{}, fmt.Errorf("target %s: no current version: neither a Secret labelled %s=%s, %s=%s nor Secret %s/%s exists",
			t.Name, activities.LabelTarget, t.Name, activities.LabelStage, activities.StageCurrent, t.Namespace, t.Secret)
	}
	if err != nil {
		return Version{}, fmt.Errorf("read Secret %s/%s: %w", t.Namespace, t.Secret, err)
	}
	return Version{Name: s.Name, Created: s.CreationTimestamp.Time}, nil
}

// Cadence is how often the target should get a new version: its every;
// for tls, the certificate's ttl less renewBefore, when the scan renews it.
func Cadence(t catalog.Target) time.Duration {
	if t.Kind == catalog.KindTLS && t.TLS != nil {
		return t.TLS.TTL.Duration - t.TLS.RenewBefore.Duration
	}
	return t.Every.Duration
}

// Overdue says a version of that age is older than the target's policy.
func Overdue(t catalog.Target, age time.Duration) bool {
	c := Cadence(t)
	return c > 0 && age > c+Slack
}
