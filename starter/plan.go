package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"rotator/workflows"
)

func (a *app) planCmd() *cobra.Command {
	var in workflows.PlanInput
	var output string
	cmd := &cobra.Command{
		Use:   "plan TARGET",
		Short: "Show what a rotation of a target would do, changing nothing",
		Long: "plan runs the rotation's preflight on the worker, which changes nothing, and prints the\n" +
			"new version, every object it would repoint and how, the rollouts, the database, provider\n" +
			"and Vault calls, the grace and the window. It fails with the errors a rotation would.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output: %q is not a format: use text or json", truncate(output))
			}
			if _, _, err := a.target(args[0]); err != nil {
				return err
			}
			in.Target = args[0]
			c, err := a.dial()
			if err != nil {
				return err
			}
			run, err := c.ExecuteWorkflow(cmd.Context(), client.StartWorkflowOptions{
				ID:        workflows.PlanID(in.Target),
				TaskQueue: a.temporal.TaskQueue,
				// A plan already under way answers this one too.
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
				WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
				WorkflowExecutionTimeout: 10 * time.Minute,
			}, workflows.TypePlanRotation, in)
			if err != nil {
				return fmt.Errorf("start plan of %s: %w", in.Target, err)
			}
			var p workflows.RotationPlan
			if err := run.Get(cmd.Context(), &p); err != nil {
				var app *temporal.ApplicationError
				if errors.As(err, &app) {
					return fmt.Errorf("a rotation of %s would fail: %s (nothing was changed)", in.Target, app.Message())
				}
				return fmt.Errorf("plan of %s: %w", in.Target, err)
			}
			if output == "json" {
				enc := json.NewEncoder(a.out)
				enc.SetIndent("", "  ")
				return enc.Encode(p)
			}
			printPlan(a, p)
			return nil
		},
	}
	cmd.Flags().BoolVar(&in.Emergency, "emergency", false, "plan an emergency rotation (no grace, no window)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// printPlan renders a plan for a person.
func printPlan(a *app, p workflows.RotationPlan) {
	w := a.out
	fmt.Fprintf(w, "A rotation of %s (%s, namespace %s) would run as %s:\n\n", p.Target, p.Kind, p.Namespace, p.Workflow)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("new version", fmt.Sprintf("%s, replacing %s; keys: %s", p.New, p.Current, strings.Join(p.Keys, ", ")))
	for _, c := range p.Changes {
		row("repoint", fmt.Sprintf("%s: %s; rollout: %s", c.Object, c.Patch, c.Rollout))
	}
	if len(p.Changes) == 0 {
		row("repoint", "nothing: no object uses "+p.Current)
	}
	for _, n := range p.NotRepointed {
		row("not repointed", n+": keeps "+p.Current+"; retire waits for it")
	}
	for _, l := range p.Lingering {
		row("other version", l)
	}
	for _, c := range p.Calls {
		row("call", c)
	}
	row("grace", p.Grace)
	if p.Approval != "" {
		row("approval", p.Approval)
	}
	if p.Window != "" {
		win := p.Window
		if !p.WindowOpensAt.IsZero() {
			win += "; closed now, opens " + p.WindowOpensAt.Format(time.RFC3339)
		} else {
			win += "; open now"
		}
		row("window", win)
	}
	if len(p.Notify) > 0 {
		row("notify", strings.Join(p.Notify, ", "))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nsteps:")
	for i, s := range p.Steps {
		fmt.Fprintf(w, "  %d. %-16s %s\n", i+1, s.Step, s.Does)
	}
	fmt.Fprintf(w, "\nNothing was changed. To rotate: starter rotate %s\n", p.Target)
}
