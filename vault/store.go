package vault

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"strconv"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// The custom_metadata keys rotator writes on a target's path.
const (
	// LabelCurrent holds the version consumers use.
	LabelCurrent = "CURRENT"
	// LabelPending holds the version a running rotation staged.
	LabelPending = "PENDING"
	// LabelPrevious holds the version CURRENT replaced, kept through grace
	// so a rollback or a dual-key consumer can still find it.
	LabelPrevious = "PREVIOUS"
	// LabelPendingRun holds the run that staged PENDING; a retried stage
	// of the same run finds its own version by it.
	LabelPendingRun = "pending-run"
	// LabelTarget holds the catalog target that owns the path, so two
	// targets configured with the same path cannot overwrite each other.
	LabelTarget = "target"
	// LabelManagedBy marks paths rotator writes; its value is ManagedBy.
	LabelManagedBy = "managed-by"
	// ManagedBy is LabelManagedBy's value.
	ManagedBy = "rotator"
)

// DefaultMount is where Vault's dev server and most installations mount
// KV version 2.
const DefaultMount = "secret"

// Labels are the stage labels of a path: version numbers, 0 for none, and
// the run that staged the pending version.
type Labels struct {
	// Current is the version consumers use.
	Current int
	// Pending is the version a running rotation staged.
	Pending int
	// Previous is the version Current replaced.
	Previous int
	// PendingRun is the run that staged Pending.
	PendingRun string
	// Target is the catalog target that owns the path.
	Target string
}

// Store reads and writes the versions and stage labels of targets' paths
// on one KV v2 mount.
//
// A Store is safe for concurrent use; it holds no state of its own beyond
// the client.
type Store struct {
	client *vaultapi.Client
	kv     *vaultapi.KVv2
	mount  string
}

// NewStore returns a Store for the KV v2 engine mounted at mount ("" means
// DefaultMount). The client carries the address and token; Connect makes
// one.
func NewStore(c *vaultapi.Client, mount string) *Store {
	mount = strings.Trim(mount, "/")
	if mount == "" {
		mount = DefaultMount
	}
	return &Store{client: c, kv: c.KVv2(mount), mount: mount}
}

// Mount is the KV v2 mount the Store writes to.
func (s *Store) Mount() string { return s.mount }

// CheckMount verifies that the Store's mount is a KV version 2 engine, the
// way the vault CLI does (sys/internal/ui/mounts, allowed to any token with
// a capability under the mount). A preflight calls it: on a KV version 1
// mount, writes would silently land at "<mount>/data/<path>" as plain keys.
func (s *Store) CheckMount(ctx context.Context) error {
	const op = "check the mount of"
	sec, err := s.client.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/"+s.mount)
	if err != nil {
		err = call{op: op, path: s.mount, capability: "read", apiPath: s.mount + "/metadata/<path>"}.fail(err)
		if IsPermissionDenied(err) {
			return newError(kindPermission, op, s.mount,
				"nothing is mounted there, or the token has no capability under it: enable KV version 2 (vault secrets enable -path=%s kv-v2) or grant the policy access to %s/data/ and %s/metadata/",
				s.mount, s.mount, s.mount)
		}
		return err
	}
	if sec == nil || sec.Data == nil {
		return newError(kindNotFound, op, s.mount, "nothing is mounted there: enable KV version 2 (vault secrets enable -path=%s kv-v2) or fix the mount", s.mount)
	}
	typ, _ := sec.Data["type"].(string)
	opts, _ := sec.Data["options"].(map[string]any)
	version, _ := opts["version"].(string)
	if typ != "kv" || version != "2" {
		what := typ
		if typ == "kv" {
			what = "kv version " + cmp.Or(version, "1")
		}
		return newError(kindInvalid, op, s.mount, "the mount is %s, not KV version 2: use a kv-v2 mount (vault kv enable-versioning %s upgrades a KV version 1 mount)", what, s.mount)
	}
	return nil
}

// full is the mount-qualified path, as messages name it.
func (s *Store) full(path string) string { return s.mount + "/" + path }

