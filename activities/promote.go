package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// PromoteAndAwait is Promote followed by AwaitRollout, as one activity:
// a rotation without a Vault record has nothing to do between the two,
// so it spares a workflow task and an activity task through Temporal.
// A retry promotes again, which finds the consumers on the new version
// and only waits.
func (k *Kube) PromoteAndAwait(ctx context.Context, in PromoteInput) (PromoteResult, error) {
	res, err := k.Promote(ctx, in)
	if err != nil {
		return res, err
	}
	aw := AwaitInput{Namespace: in.Namespace, Rollouts: res.Rollouts, Target: in.Target}
	if in.CheckOld {
		aw.Old = in.From.Name
	}
	awaited, err := k.AwaitRollout(ctx, aw)
	res.StillOnOld = awaited.StillOnOld
	return res, err
}

// Promote repoints every reference in each consumer's pod template from one
// Secret to the other, one patch per workload, then relabels the two
// versions (To current, From previous). Workloads already on To are left
// alone, so a retry or a compensation that finds nothing to do is a no-op;
// a consumer deleted since preflight is skipped and reported: nothing of
// it uses either version any more.
func (k *Kube) Promote(ctx context.Context, in PromoteInput) (PromoteResult, error) {
	var res PromoteResult
	if _, err := checkPromote(k.Catalog, in); err != nil {
		return res, err
	}
	// What preflight saw is used on the first attempt only: after that the
	// workload may have been patched by the attempt before.
	var seen map[Workload]Seen
	if activity.GetInfo(ctx).Attempt <= 1 {
		seen = make(map[Workload]Seen, len(in.Seen))
		for _, s := range in.Seen {
			seen[s.Workload] = s
		}
	}
	for _, c := range in.Consumers {
		r, err := k.repoint(ctx, in, c, seen)
		if apierrors.IsNotFound(err) {
			activity.GetLogger(ctx).Warn("consumer deleted during the rotation; skipped", "workload", c.String())
			res.Deleted = append(res.Deleted, c)
			continue
		}
		if err != nil {
			return res, err
		}
		res.Rollouts = append(res.Rollouts, r)
	}
	for _, name := range in.Ingresses {
		n, err := (ingresses{k.Client}).repoint(ctx, in.Namespace, name, in.From.Name, in.To.Name, in.Reason)
		if apierrors.IsNotFound(err) {
			activity.GetLogger(ctx).Warn("ingress deleted during the rotation; skipped", "ingress", name)
			res.Deleted = append(res.Deleted, Workload{Kind: "Ingress", Name: name})
			continue
		}
		if err != nil {
			return res, err
		}
		if n > 0 {
			activity.GetLogger(ctx).Info("repointed ingress", "ingress", name, "from", in.From.Name, "to", in.To.Name, "entries", n)
		}
	}
	if err := k.setStage(ctx, in.Namespace, in.To, StageCurrent, in.Target); err != nil {
		return res, err
	}
	if err := k.setStage(ctx, in.Namespace, in.From, StagePrevious, in.Target); err != nil {
		return res, err
	}
	return res, nil
}

