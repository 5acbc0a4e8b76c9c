// Package activities holds the side effects of a rotation: structs that hold
// their clients and expose one method per step. Secret material is generated
// and read here only; what leaves an activity is a reference (namespace, name,
// version) and a short fingerprint, never a value.
package activities

import (
	"strings"
	"time"

	"rotator/catalog"
)

// Labels and annotations rotator puts on the objects it manages.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "rotator"
	LabelTarget    = "rotator.dev/target"
	LabelVersion   = "rotator.dev/version"
	LabelStage     = "rotator.dev/stage"
	// AnnotationRunID marks what a rotation created with its key (see
	// rotationKey).
	AnnotationRunID = "rotator.dev/created-by-run"
	// AnnotationReplaces names the version a staged version replaces, so
	// a reset run knows where its rotation started.
	AnnotationReplaces = "rotator.dev/replaces"
	// AnnotationFingerprint records the fingerprint so status and
	// idempotent retries need not read the value.
	AnnotationFingerprint = "rotator.dev/fingerprint"
	// AnnotationVaultVersion records the KV v2 version that holds the
	// same material.
	AnnotationVaultVersion = "rotator.dev/vault-version"
	// AnnotationKeyIDs records, on a version of an apikeys target, the
	// provider ids of the keys it holds, as preflight found them through
	// the admin APIs: JSON, provider name to key id.
	AnnotationKeyIDs = "rotator.dev/key-ids"
	// AnnotationReplacedKeyIDs carries AnnotationKeyIDs of the version a
	// version replaced: the only key ids its retire may revoke.
	AnnotationReplacedKeyIDs = "rotator.dev/replaced-key-ids"
	// AnnotationChangeCause is what `kubectl rollout history` shows.
	AnnotationChangeCause = "kubernetes.io/change-cause"
)

// Stages of a Secret version, after AWS Secrets Manager's staging labels.
const (
	StagePending  = "pending"
	StageCurrent  = "current"
	StagePrevious = "previous"
	// StageStaged marks the short-lived Secret of keys an engineer staged.
	StageStaged = "staged"
	// StageRetired marks a version that retire kept: another tool manages
	// it, or an engineer asked to keep it (approve --keep-old).
	StageRetired = "retired"
)

// PreviousKey is the data key of a dual-key JWT Secret that carries the
// key it replaced.
const PreviousKey = "previous"

