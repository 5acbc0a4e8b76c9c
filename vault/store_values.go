package vault

import (
	"context"
	"errors"
	"strconv"

	vaultapi "github.com/hashicorp/vault/api"
)

// Read returns the data of one version of path; version 0 means the latest.
// A version that does not exist, or was deleted or destroyed, is an error
// for which IsNotFound is true.
func (s *Store) Read(ctx context.Context, path string, version int) (map[string]string, error) {
	const op = "read"
	if err := CheckPath(path); err != nil {
		return nil, newError(kindInvalid, op, s.full(path), "%s", err.Error())
	}
	if version < 0 {
		return nil, newError(kindInvalid, op, s.full(path), "version %d is not a KV version: pass 0 for the latest", version)
	}
	return s.read(ctx, op, path, version)
}

func (s *Store) read(ctx context.Context, op, path string, version int) (map[string]string, error) {
	var (
		sec *vaultapi.KVSecret
		err error
	)
	if version == 0 {
		sec, err = s.kv.Get(ctx, path)
	} else {
		sec, err = s.kv.GetVersion(ctx, path, version)
	}
	which := "the latest version"
	if version != 0 {
		which = "version " + strconv.Itoa(version)
	}
	if errors.Is(err, vaultapi.ErrSecretNotFound) {
		return nil, newError(kindNotFound, op, s.full(path), "%s does not exist", which)
	}
	if err != nil {
		return nil, s.dataCall(op, path, "read", nil).fail(err)
	}
	if sec == nil || sec.Data == nil {
		if sec != nil && sec.VersionMetadata != nil {
			if sec.VersionMetadata.Destroyed {
				return nil, newError(kindNotFound, op, s.full(path), "%s was destroyed", which)
			}
			if !sec.VersionMetadata.DeletionTime.IsZero() {
				return nil, newError(kindNotFound, op, s.full(path), "%s was deleted at %s (vault kv undelete restores it)",
					which, sec.VersionMetadata.DeletionTime.UTC().Format("2006-01-02T15:04:05Z"))
			}
		}
		return nil, newError(kindNotFound, op, s.full(path), "%s holds no data", which)
	}
	out := make(map[string]string, len(sec.Data))
	for k, v := range sec.Data {
		str, ok := v.(string)
		if !ok {
			// Name the key, never the value.
			return nil, newError(kindInvalid, op, s.full(path), "%s: key %q holds a %T, not a string: rotator stores strings only", which, k, v)
		}
		out[k] = str
	}
	return out, nil
}

// WriteStaged stores newly obtained keys in the staging area of path
// (StagedPath), where the rotation picks them up, and returns the version
// written. The staging area is last-writer-wins: an engineer who staged the
// wrong keys stages again.
func (s *Store) WriteStaged(ctx context.Context, path string, data map[string]string) (int, error) {
	const op = "stage keys at"
	staged := StagedPath(path)
	if err := CheckPath(path); err != nil {
		return 0, newError(kindInvalid, op, s.full(staged), "%s", err.Error())
	}
	if len(data) == 0 {
		return 0, newError(kindInvalid, op, s.full(staged), "no keys to stage")
	}
	written, err := s.kv.Put(ctx, staged, toAny(data))
	if err != nil && !errors.Is(err, vaultapi.ErrSecretNotFound) {
		return 0, s.dataCall(op, staged, "create", data).fail(err)
	}
	if written == nil || written.VersionMetadata == nil {
		return 0, s.noVersion(op, staged)
	}
	return written.VersionMetadata.Version, nil
}

// ReadStaged returns the keys staged for path, and false when none are
// staged (nothing written, or deleted since).
func (s *Store) ReadStaged(ctx context.Context, path string) (map[string]string, bool, error) {
	const op = "read staged keys at"
	staged := StagedPath(path)
	if err := CheckPath(path); err != nil {
		return nil, false, newError(kindInvalid, op, s.full(staged), "%s", err.Error())
	}
	data, err := s.read(ctx, op, staged, 0)
	if IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return data, true, nil
}

// DeleteStaged removes the staging area of path with every version and its
// metadata, so no copy of the staged keys stays behind once the rotation
// has recorded them. Deleting nothing is not an error.
func (s *Store) DeleteStaged(ctx context.Context, path string) error {
	const op = "delete staged keys at"
	staged := StagedPath(path)
	if err := CheckPath(path); err != nil {
		return newError(kindInvalid, op, s.full(staged), "%s", err.Error())
	}
	if err := s.kv.DeleteMetadata(ctx, staged); err != nil {
		return s.metadataCall(op, staged, "delete").fail(err)
	}
	return nil
}
