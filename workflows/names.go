package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
)

// Names a client uses to talk to a rotation.
const (
	// TaskQueue is the default task queue of the worker.
	TaskQueue = "rotator"
	// SignalApprove and UpdateApprove end grace early and retire; with
	// keepOld they also end retire's wait for what still uses the old
	// version.
	SignalApprove = "approve"
	UpdateApprove = "approve"
	// SignalAbort and UpdateAbort roll the rotation back.
	SignalAbort = "abort"
	UpdateAbort = "abort"
	// SignalRetry and UpdateRetry run a compensation that could not
	// finish again, once a person fixed what stopped it.
	SignalRetry = "retry"
	UpdateRetry = "retry"
	// QueryStatus returns the Status.
	QueryStatus = "status"
	// SignalKeysStaged and UpdateKeysStaged tell an API-key rotation that
	// the engineer staged the new keys; the Update answers with the
	// providers' verdict.
	SignalKeysStaged = "keys-staged"
	UpdateKeysStaged = "keys-staged"
)

// Search attributes every rotation keeps up to date, for the UI's filters.
var (
	SearchTarget = temporal.NewSearchAttributeKeyKeyword("RotationTarget")
	SearchKind   = temporal.NewSearchAttributeKeyKeyword("RotationKind")
	SearchStep   = temporal.NewSearchAttributeKeyKeyword("RotationStep")
)

// WorkflowID is the one ID a rotation of the target may run under, which is
// how Temporal refuses a second concurrent rotation of the same target.
func WorkflowID(target string) string { return "rotate/" + target }

// RotateInput starts a rotation. It is small enough to type into the
// Temporal UI's Start Workflow form: {"target": "orchestrator-jwt"}.
type RotateInput struct {
	Target string `json:"target"`
	// Emergency skips grace and retires the old version as soon as the new
	// one is rolled out (the key is presumed compromised).
	Emergency bool `json:"emergency,omitempty"`
	// RequestedBy records who asked for the rotation.
	RequestedBy string `json:"requestedBy,omitempty"`
	// Grace overrides the catalog's grace period, e.g. "24h"; preflight
	// refuses one shorter than the target's minGrace.
	Grace string `json:"grace,omitempty"`
}

// Decision is the payload of approve, abort and retry. Approve and abort
// need By and Reason (see CheckReason); the status records them with At.
type Decision struct {
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at,omitzero"`
	// KeepOld, with approve, ends retire's wait for the objects that still
	// use the old version: the rotation finishes and leaves that version
	// in place, labelled retired, and its credential valid.
	KeepOld bool `json:"keepOld,omitempty"`
}
