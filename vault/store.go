package vault

import (
	"cmp"
	"context"
	"errors"
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
