package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"

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
					var got string
					p := ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()[workflows.SearchStep.GetName()]
					if p != nil && json.Unmarshal(p.GetData(), &got) == nil && got == step {
						fmt.Fprintf(a.out, "%s reached step %s\n", id, step)
						return nil
					}
				case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
					if step == string(workflows.StepDone) {
						fmt.Fprintf(a.out, "%s reached step %s\n", id, step)
						return nil
					}
					return fmt.Errorf("%s completed before reaching step %s", id, step)
				case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
					return fmt.Errorf("%s failed before reaching step %s: %s", id, step,
						ev.GetWorkflowExecutionFailedEventAttributes().GetFailure().GetMessage())
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
