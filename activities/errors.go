package activities

// The types of the ApplicationErrors that rotator returns, in one place:
// the workflows, the starter and the tests tell kinds of failure apart by
// these names, never by matching message text, so the names are stable
// while messages may change. Every one is non-retryable.

// Error types that activities return.
const (
	// ErrBadInput is returned when the input, the catalog or the cluster
	// refuses a step in a way a retry cannot fix: a field that disagrees
	// with the catalog, a missing object, a permission the worker lacks,
	// a connection that is not encrypted. The message names the field and
	// the fix; nothing was changed.
	ErrBadInput = "BadInput"
	// ErrConflict is returned when someone else changed what the rotation
	// works on: a Secret of the next version's name that this rotation did
	// not stage, a workload or Ingress edited to reference neither version,
	// a Vault write that lost a check-and-set race.
	ErrConflict = "Conflict"
	// ErrRolloutFailed is returned when a rollout failed for good, for
	// example a Deployment that exceeded its progress deadline.
	ErrRolloutFailed = "RolloutFailed"
	// ErrStillInUse is returned when an object still references the old
	// version where it must not: at retire (which then keeps the old
	// Secret), after a rollout, or at verify.
	ErrStillInUse = "StillInUse"
	// ErrRolloutStuck is returned for a rollout that made no progress for
	// the target's rolloutTimeout, or whose pods Kubernetes could not
	// create.
	ErrRolloutStuck = "RolloutStuck"
	// ErrKeyRejected is returned when a provider refused a staged key
	// (401/403).
	ErrKeyRejected = "KeyRejected"
	// ErrNotStaged is returned when no keys are staged yet, or none were
	// staged within the target's stage timeout.
	ErrNotStaged = "NotStaged"
	// ErrCertificate is returned for a certificate that fails a check
	// retrying cannot fix.
	ErrCertificate = "CertificateInvalid"
	// ErrNotifyRefused is returned when a notification sink refused a
	// message in a way a retry cannot fix (a 4xx other than 408 and 429,
	// a missing or short key file); the rotation goes on regardless.
	ErrNotifyRefused = "NotifyRefused"
)

// Error types that workflows return; the cause of the first three is the
// failed step's error, which keeps the activity's type.
const (
	// ErrRotationFailed is returned by a rotation that failed and was
	// rolled back: consumers are on the old version again.
	ErrRotationFailed = "RotationFailed"
	// ErrAborted is returned by a rotation that an engineer aborted and
	// that was rolled back, when it began before such rotations complete
	// (result step rolled-back) instead.
	ErrAborted = "Aborted"
	// ErrCompensationFailed is returned by a rotation whose rollback did
	// not finish: it needs a person (starter retry).
	ErrCompensationFailed = "CompensationFailed"
	// ErrStepFailed is the type of a step's error when the activity's error
	// carried no type of its own.
	ErrStepFailed = "StepFailed"
	// ErrCertificatesNeedAttention is returned by a certificate scan that
	// found certificates it could not check or renew.
	ErrCertificatesNeedAttention = "CertificatesNeedAttention"
	// ErrNeedsPerson is returned by a scheduled start or a renewal that
	// would rotate a target whose last rollback did not finish.
	ErrNeedsPerson = "NeedsPerson"
)
