package workflows

import (
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"
)

// Metric names the rotations record through the worker's metrics handler.
// Prometheus shows the counters with a _total suffix, which the exporter
// adds. Gauges carry target and kind; counters only kind and step, so
// that their series stay few whatever the catalog's size. The handler
// skips recording while a workflow replays, so a replayed rotation does
// not count twice.
const (
	MetricLastSuccess   = "rotator_rotation_last_success_timestamp_seconds"
	MetricGraceStarted  = "rotator_rotation_grace_started_timestamp_seconds"
	MetricGraceDeadline = "rotator_rotation_grace_deadline_timestamp_seconds"
	MetricCompleted     = "rotator_rotations_completed"
	MetricFailures      = "rotator_rotation_failures"
	MetricCompensations = "rotator_rotation_compensations"
)

// Outcomes of a compensation, the outcome label of MetricCompensations.
const (
	CompensationRolledBack = "rolled-back"
	CompensationIncomplete = "incomplete"
)

// targetMetrics is the handler for the gauges of r's target, and false
// until preflight found the target in the catalog: the name in the input
// is whatever a client sent, and a label value for each would let anyone
// who can start a workflow grow the worker's series without bound.
func (r *rotation) targetMetrics(ctx workflow.Context) (client.MetricsHandler, bool) {
	if r.plan.Target == "" {
		return nil, false
	}
	return workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"target": r.plan.Target, "kind": string(r.steps.kind)}), true
}

// stepMetrics is the handler for the counters of a step of r's kind.
func (r *rotation) stepMetrics(ctx workflow.Context, step Step) client.MetricsHandler {
	return workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"kind": string(r.steps.kind), "step": string(step)})
}

// recordGrace says the target is in grace from now until deadline (zero:
// until a person approves).
func (r *rotation) recordGrace(ctx workflow.Context, deadline time.Time) {
	m, ok := r.targetMetrics(ctx)
	if !ok {
		return
	}
	m.Gauge(MetricGraceStarted).Update(UnixSeconds(workflow.Now(ctx)))
	m.Gauge(MetricGraceDeadline).Update(UnixSeconds(deadline))
}

// recordEnd records how a rotation ended: grace is over whatever the end,
// and a successful one sets the target's last success. A failure is
// counted at the step the rotation was in (failedAt), unless compensate
// already counted it or a person aborted the rotation.
func (r *rotation) recordEnd(ctx workflow.Context, end, failedAt Step) {
	if r.in.Target == "" {
		return // refused input: there is no target to label
	}
	m, known := r.targetMetrics(ctx)
	if known {
		m.Gauge(MetricGraceStarted).Update(0)
		m.Gauge(MetricGraceDeadline).Update(0)
	}
	switch {
	case end == StepDone:
		if known {
			m.Gauge(MetricLastSuccess).Update(UnixSeconds(workflow.Now(ctx)))
		}
		workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"kind": string(r.steps.kind)}).Counter(MetricCompleted).Inc(1)
	case failedAt != StepCompensating:
		r.recordFailure(ctx, failedAt)
	}
}

// recordFailure counts a rotation that failed at step; an abort is a
// person's decision, not a failure.
func (r *rotation) recordFailure(ctx workflow.Context, step Step) {
	if r.st.Aborted == nil {
		r.stepMetrics(ctx, step).Counter(MetricFailures).Inc(1)
	}
}

// recordCompensation counts a compensation of a rotation that failed, or
// was aborted, at step, and whether it put everything back.
func (r *rotation) recordCompensation(ctx workflow.Context, step Step, complete bool) {
	outcome := CompensationRolledBack
	if !complete {
		outcome = CompensationIncomplete
	}
	r.stepMetrics(ctx, step).WithTags(map[string]string{"outcome": outcome}).Counter(MetricCompensations).Inc(1)
}

// UnixSeconds is how Prometheus timestamps are compared with time(); the
// zero time is 0, not year 1. observe.SyncGrace uses it too.
func UnixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMilli()) / 1000
}
