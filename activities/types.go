// Package activities holds the side effects of a rotation: structs that hold
// their clients and expose one method per step. Secret material is generated
// and read here only; what leaves an activity is a reference (namespace, name,
// version) and a short fingerprint, never a value.
package activities

import (
	"strings"
	"time"

	"rotator/catalog"
	"rotator/postgres"
)

// Labels and annotations rotator puts on the objects it manages.
const (
	LabelManagedBy  = "app.kubernetes.io/managed-by"
	ManagedByValue  = "rotator"
	LabelTarget     = "rotator.dev/target"
	LabelVersion    = "rotator.dev/version"
	LabelStage      = "rotator.dev/stage"
	AnnotationRunID = "rotator.dev/created-by-run"
	// AnnotationFingerprint records the fingerprint so status and
	// idempotent retries need not read the value.
	AnnotationFingerprint = "rotator.dev/fingerprint"
	// AnnotationChangeCause is what `kubectl rollout history` shows.
	AnnotationChangeCause = "kubernetes.io/change-cause"
)

// Stages of a Secret version, after AWS Secrets Manager's staging labels.
const (
	StagePending  = "pending"
	StageCurrent  = "current"
	StagePrevious = "previous"
)

// PreviousKey is the data key of a dual-key JWT Secret that carries the
// key it replaced.
const PreviousKey = "previous"

// Error types that the workflow treats as permanent (no retry).
const (
	ErrBadInput      = "BadInput"
	ErrConflict      = "Conflict"
	ErrRolloutFailed = "RolloutFailed"
	ErrStillInUse    = "StillInUse"
)

// SecretRef points at one version of a Secret. It never holds the value.
type SecretRef struct {
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	Version     int    `json:"version"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Username is the login a database Secret carries (not a secret).
	Username string `json:"username,omitempty"`
}

// Workload is a consumer of a Secret.
type Workload struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// String reads like kubectl: deployment/orchestrator.
func (w Workload) String() string { return strings.ToLower(w.Kind) + "/" + w.Name }

// PreflightInput asks preflight to check a target before anything changes.
type PreflightInput struct {
	Target string       `json:"target"`
	Kind   catalog.Kind `json:"kind"`
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
	JWTBytes    int           `json:"jwtBytes,omitempty"`
	DualKey     bool          `json:"dualKey,omitempty"`
	// Postgres is set for postgres targets by PreflightDatabase.
	Postgres *PostgresPlan `json:"postgres,omitempty"`
}

// PostgresPlan is where the database is and which role the new version
// logs in as.
type PostgresPlan struct {
	Server   postgres.Server `json:"server"`
	Strategy string          `json:"strategy"`
	Role     string          `json:"role"`
	// Users are the alternating-users pair.
	Users []string `json:"users,omitempty"`
	// Username is the login role of the new version.
	Username string `json:"username"`
	DSNKey   string `json:"dsnKey,omitempty"`
}

// DatabaseInput names the versions a database step works on.
type DatabaseInput struct {
	Plan Plan      `json:"plan"`
	Old  SecretRef `json:"old"`
	New  SecretRef `json:"new"`
}

// StageInput asks for a new version to be generated and stored.
type StageInput struct {
	Plan Plan `json:"plan"`
	// Emergency leaves the previous key out of a dual-key Secret, since
	// the previous key is the compromised one.
	Emergency bool `json:"emergency,omitempty"`
}

// PromoteInput repoints every consumer from one Secret to another.
type PromoteInput struct {
	Namespace string     `json:"namespace"`
	From      SecretRef  `json:"from"`
	To        SecretRef  `json:"to"`
	Consumers []Workload `json:"consumers"`
	// Reason is written to each workload's change-cause annotation.
	Reason string `json:"reason"`
}

// Rollout is a workload whose pod template changed and the generation that
// carries the change.
type Rollout struct {
	Workload   Workload `json:"workload"`
	Generation int64    `json:"generation"`
	Patched    bool     `json:"patched"`
}

// PromoteResult lists the rollouts a promote started.
type PromoteResult struct {
	Rollouts []Rollout `json:"rollouts"`
}

// AwaitInput asks to wait until rollouts complete.
type AwaitInput struct {
	Namespace string    `json:"namespace"`
	Rollouts  []Rollout `json:"rollouts"`
}

// VerifyInput asks to prove the consumers run on the new version.
type VerifyInput struct {
	Namespace string     `json:"namespace"`
	Old       SecretRef  `json:"old"`
	New       SecretRef  `json:"new"`
	Consumers []Workload `json:"consumers"`
}

// RetireInput asks to delete a Secret version nothing references any more.
type RetireInput struct {
	Secret SecretRef `json:"secret"`
	// StagedByRun, when set, deletes the Secret only if that workflow run
	// staged it: compensation must never delete a Secret it did not create.
	StagedByRun string `json:"stagedByRun,omitempty"`
}

// RetireResult says whether the Secret was deleted by this call.
type RetireResult struct {
	Deleted bool `json:"deleted"`
}
