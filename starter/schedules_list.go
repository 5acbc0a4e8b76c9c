package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"rotator/workflows"
)

// managedSchedule is one of rotator's Schedules for this task queue.
type managedSchedule struct {
	id   string
	desc *client.ScheduleDescription
}

// managedSchedules lists rotator's Schedules whose action runs on this
// task queue, sorted by ID. Schedules for other task queues belong to
// other workers and their catalogs, so they are left alone.
func (a *app) managedSchedules(ctx context.Context, sc client.ScheduleClient) ([]managedSchedule, error) {
	it, err := sc.List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	var out []managedSchedule
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		if !managed(e.ID, e.WorkflowType.Name, e.Memo) {
			continue
		}
		// The list comes from visibility, which lags; Describe is
		// current and says which task queue the Schedule serves.
		desc, err := sc.GetHandle(ctx, e.ID).Describe(ctx)
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("describe schedule %s: %w", e.ID, err)
		}
		if act, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction); !ok || act.TaskQueue != a.temporal.TaskQueue {
			continue
		}
		out = append(out, managedSchedule{id: e.ID, desc: desc})
	}
	slices.SortFunc(out, func(x, y managedSchedule) int { return strings.Compare(x.id, y.id) })
	return out, nil
}

// nextRuns returns up to n of a Schedule's next run times, or "" if it
// cannot tell.
func nextRuns(ctx context.Context, sc client.ScheduleClient, id string, n int) string {
	desc, err := sc.GetHandle(ctx, id).Describe(ctx)
	if err != nil {
		return ""
	}
	return formatTimes(desc.Info.NextActionTimes, n)
}

func formatTimes(ts []time.Time, n int) string {
	var s []string
	for _, t := range ts[:min(n, len(ts))] {
		s = append(s, t.UTC().Format(time.RFC3339))
	}
	return strings.Join(s, ", ")
}

func (a *app) schedulesListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List rotator's Schedules: cadence, next runs, paused or not, last run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.dial()
			if err != nil {
				return err
			}
			list, err := a.managedSchedules(cmd.Context(), c.ScheduleClient())
			if err != nil {
				return err
			}
			if len(list) == 0 {
				fmt.Fprintf(a.out, "no rotator schedules for task queue %s: create them with 'starter schedules apply'\n", a.temporal.TaskQueue)
				return nil
			}
			return a.printSchedules(cmd.Context(), c, list)
		},
	}
}

func (a *app) printSchedules(ctx context.Context, c client.Client, list []managedSchedule) error {
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHEDULE\tTARGET\tEVERY\tNEXT RUNS\tPAUSED\tLAST RUN")
	for _, s := range list {
		target := strings.TrimPrefix(s.id, schedulePrefix)
		if target == workflows.CertificateScanID {
			target = "(every tls target)"
		}
		every := "?"
		if sp := s.desc.Schedule.Spec; sp != nil && len(sp.Intervals) == 1 {
			every = days(sp.Intervals[0].Every)
		}
		paused := "no"
		if st := s.desc.Schedule.State; st != nil && st.Paused {
			paused = "yes"
			if st.Note != "" {
				paused += ": " + st.Note
			}
		}
		next := formatTimes(s.desc.Info.NextActionTimes, 2)
		if next == "" {
			next = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.id, target, every, next, paused, lastRun(ctx, c, s.desc.Info.RecentActions))
	}
	return tw.Flush()
}

// lastRun says what the Schedule's most recent run did, as far as the
// server still knows.
func lastRun(ctx context.Context, c client.Client, recent []client.ScheduleActionResult) string {
	if len(recent) == 0 || recent[len(recent)-1].StartWorkflowResult == nil {
		return "never"
	}
	last := recent[len(recent)-1]
	at := last.ActualTime.UTC().Format(time.RFC3339)
	id, runID := last.StartWorkflowResult.WorkflowID, last.StartWorkflowResult.FirstExecutionRunID
	desc, err := c.DescribeWorkflow(ctx, id, runID)
	if err != nil {
		return fmt.Sprintf("%s: %s (status unknown: %v)", at, id, err)
	}
	switch status := desc.Status; status {
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		var res workflows.ScheduledResult
		if err := c.GetWorkflow(ctx, id, runID).Get(ctx, &res); err != nil || res.Target == "" {
			return at + ": completed"
		}
		if res.Started {
			return fmt.Sprintf("%s: started %s (run %s)", at, workflows.WorkflowID(res.Target), res.RotationRunID)
		}
		return fmt.Sprintf("%s: skipped, %s", at, firstClause(res.Skipped))
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		err := c.GetWorkflow(ctx, id, runID).Get(ctx, nil)
		var app *temporal.ApplicationError
		if errors.As(err, &app) {
			return fmt.Sprintf("%s: failed: %s", at, app.Message())
		}
		return fmt.Sprintf("%s: failed: %v", at, err)
	default:
		return fmt.Sprintf("%s: %s (%s)", at, strings.ToLower(strings.TrimPrefix(status.String(), "WORKFLOW_EXECUTION_STATUS_")), id)
	}
}

// firstClause keeps a skip reason short enough for a table cell.
func firstClause(s string) string {
	before, _, _ := strings.Cut(s, ":")
	return before
}
