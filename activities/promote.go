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
	return res, k.AwaitRollout(ctx, AwaitInput{Namespace: in.Namespace, Rollouts: res.Rollouts})
}

// Promote repoints every reference in each consumer's pod template from one
// Secret to the other, one patch per workload, then relabels the two
// versions (To current, From previous). Workloads already on To are left
// alone, so a retry or a compensation that finds nothing to do is a no-op.
func (k *Kube) Promote(ctx context.Context, in PromoteInput) (PromoteResult, error) {
	wl := k.workloads()
	var res PromoteResult
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
		if s, ok := seen[c]; ok && len(s.Paths) > 0 {
			r, err := k.promoteSeen(ctx, in, s)
			if err == nil {
				res.Rollouts = append(res.Rollouts, r)
				continue
			}
			if !isTestFailed(err) && !apierrors.IsNotFound(err) {
				return res, classify(fmt.Errorf("repoint %s from %s to %s: %w", c, in.From.Name, in.To.Name, err))
			}
			// Changed or gone since preflight: read it and decide afresh.
		}
		w, err := wl.get(ctx, in.Namespace, c)
		if apierrors.IsNotFound(err) {
			return res, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s was deleted during the rotation: restore it or remove it from the target's consumers", c), ErrBadInput, err)
		}
		if err != nil {
			return res, classify(fmt.Errorf("get %s: %w", c, err))
		}
		patch, n, err := repointPatch("/spec/template", &w.template.Spec, w.meta.GetAnnotations(), in.From.Name, in.To.Name, in.Reason)
		if err != nil {
			return res, err
		}
		if n == 0 {
			if len(secretRefPaths(&w.template.Spec, in.To.Name)) == 0 {
				return res, temporal.NewNonRetryableApplicationError(
					fmt.Sprintf("%s references neither %s nor %s any more: someone edited it during the rotation", c, in.From.Name, in.To.Name),
					ErrConflict, nil)
			}
			res.Rollouts = append(res.Rollouts, Rollout{Workload: c, Generation: w.meta.GetGeneration(), From: in.From.Name, To: in.To.Name})
			continue
		}
		patched, err := wl.patch(ctx, in.Namespace, c, patch)
		if err != nil {
			// A failed test op (a concurrent edit) is an Invalid error;
			// the retry re-reads the workload and builds a fresh patch.
			return res, classify(fmt.Errorf("repoint %s from %s to %s: %w", c, in.From.Name, in.To.Name, err), isTestFailed)
		}
		activity.GetLogger(ctx).Info("repointed workload", "workload", c.String(), "from", in.From.Name,
			"to", in.To.Name, "references", n, "generation", patched.meta.GetGeneration())
		res.Rollouts = append(res.Rollouts, Rollout{Workload: c, Generation: patched.meta.GetGeneration(), Patched: true,
			ResourceVersion: patched.meta.GetResourceVersion(), From: in.From.Name, To: in.To.Name})
	}
	for _, name := range in.Ingresses {
		n, err := (ingresses{k.Client}).repoint(ctx, in.Namespace, name, in.From.Name, in.To.Name, in.Reason)
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
	activity.GetLogger(ctx).Info("repointed workload", "workload", s.Workload.String(), "from", in.From.Name,
		"to", in.To.Name, "references", len(s.Paths), "generation", patched.meta.GetGeneration())
	return Rollout{Workload: s.Workload, Generation: patched.meta.GetGeneration(), Patched: true,
		ResourceVersion: patched.meta.GetResourceVersion(), From: in.From.Name, To: in.To.Name}, nil
}

// setStage labels a Secret version with its stage. Given the target, it
// also writes the version labels, which adopts a Secret rotator did not
// create (the unversioned original becomes version 1) in the same patch.
func (k *Kube) setStage(ctx context.Context, ns string, ref SecretRef, stage, target string) error {
	meta := map[string]any{"labels": map[string]string{LabelStage: stage}}
	if target != "" {
		meta["labels"] = map[string]string{LabelStage: stage, LabelManagedBy: ManagedByValue, LabelTarget: target,
			LabelVersion: strconv.Itoa(ref.Version)}
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
