package activities

import (
	"context"
	"fmt"
	"slices"

	"go.temporal.io/sdk/temporal"
)

// VerifyConsumers proves the promotion took: every consumer's template
// references the new version, every Ingress serves it, and none of them
// the old one. It reads the whole namespace, so that a workload created
// during the rotation, or one the catalog's consumers leave out, that
// still uses the old version is reported too. When the rollout wait
// already checked the consumers' templates and the namespace
// (CheckedInRollout), only Ingresses are left to check.
func (k *Kube) VerifyConsumers(ctx context.Context, in VerifyInput) (AwaitResult, error) {
	var res AwaitResult
	if err := checkNamespace(k.Catalog, "", in.Namespace); err != nil {
		return res, err
	}
	if in.CheckedInRollout && len(in.Ingresses) == 0 {
		return res, nil
	}
	scan, err := k.scan(ctx, in.Namespace)
	if err != nil {
		return res, classify(err)
	}
	onNew := refsOf(scan.users(in.New.Name))
	if !in.CheckedInRollout {
		res.StillOnOld = holders(scan.users(in.Old.Name))
		for _, c := range in.Consumers {
			if !slices.Contains(onNew, c) {
				return res, temporal.NewNonRetryableApplicationError(
					fmt.Sprintf("%s does not reference the new Secret %s", c, in.New.Name), ErrConflict, nil)
			}
		}
	}
	for _, name := range in.Ingresses {
		ing := Workload{Kind: "Ingress", Name: name}
		if slices.ContainsFunc(scan.users(in.Old.Name), func(u use) bool { return u.ref == ing }) {
			return res, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s still serves the old Secret %s: repoint it", ing, in.Old.Name), ErrStillInUse, nil)
		}
		if !slices.Contains(onNew, ing) {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s does not serve the new Secret %s", ing, in.New.Name), ErrConflict, nil)
		}
	}
	return res, nil
}
