package activities

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// VerifyConsumers proves the promotion took: every consumer's template
// references the new version and none the old. A workload created during
// the rotation that still references the old version is reported too.
// When the rollout wait already checked the consumers' templates
// (CheckedInRollout), they are not read again: the namespace-wide check
// for stale references is then left to retire, which runs it anyway
// before it deletes the old version.
func (k *Kube) VerifyConsumers(ctx context.Context, in VerifyInput) error {
	var current []Workload
	if !in.CheckedInRollout {
		all, err := k.workloads().list(ctx, in.Namespace)
		if err != nil {
			return classify(err)
		}
		var stale []Workload
		for _, w := range all {
			if len(secretRefPaths(&w.template.Spec, in.Old.Name)) > 0 {
				stale = append(stale, w.ref)
			}
			if len(secretRefPaths(&w.template.Spec, in.New.Name)) > 0 {
				current = append(current, w.ref)
			}
		}
		if len(stale) > 0 {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s still reference%s the old Secret %s: add %s to the target's consumers or repoint it",
					joinWorkloads(stale), plural(len(stale)), in.Old.Name, joinWorkloads(stale)), ErrStillInUse, nil)
		}
	}
	if len(in.Ingresses) > 0 {
		served, err := (ingresses{k.Client}).serving(ctx, in.Namespace, in.Old.Name, in.New.Name)
		if err != nil {
			return err
		}
		if stale := served[in.Old.Name]; len(stale) > 0 {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("ingress %s still serve%s the old Secret %s: repoint it", strings.Join(stale, ", "), plural(len(stale)), in.Old.Name), ErrStillInUse, nil)
		}
		for _, name := range in.Ingresses {
			if !slices.Contains(served[in.New.Name], name) {
				return temporal.NewNonRetryableApplicationError(fmt.Sprintf("ingress/%s does not serve the new Secret %s", name, in.New.Name), ErrConflict, nil)
			}
		}
	}
	if in.CheckedInRollout {
		return nil
	}
	for _, c := range in.Consumers {
		if !slices.Contains(current, c) {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s does not reference the new Secret %s", c, in.New.Name), ErrConflict, nil)
		}
	}
	return nil
}
