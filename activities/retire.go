package activities

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	corev1 "k8s.io/api/core/v1"
)

// RetireSecret deletes a Secret version once no workload references it.
// Deleting one that is already gone succeeds, so retries are safe.
func (k *Kube) RetireSecret(ctx context.Context, in RetireInput) (RetireResult, error) {
	users, err := k.workloads().referencing(ctx, in.Secret.Namespace, in.Secret.Name)
	if err != nil {
		return RetireResult{}, classify(err)
	}
	if len(users) > 0 {
		return RetireResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("Secret %s is still referenced by %s: it was kept; repoint %s, then delete it by hand",
				in.Secret.Name, joinWorkloads(users), joinWorkloads(users)), ErrStillInUse, nil)
	}
	secrets := k.Client.CoreV1().Secrets(in.Secret.Namespace)
	if in.StagedByRun == "" && in.Secret.UID != "" && !in.Secret.TLS {
		// The reference carries what a read would tell: which object it is,
		// and that no Ingress can serve it. The UID precondition keeps a
		// Secret recreated under the name since.
		return k.deleteSecret(ctx, in.Secret, in.Secret.UID)
	}
	s, err := secrets.Get(ctx, in.Secret.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return RetireResult{}, nil
	}
	if err != nil {
		return RetireResult{}, classify(fmt.Errorf("get Secret %s: %w", in.Secret.Name, err))
	}
	if s.Type == corev1.SecretTypeTLS {
		served, err := (ingresses{k.Client}).serving(ctx, in.Secret.Namespace, in.Secret.Name)
		if err != nil {
			return RetireResult{}, err
		}
		if names := served[in.Secret.Name]; len(names) > 0 {
			return RetireResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("Secret %s is still served by ingress %s: it was kept; repoint the Ingress, then delete it by hand",
					in.Secret.Name, strings.Join(names, ", ")), ErrStillInUse, nil)
		}
	}
	if in.StagedByRun != "" && s.Annotations[AnnotationRunID] != in.StagedByRun {
		activity.GetLogger(ctx).Info("kept Secret not staged by this run", "secret", in.Secret.Name)
		return RetireResult{}, nil
	}
	// The UID precondition makes sure the Secret checked above is the one deleted.
	return k.deleteSecret(ctx, in.Secret, string(s.UID))
}

// deleteSecret deletes a Secret version if it is still the object with
// that UID; gone already counts as done.
func (k *Kube) deleteSecret(ctx context.Context, ref SecretRef, uid string) (RetireResult, error) {
	err := k.Client.CoreV1().Secrets(ref.Namespace).Delete(ctx, ref.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(uid)})
	switch {
	case apierrors.IsNotFound(err):
		return RetireResult{}, nil
	case apierrors.IsConflict(err):
		activity.GetLogger(ctx).Warn("kept Secret recreated since the rotation read it", "secret", ref.Name)
		return RetireResult{}, nil
	case err != nil:
		return RetireResult{}, classify(fmt.Errorf("delete Secret %s: %w", ref.Name, err))
	}
	activity.GetLogger(ctx).Info("retired Secret version", "secret", ref.Name, "version", ref.Version)
	return RetireResult{Deleted: true}, nil
}

// refOf makes a reference from a Secret, with the fingerprint recorded at
// staging or computed from the key.