func (s *Store) dataCall(op, path, capability string, secrets map[string]string) call {
	return call{op: op, path: s.full(path), capability: capability, apiPath: s.mount + "/data/" + path, secrets: secrets}
}

func (s *Store) metadataCall(op, path, capability string) call {
	return call{op: op, path: s.full(path), capability: capability, apiPath: s.mount + "/metadata/" + path}
}

// state is what one metadata read tells: the labels, the latest version
// number, and the raw metadata for version deletion times.
type state struct {
	labels    Labels
	current   int
	managedBy string
	meta      *vaultapi.KVMetadata // nil when the path does not exist
}

func (s *Store) state(ctx context.Context, op, path string) (state, error) {
	c := s.metadataCall(op, path, "read")
	if err := CheckPath(path); err != nil {
		return state{}, newError(kindInvalid, op, s.full(path), "%s", err.Error())
	}
	md, err := s.kv.GetMetadata(ctx, path)
	if errors.Is(err, vaultapi.ErrSecretNotFound) {
		return state{}, nil
	}
	if err != nil {
		return state{}, c.fail(err)
	}
	st := state{current: md.CurrentVersion, meta: md}
	custom := md.CustomMetadata
	for key, dst := range map[string]*int{LabelCurrent: &st.labels.Current, LabelPending: &st.labels.Pending, LabelPrevious: &st.labels.Previous} {
		v, _ := custom[key].(string)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return state{}, newError(kindInvalid, op, s.full(path),
				"custom_metadata %s is %q, not a version number: set it to the right version or remove it (vault kv metadata patch -mount=%s -custom-metadata=%s=<version> %s)",
				key, truncate(v), s.mount, key, path)
		}
		*dst = n
	}
	st.labels.PendingRun, _ = custom[LabelPendingRun].(string)
	st.labels.Target, _ = custom[LabelTarget].(string)
	st.managedBy, _ = custom[LabelManagedBy].(string)
	return st, nil
}

// Labels returns the stage labels of path and its latest version number
// (KV metadata's current_version, which counts every write, labelled or
// not). A path that does not exist has zero Labels and version 0, and no
// error: the first rotation creates it.
func (s *Store) Labels(ctx context.Context, path string) (Labels, int, error) {
	st, err := s.state(ctx, "read labels of", path)
	return st.labels, st.current, err
}

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

// noVersion explains a write Vault answered without a version: what a KV
// version 1 mount does.
func (s *Store) noVersion(op, path string) error {
	return newError(kindInvalid, op, s.full(path),
		"Vault answered the write without a version number: %q is not a KV version 2 mount; use one (vault kv enable-versioning %s upgrades a KV version 1 mount)", s.mount, s.mount)
}

// owned refuses a path that another target or tool claims, so two catalog
// entries pointing at one path fail loudly instead of mixing versions.
func (s *Store) owned(op, path string, st state, target string) error {
	if st.managedBy != "" && st.managedBy != ManagedBy {
		return newError(kindInvalid, op, s.full(path),
			"custom_metadata %s is %q: another tool manages this path; give the target a path of its own", LabelManagedBy, truncate(st.managedBy))
	}
	if st.labels.Target != "" && st.labels.Target != target {
		return newError(kindInvalid, op, s.full(path),
			"the path belongs to target %q (custom_metadata %s), not %q: give each target its own vault path in the catalog", truncate(st.labels.Target), LabelTarget, target)
	}
	return nil
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

func toAny(data map[string]string) map[string]any {
	out := make(map[string]any, len(data))
	for k, v := range data {
		out[k] = v
	}
	return out
}

// labelValue is a version's custom_metadata value; nil removes the key
// (JSON merge patch), which is how "none" is written.
func labelValue(version int) any {
	if version == 0 {
		return nil
	}
	return strconv.Itoa(version)
}

// label shows a version in a message.
func label(version int) string {
	if version == 0 {
		return "none"
	}
	return strconv.Itoa(version)
}

// truncate keeps values read from Vault short in messages.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
