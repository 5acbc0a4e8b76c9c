package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"rotator/workflows"
)

func (a *app) waitCmd() *cobra.Command {
	var step string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait TARGET",
		Short: "Wait until a rotation reaches a step (default grace); fails if it ends first",
		Long: "wait follows the rotation's history with a long poll, so scripts and tests\n" +
			"can wait for a step without polling the status query.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkWaitFlags(step, timeout); err != nil {
				return err
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			id := workflows.WorkflowID(args[0])
			it := c.GetWorkflowHistory(ctx, id, "", true, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					if ctx.Err() != nil {
						return fmt.Errorf("%s did not reach step %s within %s", id, step, timeout)
					}
					return a.explain(args[0], "wait", err)
				}
				switch ev.GetEventType() {
				case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
					if got, ok := workflows.StepSet(ev); ok && string(got) == step {
						fmt.Fprintf(a.out, "%s reached step %s\n", id, step)
						return nil
					}
				case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
					// An aborted rotation that rolled back completes too;
					// only its result says which way it ended.
					var st workflows.Status
					if err := c.GetWorkflow(ctx, id, "").Get(ctx, &st); err != nil {
						return fmt.Errorf("read result of %s: %w", id, err)
					}
					if string(st.Step) == step {
						fmt.Fprintf(a.out, "%s reached step %s\n", id, step)
						return nil
					}
					why := ""
					if st.Outcome != "" {
						why = ": " + st.Outcome
					}
					return fmt.Errorf("%s completed in step %s before reaching step %s%s", id, st.Step, step, why)
				case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
					return fmt.Errorf("%s failed before reaching step %s: %s", id, step, failureMessage(ctx, c, id, ev))
				case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
					enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
					return fmt.Errorf("%s ended (%s) before reaching step %s", id, ev.GetEventType(), step)
				}
			}
			return fmt.Errorf("history of %s ended before step %s", id, step)
		},
	}
	cmd.Flags().StringVar(&step, "step", string(workflows.StepGrace), "step to wait for")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long")
	return cmd
}

// failureMessage returns why the run failed. The history event holds the
// failure as sent, and with payload encryption on its message is only
// "Encoded failure"; the run's result, read through the client, has been
// decoded by the client's failure converter, so it is asked first.
func failureMessage(ctx context.Context, c client.Client, id string, ev *historypb.HistoryEvent) string {
	err := c.GetWorkflow(ctx, id, "").Get(ctx, nil)
	var wee *temporal.WorkflowExecutionError
	if errors.As(err, &wee) {
		if cause := errors.Unwrap(wee); cause != nil {
			return cause.Error()
		}
	}
	return ev.GetWorkflowExecutionFailedEventAttributes().GetFailure().GetMessage()
}
