package workflows

import (
	"go.temporal.io/sdk/workflow"

	"rotator/catalog"
)

// RotateJWTSecret rotates a JWT signing key the way the runbook's "Rotate
// JWT Secret" does, without its gaps: a new versioned Secret instead of
// "-new", one rollout per consumer, the old key kept through grace (and,
// with dualKey, carried in the new Secret so old tokens keep verifying),
// and the old Secret deleted only once nothing references it.
func RotateJWTSecret(ctx workflow.Context, in RotateInput) (Status, error) {
	return run(ctx, in, jwtSteps())
}

// jwtSteps are the kind's hooks into the skeleton.
func jwtSteps() kindSteps {
	return kindSteps{kind: catalog.KindJWT}
}
