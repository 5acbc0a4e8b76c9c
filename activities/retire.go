package activities

import (
	"context"
	"fmt"
	"strings"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RetireSecret deletes a Secret version once no live object in its
// namespace uses it (see namespaceScan.users). One that is still used is
// reported (in.Report) or refused, and changes nothing; one another tool
// manages, or one an engineer asked to keep, is labelled retired instead.
// Deleting one that is already gone succeeds, so retries are safe. Only a
// version of a catalog target is touched: its name <secret>-<n> (or the
// original <secret>) in the target's namespace, and the target's labels on
// the object.
func (k *Kube) RetireSecret(ctx context.Context, in RetireInput) (RetireResult, error) {
	targets, err := versionTargets(k.Catalog, in.Secret)
	if err != nil {
		return RetireResult{}, err
	}
	if in.Keep {
		// A read the keep path needs for the labels alone: it is the
		// rare end of a wait an engineer cut short.
		s, err := k.Client.CoreV1().Secrets(in.Secret.Namespace).Get(ctx, in.Secret.Name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return RetireResult{}, classify(fmt.Errorf("get Secret %s: %w", in.Secret.Name, err))
		}
		if err == nil {
			if err := labelledFor(targets, s); err != nil {
				return RetireResult{}, err
			}
		}
		return k.keep(ctx, in.Secret, "kept as an engineer asked (approve --keep-old)")
	}
	scan, err := k.scan(ctx, in.Secret.Namespace)
	if err != nil {
		return RetireResult{}, classify(err)
	}
	if users := holders(scan.users(in.Secret.Name)); len(users) > 0 {
		msg := fmt.Sprintf("Secret %s is still used by %s: it was kept", in.Secret.Name, strings.Join(holderNames(users), ", "))
		switch {
		case in.Report:
			return RetireResult{UsedBy: users}, nil
		case in.StagedByRun != "":
			// Compensation: a Job or pod started on the new version
			// during the rotation ends by itself, so this is retried.
			return RetireResult{}, fmt.Errorf("%s until they end", msg)
		}
		return RetireResult{}, temporal.NewNonRetryableApplicationError(msg+"; repoint them, then delete it by hand", ErrStillInUse, nil)
	}
	s, err := k.Client.CoreV1().Secrets(in.Secret.Namespace).Get(ctx, in.Secret.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return RetireResult{}, nil
	}
	if err != nil {
		return RetireResult{}, classify(fmt.Errorf("get Secret %s: %w", in.Secret.Name, err))
	}
	// Compensation leaves alone what this run did not stage, labelled or
	// not (a Secret of that name someone else made meanwhile).
	if in.StagedByRun != "" && s.Annotations[AnnotationRunID] != in.StagedByRun {
		activity.GetLogger(ctx).Info("kept Secret not staged by this rotation", "secret", in.Secret.Name)
		return RetireResult{}, nil
	}
	if err := labelledFor(targets, s); err != nil {
		return RetireResult{}, err
	}
	if ms := managersOf(s); len(ms) > 0 {
		return k.keep(ctx, in.Secret, "managed by "+ms[0].Name+", which would recreate it")
	}
	// The UID precondition makes sure the Secret checked above is the one deleted.
	return k.deleteSecret(ctx, in.Secret, string(s.UID))
}

// keep labels a version retired instead of deleting it.
func (k *Kube) keep(ctx context.Context, ref SecretRef, why string) (RetireResult, error) {
	if err := k.setStage(ctx, ref.Namespace, ref, StageRetired, ""); err != nil {
		return RetireResult{}, err
	}
	activity.GetLogger(ctx).Info("kept Secret version, labelled retired", "secret", ref.Name, "why", why)
	return RetireResult{Kept: why}, nil
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
