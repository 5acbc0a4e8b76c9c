package vault

import (
	"context"
	"errors"
	"maps"
	"strconv"

	vaultapi "github.com/hashicorp/vault/api"
)

// StagePending records data as a new version of path and labels it PENDING
// for run.
//
// The write is a check-and-set against the version Labels observed (0 when
// the path does not exist, so two first writes cannot both succeed); a
// writer in between makes it fail with an error for which IsConflict is
// true. It then sets cas_required on the path, so later writers must use
// check-and-set too, and moves the labels.
//
// It is idempotent per run: when PENDING was staged by run already, it
// writes nothing and returns that version and its stored data, so a retried
// activity puts the same material into Kubernetes as the first attempt.
// PENDING staged by another run belongs to a run that ended without
// rolling back (one rotation per target runs at a time); the new run takes
// the label over, and that version stays in the history unlabelled.
//
// A crash between the write and the label leaves one unlabelled version
// that nothing used; the retry writes a fresh one.
func (s *Store) StagePending(ctx context.Context, path, target, run string, data map[string]string) (version int, stored map[string]string, err error) {
	const op = "stage pending version of"
	full := s.full(path)
	switch {
	case target == "":
		return 0, nil, newError(kindInvalid, op, full, "the target name is empty: pass the catalog target that owns the path")
	case run == "":
		return 0, nil, newError(kindInvalid, op, full, "the run ID is empty: pass the rotation's workflow run ID")
	case len(data) == 0:
		return 0, nil, newError(kindInvalid, op, full, "no data to write: the new material is empty")
	}
	for k := range data {
		if k == "" {
			return 0, nil, newError(kindInvalid, op, full, "the data has an empty key: every value needs a name")
		}
	}
	st, err := s.state(ctx, op, path)
	if err != nil {
		return 0, nil, err
	}
	if err := s.owned(op, path, st, target); err != nil {
		return 0, nil, err
	}
	if st.labels.PendingRun == run && st.labels.Pending != 0 {
		stored, err := s.read(ctx, op, path, st.labels.Pending)
		if err != nil {
			return 0, nil, err
		}
		return st.labels.Pending, stored, nil
	}

	put := s.dataCall(op, path, "update", data)
	if st.current == 0 {
		put.capability = "create"
	}
	written, err := s.kv.Put(ctx, path, toAny(data), vaultapi.WithCheckAndSet(st.current))
	if err != nil && !errors.Is(err, vaultapi.ErrSecretNotFound) {
		return 0, nil, put.fail(err)
	}
	if written == nil || written.VersionMetadata == nil {
		return 0, nil, s.noVersion(op, path)
	}
	version = written.VersionMetadata.Version

	casRequired := true
	if err := s.kv.PatchMetadata(ctx, path, vaultapi.KVMetadataPatchInput{
		CASRequired: &casRequired,
		CustomMetadata: map[string]any{
			LabelPending:    strconv.Itoa(version),
			LabelPendingRun: run,
			LabelTarget:     target,
			LabelManagedBy:  ManagedBy,
		},
	}); err != nil {
		return 0, nil, s.metadataCall(op, path, "patch").fail(err)
	}
	return version, maps.Clone(data), nil
}

// Promote makes version CURRENT: PREVIOUS becomes the old CURRENT, PENDING
// and pending-run are cleared. It is idempotent: when version is already
// CURRENT and not PENDING, it changes nothing. Before writing it checks
// that version is PENDING (or CURRENT); anything else means another run
// moved the labels, and it fails with an error for which IsConflict is
// true, naming what it found.
func (s *Store) Promote(ctx context.Context, path string, version int) error {
	const op = "promote version of"
	if version <= 0 {
		return newError(kindInvalid, op, s.full(path), "version %d is not a KV version: pass the version StagePending returned", version)
	}
	st, err := s.state(ctx, op, path)
	if err != nil {
		return err
	}
	l := st.labels
	switch {
	case l.Current == version && l.Pending != version:
		return nil
	case l.Pending != version && l.Current != version:
		return newError(kindConflict, op, s.full(path),
			"expected version %d to be PENDING, found PENDING=%s (run %q) CURRENT=%s PREVIOUS=%s: another run moved the labels; check which rotation of the target is running",
			version, label(l.Pending), l.PendingRun, label(l.Current), label(l.Previous))
	}
	patch := map[string]any{LabelPending: nil, LabelPendingRun: nil}
	if l.Current != version {
		patch[LabelCurrent] = strconv.Itoa(version)
		patch[LabelPrevious] = labelValue(l.Current)
	}
	if err := s.kv.PatchMetadata(ctx, path, vaultapi.KVMetadataPatchInput{CustomMetadata: patch}); err != nil {
		return s.metadataCall(op, path, "patch").fail(err)
	}
	return nil
}

// Rollback undoes a failed rotation's labels: when version is CURRENT,
// CURRENT goes back to restoreCurrent and PREVIOUS to restorePrevious (the
// labels the rotation found before promoting, 0 to remove one); when it is
// PENDING, PENDING and pending-run are cleared. Labels pointing elsewhere
// are left alone: they belong to another run. The failed version is then
// soft-deleted (KV v2 delete, undoable with `vault kv undelete`) so nobody
// mistakes it for live material, unless a label still points at it. It is
// idempotent.
func (s *Store) Rollback(ctx context.Context, path string, version, restoreCurrent, restorePrevious int) error {
	const op = "roll back version of"
	switch {
	case version <= 0:
		return newError(kindInvalid, op, s.full(path), "version %d is not a KV version: pass the version the rotation staged", version)
	case restoreCurrent < 0 || restorePrevious < 0:
		return newError(kindInvalid, op, s.full(path), "versions to restore must be 0 (none) or positive, got CURRENT=%d PREVIOUS=%d", restoreCurrent, restorePrevious)
	case restoreCurrent == version || restorePrevious == version:
		return newError(kindInvalid, op, s.full(path), "cannot restore the failed version %d as CURRENT or PREVIOUS: pass the labels found before the rotation", version)
	}
	st, err := s.state(ctx, op, path)
	if err != nil {
		return err
	}
	if st.meta == nil {
		return nil
	}
	l := st.labels
	patch := map[string]any{}
	if l.Current == version {
		patch[LabelCurrent] = labelValue(restoreCurrent)
		patch[LabelPrevious] = labelValue(restorePrevious)
		l.Current, l.Previous = restoreCurrent, restorePrevious
	}
	if l.Pending == version {
		patch[LabelPending] = nil
		patch[LabelPendingRun] = nil
		l.Pending = 0
	}
	if len(patch) > 0 {
		if err := s.kv.PatchMetadata(ctx, path, vaultapi.KVMetadataPatchInput{CustomMetadata: patch}); err != nil {
			return s.metadataCall(op, path, "patch").fail(err)
		}
	}
	if l.Current == version || l.Previous == version || l.Pending == version {
		return nil
	}
	v, ok := st.meta.Versions[strconv.Itoa(version)]
	if !ok || v.Destroyed || !v.DeletionTime.IsZero() {
		return nil
	}
	if err := s.kv.DeleteVersions(ctx, path, []int{version}); err != nil {
		c := s.dataCall(op, path, "update", nil)
		c.apiPath = s.mount + "/delete/" + path
		return c.fail(err)
	}
	return nil
}
