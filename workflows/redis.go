package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"rotator/activities"
	"rotator/catalog"
)

var rds *activities.Redis

// RotateRedisPassword rotates the password of a Redis ACL user with no
// failed login and no clear-text password on the wire to the server: a
// user holds several passwords at once, so apply adds the new one (as its
// SHA-256) beside the old, verify logs in with it, the consumers move, and
// retire removes the old one once nothing uses it. A rollback removes the
// new one once the consumers are back.
func RotateRedisPassword(ctx workflow.Context, in RotateInput) (Status, error) {
	return run(ctx, in, redisSteps())
}

// redisSteps are the kind's hooks into the skeleton.
func redisSteps() kindSteps {
	input := func(r *rotation) activities.RedisInput {
		prev, next := r.versions()
		return activities.RedisInput{Plan: r.plan, Old: prev, New: next}
	}
	return kindSteps{
		kind: catalog.KindRedis,
		preflight: func(ctx workflow.Context, r *rotation) error {
			return workflow.ExecuteActivity(short(ctx), rds.PreflightRedis, r.plan).Get(ctx, &r.plan)
		},
		apply: func(ctx workflow.Context, r *rotation) error {
			return workflow.ExecuteActivity(login(ctx), rds.ApplyRedisPassword, input(r)).Get(ctx, nil)
		},
		undoApply: func(ctx workflow.Context, r *rotation) error {
			return workflow.ExecuteActivity(ctx, rds.RemoveNewRedisPassword, input(r)).Get(ctx, nil)
		},
		left: func(r *rotation) string {
			if r.plan.Redis == nil {
				return ""
			}
			if r.undo.undone {
				return fmt.Sprintf("Redis user %s no longer has the password of %s", r.plan.Redis.User, r.stagedNew().Name)
			}
			return fmt.Sprintf("Redis user %s may still have the password of %s beside the previous one (not removed)", r.plan.Redis.User, r.stagedNew().Name)
		},
		verify: func(ctx workflow.Context, r *rotation) error {
			return workflow.ExecuteActivity(dbLogin(ctx), rds.VerifyRedisLogin, input(r)).Get(ctx, nil)
		},
		revoke: func(ctx workflow.Context, r *rotation) error {
			return workflow.ExecuteActivity(short(ctx), rds.RemoveOldRedisPassword, input(r)).Get(ctx, nil)
		},
	}
}