// SecretRef points at one version of a Secret. It never holds the value.
type SecretRef struct {
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	Version     int    `json:"version"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Username is the login a database Secret carries (not a secret).
	Username string `json:"username,omitempty"`
	// VaultVersion is the KV v2 version that records this version, when
	// the target has a Vault path.
	VaultVersion int `json:"vaultVersion,omitempty"`
	// UID is the Secret's UID when it was read: retire deletes with it as
	// a precondition, so it never deletes a Secret recreated since under
	// the same name.
	UID string `json:"uid,omitempty"`
	// TLS says it is a kubernetes.io/tls Secret, which Ingresses may serve.
	TLS bool `json:"tls,omitempty"`
	// ManagedBy names the other tools that manage the Secret (see
	// acknowledgedManagers): retire keeps it, labelled retired.
	ManagedBy string `json:"managedBy,omitempty"`
}

// Workload is a consumer of a Secret.
type Workload struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// String reads like kubectl: deployment/orchestrator.
func (w Workload) String() string { return strings.ToLower(w.Kind) + "/" + w.Name }

// Holder is a live object that keeps using a Secret version because the
// rotation does not repoint it, and why.
type Holder struct {
	Workload
	Why string `json:"why,omitempty"`
}

// String reads like "pod/backup (a bare pod)".
func (h Holder) String() string {
	if h.Why == "" {
		return h.Workload.String()
	}
	return h.Workload.String() + " (" + h.Why + ")"
}

// Lingering is another version of the target that live objects still use.
type Lingering struct {
	Name string `json:"name"`
	// Username is the login it carries, for database targets.
	Username string   `json:"username,omitempty"`
	UsedBy   []string `json:"usedBy"`
}

// PreflightInput asks preflight to check a target before anything changes.
type PreflightInput struct {
	Target string       `json:"target"`
	Kind   catalog.Kind `json:"kind"`
	// Emergency drops a dual-key Secret's previous key, which changes the
	// keys a consumer can read.
	Emergency bool `json:"emergency,omitempty"`
	// Rotation is the rotation's key (see rotationKey).
	Rotation string `json:"rotation,omitempty"`
}

// Plan is what preflight found: everything later steps need, by reference.
type Plan struct {
	Target      string        `json:"target"`
	Kind        catalog.Kind  `json:"kind"`
	Namespace   string        `json:"namespace"`
	Base        string        `json:"base"`
	Key         string        `json:"key"`
	Current     SecretRef     `json:"current"`
	NextVersion int           `json:"nextVersion"`
	Consumers   []Workload    `json:"consumers"`
	Grace       time.Duration `json:"grace"`
	MinGrace    time.Duration `json:"minGrace,omitempty"` // the workflow refuses a shorter grace from its input
	// KindPlans are the fields of one kind (jwt, postgres, apikeys, tls).
	KindPlans
	// Vault is where versions are recorded, when the target has a path.
	Vault *VaultPlan `json:"vault,omitempty"`
	// Ingresses serve the current Secret in tls[].secretName (tls only).
	Ingresses []string `json:"ingresses,omitempty"`
	// Seen is what preflight read of each consumer, so that promote
	// need not read the workloads again.
	Seen []Seen `json:"seen,omitempty"`
	// Unmoved are the live objects that use the current version and that
	// the rotation does not repoint; retire waits for them to go.
	Unmoved []Holder `json:"unmoved,omitempty"`
	// Lingering are the target's other versions that live objects use.
	Lingering []Lingering `json:"lingering,omitempty"`
	// OldStopsAtApply says the current credential stops working once the
	// new one is applied (single-user PostgreSQL): nothing may be left on
	// it.
	OldStopsAtApply bool `json:"oldStopsAtApply,omitempty"`
	// DropPrevious has retire roll the consumers out once more onto a
	// version without the dual-key Secret's previous key.
	DropPrevious bool `json:"dropPrevious,omitempty"`
	// Keys are the data keys the new version carries (names only).
	Keys []string `json:"keys,omitempty"`
	// Window is when steps that consumers see may run; nil is always.
	Window *catalog.Window `json:"window,omitempty"`
	// Notify are the sinks the rotation's events go to, by name.
	Notify []NotifyRoute `json:"notify,omitempty"`
}

// Seen is a consumer as preflight read it: where its pod spec names the
// current Secret, at which resourceVersion. Promote patches from it
// without a read; the patch tests the resourceVersion, so a workload that
// changed since is read afresh instead. No value, only JSON pointers.
type Seen struct {
	Workload        Workload `json:"workload"`
	ResourceVersion string   `json:"resourceVersion"`
	// Paths are relative to the pod spec, as secretRefPaths returns them.
	Paths []string `json:"paths"`
	// Annotated says the workload has annotations, which decides how the
	// patch adds the change cause.
	Annotated bool `json:"annotated,omitempty"`
}

// StageInput asks for a new version to be generated and stored.
type StageInput struct {
	Plan Plan `json:"plan"`
	// Rotation is the rotation's key (see rotationKey).
	Rotation string `json:"rotation,omitempty"`
	// Emergency leaves the previous key out of a dual-key Secret, since
	// the previous key is the compromised one.
	Emergency bool `json:"emergency,omitempty"`
}

// DropPreviousInput asks for the version after From without the previous
// key of a dual-key Secret.
type DropPreviousInput struct {
	Plan     Plan      `json:"plan"`
	From     SecretRef `json:"from"`
	Rotation string    `json:"rotation,omitempty"`
}

// PromoteInput repoints every consumer from one Secret to another.
type PromoteInput struct {
	Namespace string     `json:"namespace"`
	From      SecretRef  `json:"from"`
	To        SecretRef  `json:"to"`
	Consumers []Workload `json:"consumers"`
	// Ingresses are repointed too (tls targets).
	Ingresses []string `json:"ingresses,omitempty"`
	// Reason is written to each workload's change-cause annotation.
	Reason string `json:"reason"`
	// Target, when set, adopts an unversioned From as version 1 of the
	// target in the same patch that labels it previous.
	Target string `json:"target,omitempty"`
	// Seen are the consumers as preflight read them (see Seen); without
	// them, or when a workload changed since, promote reads it first.
	Seen []Seen `json:"seen,omitempty"`
	// CheckOld has PromoteAndAwait look through the namespace for what
	// still uses From once the rollouts are done (see AwaitInput.Old).
	CheckOld bool `json:"checkOld,omitempty"`
}

// Rollout is a workload whose pod template changed and the generation that
// carries the change.
type Rollout struct {
	Workload   Workload `json:"workload"`
	Generation int64    `json:"generation"`
	Patched    bool     `json:"patched"`
	// ResourceVersion is the workload's as patched: the rollout is watched
	// from there, without listing it again.
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// From and To are the Secrets the template moves between. When set,
	// the rollout wait checks that the rolled-out template references To
	// and no longer From: verify's check, on the object the watch ends
	// with, at no extra request.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// CheckedInRollout says whether waiting for the rollouts checked every
// consumer's template for the new Secret, so verify need not read them.
func CheckedInRollout(rollouts []Rollout, consumers []Workload, to string) bool {
	if len(rollouts) != len(consumers) {
		return false
	}
	for i, r := range rollouts {
		if r.Workload != consumers[i] || r.To != to {
			return false
		}
	}
	return true
}

// PromoteResult lists the rollouts a promote started.
type PromoteResult struct {
	Rollouts []Rollout `json:"rollouts"`
	// Deleted are consumers that no longer exist: nothing to repoint.
	Deleted []Workload `json:"deleted,omitempty"`
	// StillOnOld is what PromoteAndAwait found still on the old version
	// (see AwaitResult).
	StillOnOld []Holder `json:"stillOnOld,omitempty"`
}

// AwaitInput asks to wait until rollouts complete.
type AwaitInput struct {
	Namespace string    `json:"namespace"`
	Rollouts  []Rollout `json:"rollouts"`
	// Target, when set, bounds each rollout by the target's
	// rolloutTimeout.
	Target string `json:"target,omitempty"`
	// Old, when set, has the wait look through the whole namespace once
	// the rollouts are done for what still uses that Secret.
	Old string `json:"old,omitempty"`
}

// AwaitResult is what still uses the old version once the rollouts are
// done (AwaitInput.Old): objects preflight left on it, a workload created
// since, or one the catalog's consumers leave out.
type AwaitResult struct {
	StillOnOld []Holder `json:"stillOnOld,omitempty"`
}

// VerifyInput asks to prove the consumers run on the new version.
type VerifyInput struct {
	Namespace string     `json:"namespace"`
	Old       SecretRef  `json:"old"`
	New       SecretRef  `json:"new"`
	Consumers []Workload `json:"consumers"`
	Ingresses []string   `json:"ingresses,omitempty"`
	// CheckedInRollout says the rollout wait already checked each
	// consumer's template (see Rollout.To), so verify does not read them
	// again; only Ingresses are left to check.
	CheckedInRollout bool `json:"checkedInRollout,omitempty"`
}

// RetireInput asks to delete a Secret version nothing references any more.
type RetireInput struct {
	Secret SecretRef `json:"secret"`
	// StagedByRun, when set, deletes the Secret only if the rotation with
	// that key (see rotationKey) staged it: compensation must never
	// delete a Secret it did not create.
	StagedByRun string `json:"stagedByRun,omitempty"`
	// Report has a Secret that live objects still use reported in the
	// result, for the rotation to wait, instead of failing the call.
	Report bool `json:"report,omitempty"`
	// Keep labels the version retired instead of deleting it: an
	// engineer ended the wait for its users (approve --keep-old).
	Keep bool `json:"keep,omitempty"`
}

// RetireResult says what became of the Secret.
type RetireResult struct {
	Deleted bool `json:"deleted"`
	// UsedBy are the live objects that still use it (RetireInput.Report):
	// nothing was changed.
	UsedBy []Holder `json:"usedBy,omitempty"`
	// Kept says why the Secret was labelled retired and not deleted.
	Kept string `json:"kept,omitempty"`
}
