package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"rotator/activities"
	"rotator/catalog"
)

var pg *activities.Postgres

// RotateDatabasePassword rotates a PostgreSQL password the way the
// runbook's "Rotate Database Password" does, without its maintenance
// window or its clear-text password: the server only ever receives a
// SCRAM-SHA-256 verifier, and with alternating-users the consumers move to
// a second login role whose password works before they switch, so no
// login fails at any point.
func RotateDatabasePassword(ctx workflow.Context, in RotateInput) (Status, error) {
	return run(ctx, in, postgresSteps())
}

// postgresSteps are the kind's hooks into the skeleton.
func postgresSteps() kindSteps {
	db := func(r *rotation) activities.DatabaseInput {
		prev, next := r.versions()
		return activities.DatabaseInput{Plan: r.plan, Old: prev, New: next}
	}
	return kindSteps{
		kind: catalog.KindPostgres,
		preflight: func(ctx workflow.Context, r *rotation) error {
			return workflow.ExecuteActivity(short(ctx), pg.PreflightDatabase, r.plan).Get(ctx, &r.plan)
		},
		apply: func(ctx workflow.Context, r *rotation) error {
			return workflow.ExecuteActivity(short(ctx), pg.ApplyPassword, db(r)).Get(ctx, nil)
		},
		// Single-user: the old password comes back before the consumers
		// move back to it. Alternating-users: the user that was to take
		// over is locked again once they are back on the other one.
		restore: func(ctx workflow.Context, r *rotation) error {
			return workflow.ExecuteActivity(ctx, pg.RestorePassword, db(r)).Get(ctx, nil)
		},
		undoApply: func(ctx workflow.Context, r *rotation) error {
			return workflow.ExecuteActivity(ctx, pg.LockNewUser, db(r)).Get(ctx, nil)
		},
		left: func(r *rotation) string {
			pp, n := r.plan.Postgres, r.stagedNew().Name
			switch {
			case pp == nil:
				return ""
			case pp.Strategy == catalog.StrategySingleUser && r.undo.restored:
				return fmt.Sprintf("PostgreSQL role %s has its previous password again", pp.Username)
			case pp.Strategy == catalog.StrategySingleUser:
				return fmt.Sprintf("PostgreSQL role %s may have the new password of %s, and then the previous one no longer works", pp.Username, n)
			case r.undo.undone:
				return fmt.Sprintf("PostgreSQL login role %s is locked again", pp.Username)
			}
			return fmt.Sprintf("PostgreSQL login role %s may log in with the new password of %s (not locked again)", pp.Username, n)
		},
		verify: func(ctx workflow.Context, r *rotation) error {
			return workflow.ExecuteActivity(dbLogin(ctx), pg.VerifyLogin, db(r)).Get(ctx, nil)
		},
		revoke: func(ctx workflow.Context, r *rotation) error {
			return workflow.ExecuteActivity(short(ctx), pg.LockPreviousUser, db(r)).Get(ctx, nil)
		},
	}
}

// login retries a failed check of the new version (the catalog's probe,
// the TLS handshake) six times over about 30 s: long enough for a load
// balancer or a pooler to see the change, short enough to roll back soon.
func login(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    15 * time.Second,
			MaximumAttempts:    6,
		},
	})
}

// dbLogin is for the database login that verifies a new password. The
// activity itself makes a refused login permanent after a minute
// (activities.RefusedLoginBudget); an unreachable server is retried here
// for up to ten minutes, since an outage says nothing about the password
// and rolling back during one would fail too.
func dbLogin(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    15 * time.Second,
		},
	})
}
