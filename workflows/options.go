package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// short is for steps that make a few API calls.
func short(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute, ScheduleToCloseTimeout: 10 * time.Minute, RetryPolicy: shortRetry(),
	})
}

// quick is for the local activities: short's timeouts and retries, in the
// worker, without a trip through Temporal per attempt.
func quick(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: time.Minute, ScheduleToCloseTimeout: 10 * time.Minute, RetryPolicy: shortRetry(),
	})
}

// shortRetry backs off from a second to half a minute: an API server or
// Vault that is briefly away is waited for, a long outage ends the step.
func shortRetry() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second}
}

// rollout is for waiting on a rollout: as long as it makes progress (the
// activity itself ends one that stops, after the target's rolloutTimeout),
// watched by heartbeats.
func rollout(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 24 * time.Hour,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
}

// compensationRetry is how long a step of a rollback keeps trying against
// an API server, database or Vault that is away: hours, backing off to
// five minutes, because giving up leaves the rotation half undone.
const compensationRetry = 6 * time.Hour

// undo is for the steps of a rollback that make a few API calls.
func undo(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute, ScheduleToCloseTimeout: compensationRetry,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute},
	})
}

// undoRollout is for the rollout back to the previous version.
func undoRollout(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    24 * time.Hour,
		ScheduleToCloseTimeout: compensationRetry,
		HeartbeatTimeout:       time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute},
	})
}

// rollout is the rollout wait of a rotation: an abort cancels it, and a
// rotation of version workload-safety waits until the attempt has stopped
// before it compensates, so the two never race.
func (r *rotation) rollout(ctx workflow.Context) workflow.Context {
	return workflow.WithWaitForCancellation(rollout(ctx), r.safe)
}

// summarized gives the next activity a one-line summary for the Temporal
// UI's timeline, such as "repoint deployment/api to api-jwt-2". A summary
// is user metadata, not part of the command a replay compares, so running
// rotations replay unchanged.
func summarized(ctx workflow.Context, summary string) workflow.Context {
	o := workflow.GetActivityOptions(ctx)
	o.Summary = summary
	return workflow.WithActivityOptions(ctx, o)
}

// summarizedLocal is summarized for a local activity.
func summarizedLocal(ctx workflow.Context, summary string) workflow.Context {
	o := workflow.GetLocalActivityOptions(ctx)
	o.Summary = summary
	return workflow.WithLocalActivityOptions(ctx, o)
}