// repoint moves one consumer from From to To: with the patch built from
// what preflight saw of it, or, when it changed since (or on a retry),
// from what it is now. A consumer that no longer exists is a NotFound
// error for the caller to skip.
func (k *Kube) repoint(ctx context.Context, in PromoteInput, c Workload, seen map[Workload]Seen) (Rollout, error) {
	if s, ok := seen[c]; ok && len(s.Paths) > 0 {
		r, err := k.promoteSeen(ctx, in, s)
		if err == nil {
			return r, nil
		}
		if !isTestFailed(err) && !apierrors.IsNotFound(err) {
			return Rollout{}, classify(fmt.Errorf("repoint %s from %s to %s: %w", c, in.From.Name, in.To.Name, err))
		}
		// Changed or gone since preflight: read it and decide afresh.
	}
	wl := k.workloads()
	w, err := wl.get(ctx, in.Namespace, c)
	if apierrors.IsNotFound(err) {
		return Rollout{}, err
	}
	if err != nil {
		return Rollout{}, classify(fmt.Errorf("get %s: %w", c, err))
	}
	patch, n, err := repointPatch(templatePath(c.Kind), &w.template.Spec, w.meta.GetAnnotations(), in.From.Name, in.To.Name, in.Reason)
	if err != nil {
		return Rollout{}, err
	}
	if n == 0 {
		if len(secretRefPaths(&w.template.Spec, in.To.Name)) == 0 {
			return Rollout{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s references neither %s nor %s any more: someone edited it during the rotation", c, in.From.Name, in.To.Name),
				ErrConflict, nil)
		}
		return Rollout{Workload: c, Generation: w.meta.GetGeneration(), From: in.From.Name, To: in.To.Name}, nil
	}
	patched, err := wl.patch(ctx, in.Namespace, c, patch)
	if apierrors.IsNotFound(err) {
		return Rollout{}, err
	}
	if err != nil {
		// A failed test op (a concurrent edit) is an Invalid error;
		// the retry re-reads the workload and builds a fresh patch.
		return Rollout{}, classify(fmt.Errorf("repoint %s from %s to %s: %w", c, in.From.Name, in.To.Name, err), isTestFailed)
	}
	return k.repointed(ctx, in, patched, n)
}

// promoteSeen repoints a consumer with the patch built from what
// preflight saw of it; the patch fails as a failed test if the workload
// changed since.
func (k *Kube) promoteSeen(ctx context.Context, in PromoteInput, s Seen) (Rollout, error) {
	patch, err := seenPatch(s, in.From.Name, in.To.Name, in.Reason)
	if err != nil {
		return Rollout{}, err
	}
	patched, err := k.workloads().patch(ctx, in.Namespace, s.Workload, patch)
	if err != nil {
		return Rollout{}, err
	}
	return k.repointed(ctx, in, patched, len(s.Paths))
}

// repointed logs a patched consumer and returns its rollout. A CronJob has
// none to wait for (its next Job starts from the new template), so its
// template is checked here, on the object the patch returned.
func (k *Kube) repointed(ctx context.Context, in PromoteInput, patched workload, refs int) (Rollout, error) {
	activity.GetLogger(ctx).Info("repointed workload", "workload", patched.ref.String(), "from", in.From.Name,
		"to", in.To.Name, "references", refs, "generation", patched.meta.GetGeneration())
	if !rollsOut(patched.ref.Kind) {
		if err := verifyTemplate(patched.obj, patched.ref, in.From.Name, in.To.Name); err != nil {
			return Rollout{}, err
		}
	}
	return Rollout{Workload: patched.ref, Generation: patched.meta.GetGeneration(), Patched: true,
		ResourceVersion: patched.meta.GetResourceVersion(), From: in.From.Name, To: in.To.Name}, nil
}

// setStage labels a Secret version with its stage. Given the target, it
// also writes the version labels, which adopts a Secret rotator did not
// create (the unversioned original becomes version 1) in the same patch;
// the managed-by label only where no other tool claims the Secret, whose
// own label (Helm checks it before every upgrade) must stay.
func (k *Kube) setStage(ctx context.Context, ns string, ref SecretRef, stage, target string) error {
	meta := map[string]any{"labels": map[string]string{LabelStage: stage}}
	if target != "" {
		l := map[string]string{LabelStage: stage, LabelTarget: target, LabelVersion: strconv.Itoa(ref.Version)}
		if ref.ManagedBy == "" {
			l[LabelManagedBy] = ManagedByValue
		}
		meta["labels"] = l
		if ref.Fingerprint != "" {
			meta["annotations"] = map[string]string{AnnotationFingerprint: ref.Fingerprint}
		}
	}
	patch, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return fmt.Errorf("encode label patch: %w", err)
	}
	_, err = k.Client.CoreV1().Secrets(ns).Patch(ctx, ref.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: ManagedByValue})
	if err != nil && !apierrors.IsNotFound(err) {
		return classify(fmt.Errorf("label Secret %s %s=%s: %w", ref.Name, LabelStage, stage, err))
	}
	return nil
}
