package activities

import (
	"context"
	"errors"

	vaultapi "github.com/hashicorp/vault/api"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"rotator/catalog"
	"rotator/vault"
)

// Vault moves the stage labels of targets whose versions are recorded in
// Vault KV v2: PENDING at stage, CURRENT and PREVIOUS at promote, and back
// again at compensation.
type Vault struct {
	Client *vaultapi.Client
	// Catalog holds the only paths the labels are moved on.
	Catalog *catalog.Catalog
}

// record writes the material of a new version to the target's Vault path
// as a new KV v2 version labelled PENDING, and returns the version and the
// material Vault holds: on a retry of the same run, what the first attempt
// wrote, so Kubernetes and Vault never disagree.
func (k *Kube) record(ctx context.Context, p Plan, run string, data map[string][]byte) (int, map[string][]byte, error) {
	version, stored, err := vault.NewStore(k.Vault, p.Vault.Mount).StagePending(ctx, p.Vault.Path, p.Target, run, toStrings(data))
	if err != nil {
		return 0, nil, vaultError(err)
	}
	return version, toBytes(stored), nil
}

// PromoteVersion labels the version CURRENT and the one it replaces
// PREVIOUS, and returns the labels it found, which compensation restores.
func (v *Vault) PromoteVersion(ctx context.Context, in VaultInput) (VaultLabels, error) {
	if _, err := checkVault(v.Catalog, in.Vault); err != nil {
		return VaultLabels{}, err
	}
	store := vault.NewStore(v.Client, in.Vault.Mount)
	found, _, err := store.Labels(ctx, in.Vault.Path)
	if err != nil {
		return VaultLabels{}, vaultError(err)
	}
	prior := VaultLabels{Current: found.Current, Pending: found.Pending, Previous: found.Previous}
	if found.Current == in.Version {
		// A retry after the labels moved: what this version replaced is
		// PREVIOUS now.
		prior = VaultLabels{Current: found.Previous}
	}
	if err := store.Promote(ctx, in.Vault.Path, in.Version); err != nil {
		return VaultLabels{}, vaultError(err)
	}
	activity.GetLogger(ctx).Info("labelled Vault version CURRENT", "mount", in.Vault.Mount, "path", in.Vault.Path,
		"version", in.Version, "previous", prior.Current)
	return prior, nil
}

// RollbackVersion undoes stage and promote in Vault: the labels go back to
// what promote found and the failed version is soft-deleted, so that it
// is never taken for live material.
func (v *Vault) RollbackVersion(ctx context.Context, in VaultInput) error {
	if _, err := checkVault(v.Catalog, in.Vault); err != nil {
		return err
	}
	store := vault.NewStore(v.Client, in.Vault.Mount)
	if err := store.Rollback(ctx, in.Vault.Path, in.Version, in.Restore.Current, in.Restore.Previous); err != nil {
		return vaultError(err)
	}
	activity.GetLogger(ctx).Info("restored Vault labels", "mount", in.Vault.Mount, "path", in.Vault.Path,
		"failed_version", in.Version, "current", in.Restore.Current)
	return nil
}

// vaultError keeps outages retryable and makes refusals and conflicts
// permanent, with the fix.
func vaultError(err error) error {
	switch {
	case err == nil:
		return nil
	case vault.IsConflict(err):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrConflict, err)
	case vault.IsUnavailable(err):
		return err
	}
	var re *vaultapi.ResponseError
	if errors.As(err, &re) && (re.StatusCode == 403 || re.StatusCode == 400 || re.StatusCode == 404) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, err)
	}
	return err
}
