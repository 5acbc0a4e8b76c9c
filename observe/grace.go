package observe

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"rotator/catalog"
	"rotator/workflows"
)

// Rotations is the part of the Temporal client WatchGrace reads with.
type Rotations interface {
	ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
	QueryWorkflow(ctx context.Context, workflowID, runID, queryType string, args ...any) (converter.EncodedValue, error)
}

// WatchGrace sets the grace gauges of the catalog's targets from Temporal
// now and every period until ctx ends: from the rotations on taskQueue
// that visibility lists in grace, and their status queries. The
// workflows set the same gauges as they go, but only in the memory of
// the worker that ran the step: after a restart, a rotation that was in
// grace would be missing until it ended. These series carry only target
// and kind, beside the workflows' series with the SDK's labels, so alerts
// take the max by target and kind.
func (m *Metrics) WatchGrace(ctx context.Context, c Rotations, cat *catalog.Catalog, taskQueue string, period time.Duration, log *slog.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if err := m.SyncGrace(ctx, c, cat, taskQueue); err != nil && ctx.Err() == nil {
			log.Warn("could not read rotations in grace from Temporal; grace gauges may be stale", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SyncGrace is one pass of WatchGrace: targets in grace get the start and
// deadline of their grace, every other catalog target 0; a rotation that
// waits for a person sets MetricWaitingForPerson to when its step began.
func (m *Metrics) SyncGrace(ctx context.Context, c Rotations, cat *catalog.Catalog, taskQueue string) error {
	// The steps where a rotation can wait for a person, grace among them.
	query := fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus = 'Running' AND %s IN ('%s', '%s', '%s', '%s')",
		strings.ReplaceAll(taskQueue, "'", `\'`), workflows.SearchStep.GetName(), workflows.StepGrace,
		workflows.StepAwaitKeys, workflows.StepRetire, workflows.StepCompensationFailed)
	inGrace := map[string]workflows.Status{}
	waiting := map[string]time.Time{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
		if err != nil {
			return fmt.Errorf("list rotations in grace: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			id, run := e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
			v, err := c.QueryWorkflow(ctx, id, run, workflows.QueryStatus)
			if err != nil {
				return fmt.Errorf("query status of %s: %w", id, err)
			}
			var st workflows.Status
			if err := v.Get(&st); err != nil {
				return fmt.Errorf("decode status of %s: %w", id, err)
			}
			// Visibility lags: the rotation may have left grace since.
			if st.Step == workflows.StepGrace {
				inGrace[st.Target] = st
			}
			if st.Reminder != "" || st.Step == workflows.StepCompensationFailed {
				waiting[st.Target] = st.StepStartedAt
			}
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			break
		}
	}
	for _, t := range cat.Targets {
		st := inGrace[t.Name] // the zero Status, whose times are 0, if none
		h := m.temporal.WithTags(map[string]string{"target": t.Name, "kind": string(t.Kind)})
		h.Gauge(workflows.MetricGraceStarted).Update(workflows.UnixSeconds(st.StepStartedAt))
		h.Gauge(workflows.MetricGraceDeadline).Update(workflows.UnixSeconds(st.GraceDeadline))
		h.Gauge(MetricWaitingForPerson).Update(workflows.UnixSeconds(waiting[t.Name]))
	}
	return nil
}
