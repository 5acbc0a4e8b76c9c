package workflows

import (
	"time"

	"rotator/activities"
	"rotator/catalog"
)

// Step names where a rotation is; the values match RotationStep.
type Step string

// The steps of the skeleton, in order, and the ends a rotation can reach.
const (
	StepPreflight    Step = "preflight"
	StepAwaitKeys    Step = "awaiting-keys"
	StepStage        Step = "stage"
	StepApply        Step = "apply"
	StepPromote      Step = "promote"
	StepVerify       Step = "verify"
	StepGrace        Step = "grace"
	StepRetire       Step = "retire"
	StepDone         Step = "done"
	StepCompensating Step = "compensating"
	StepRolledBack   Step = "rolled-back"
	StepFailed       Step = "failed"
	// StepCompensationFailed is a rollback that could not finish: the
	// rotation waits for a person to fix what its error names and to run
	// the compensation again (starter retry).
	StepCompensationFailed Step = "compensation-failed"
	// StepAwaitWindow is a rotation that waits for its rotation window
	// before a step consumers see (promote, or a retire that revokes).
	StepAwaitWindow Step = "awaiting-window"
)

// States of a consumer in the status.
const (
	stateOnOld      = "on old version"
	stateRollingOut = "rolling out"
	stateRolledOut  = "rolled out"
	stateRolledBack = "rolled back"
	stateDeleted    = "deleted during the rotation"
)

// ConsumerStatus is one consumer and how far its rollout got.
type ConsumerStatus struct {
	Workload activities.Workload `json:"workload"`
	State    string              `json:"state"`
}

// Status is what the status query returns and the workflow's result. It
// holds references and fingerprints only, never secret material.
type Status struct {
	Target        string       `json:"target"`
	Kind          catalog.Kind `json:"kind"`
	Step          Step         `json:"step"`
	Emergency     bool         `json:"emergency,omitempty"`
	RequestedBy   string       `json:"requestedBy,omitempty"`
	StartedAt     time.Time    `json:"startedAt"`
	StepStartedAt time.Time    `json:"stepStartedAt"`
	GraceDeadline time.Time    `json:"graceDeadline,omitzero"`
	// Window is the target's rotation window, and WindowOpensAt when it
	// next opens while the rotation waits for it.
	Window        string                `json:"window,omitempty"`
	WindowOpensAt time.Time             `json:"windowOpensAt,omitzero"`
	FinishedAt    time.Time             `json:"finishedAt,omitzero"`
	Old           *activities.SecretRef `json:"old,omitempty"`
	New           *activities.SecretRef `json:"new,omitempty"`
	Consumers     []ConsumerStatus      `json:"consumers,omitempty"`
	// NotRepointed are the live objects that use the old version and that
	// the rotation does not repoint (a bare pod, a running Job, an
	// ownerless ReplicaSet, a workload the catalog's consumers leave out):
	// retire waits for them to go.
	NotRepointed []string `json:"notRepointed,omitempty"`
	// StillOnOld is what verify found still using the old version.
	StillOnOld []string `json:"stillOnOld,omitempty"`
	// RetireWaitsFor are the objects that keep retire from deleting a
	// version, as last checked.
	RetireWaitsFor []string `json:"retireWaitsFor,omitempty"`
	// PreviousKey says how long a dual-key Secret's previous key stays
	// trusted.
	PreviousKey string    `json:"previousKey,omitempty"`
	Approved    *Decision `json:"approved,omitempty"`
	Aborted     *Decision `json:"aborted,omitempty"`
	// KeptOld is the engineer who ended retire's wait for the objects
	// that still use the old version, keeping it (approve --keep-old).
	KeptOld *Decision `json:"keptOld,omitempty"`
	// Retried lists who ran a compensation that could not finish again.
	Retried []Decision `json:"retried,omitempty"`
	// Retired says what retire did with each version: deleted, or kept
	// and why.
	Retired []string `json:"retired,omitempty"`
	// Outcome says how a rotation that a person aborted or canceled ended,
	// for a result that is not an error.
	Outcome string `json:"outcome,omitempty"`
	// Reminder says what the rotation waits for from a person, if anything.
	Reminder string `json:"reminder,omitempty"`
	// KeysError is why the last staged keys were refused.
	KeysError string `json:"keysError,omitempty"`
	// StagedKeys are the fingerprints of the verified new keys, by provider.
	StagedKeys map[string]string `json:"stagedKeys,omitempty"`
	// Revoked lists old keys revoked through provider admin APIs.
	Revoked []string `json:"revoked,omitempty"`
	// Certificate describes a tls target's new certificate once verified.
	Certificate *activities.CertInfo `json:"certificate,omitempty"`
	Error       string               `json:"error,omitempty"`
	// Left says, after a compensation that could not finish, what the
	// backing system and each consumer are on.
	Left string `json:"left,omitempty"`
	// Ignored are the last decisions sent as signals that did not apply
	// where the rotation was (the UI's signals get no answer), newest last.
	Ignored []IgnoredDecision `json:"ignored,omitempty"`
	// NotifyFailures are the last notifications that no sink took, with
	// why; the rotation went on regardless.
	NotifyFailures []string `json:"notifyFailures,omitempty"`
}

// IgnoredDecision is a signal that arrived in a step where it does not
// apply, and why it was not taken.
type IgnoredDecision struct {
	// Signal is approve, abort, retry or keys-staged.
	Signal string    `json:"signal"`
	By     string    `json:"by,omitempty"`
	At     time.Time `json:"at"`
	// Step is where the rotation was when the signal came.
	Step Step `json:"step"`
	// Why is the refusal the Update would have answered with.
	Why string `json:"why"`
}

// maxIgnored bounds Status.Ignored: a script resending a signal must not
// grow the status without end.
const maxIgnored = 10
