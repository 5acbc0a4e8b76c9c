package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"rotator/catalog"
	"rotator/workflows"
)

func (a *app) rotateCmd() *cobra.Command {
	var in workflows.RotateInput
	var wait bool
	cmd := &cobra.Command{
		Use:   "rotate TARGET",
		Short: "Start a rotation of a target from the catalog",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in.Target = args[0]
			_, t, err := a.target(in.Target)
			if err != nil {
				return err
			}
			wfType, ok := workflows.TypeFor(t.Kind)
			if !ok {
				return fmt.Errorf("target %s: kind %s has no workflow in this build", t.Name, t.Kind)
			}
			if in.Grace != "" {
				g, err := catalog.ParseDuration(in.Grace)
				if err != nil || g <= 0 {
					return fmt.Errorf("--grace: %q must be a positive duration such as 24h or 7d; use --emergency to skip grace", truncate(in.Grace))
				}
				// The worker refuses it too; this says so before a
				// workflow is started to fail.
				if min := t.MinGrace.Duration; g < min && !in.Emergency {
					return fmt.Errorf("--grace: %s is shorter than target %s's minimum of %s (minGrace in the catalog): use --grace %s or longer, leave --grace out for the catalog's %s, or lower minGrace in rotator.yaml",
						in.Grace, t.Name, catalog.FormatDuration(min), catalog.FormatDuration(min), catalog.FormatDuration(t.Grace.Duration))
				}
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			id := workflows.WorkflowID(t.Name)
			run, err := c.ExecuteWorkflow(cmd.Context(), client.StartWorkflowOptions{
				ID:                       id,
				TaskQueue:                a.temporal.TaskQueue,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
				WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
				// Without this the SDK hands back the running rotation as if
				// it had just been started.
				WorkflowExecutionErrorWhenAlreadyStarted: true,
				StaticSummary:                            workflows.Summary(t.Name, t.Kind, in.RequestedBy),
				StaticDetails:                            staticDetails(t),
				TypedSearchAttributes: temporal.NewSearchAttributes(
					workflows.SearchTarget.ValueSet(t.Name), workflows.SearchKind.ValueSet(string(t.Kind)),
					workflows.SearchStep.ValueSet(string(workflows.StepPreflight))),
			}, wfType, in)
			var started *serviceerror.WorkflowExecutionAlreadyStarted
			if errors.As(err, &started) {
				return a.alreadyRunning(cmd, id, started.RunId)
			}
			if err != nil {
				return fmt.Errorf("start %s: %w", id, err)
			}
			fmt.Fprintf(a.out, "started %s (%s, run %s)\n", id, wfType, run.GetRunID())
			fmt.Fprintf(a.out, "  watch:   %s\n", a.link(id, run.GetRunID()))
			fmt.Fprintf(a.out, "  status:  starter status %s\n", t.Name)
			fmt.Fprintf(a.out, "  approve: starter approve %s --reason '...'\n", t.Name)
			fmt.Fprintf(a.out, "  abort:   starter abort %s --reason '...'\n", t.Name)
			if !wait {
				return nil
			}
			var st workflows.Status
			err = run.Get(cmd.Context(), &st)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "%s finished: %s\n", id, st.Step)
			if st.Step != workflows.StepDone {
				// A script that waits must not take a rolled-back rotation
				// for a rotated secret.
				return fmt.Errorf("%s did not rotate: %s", id, st.Outcome)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&in.Emergency, "emergency", false, "compromised secret: skip grace and retire the old version as soon as the new one is live")
	cmd.Flags().StringVar(&in.Grace, "grace", "", "override the catalog's grace period, e.g. 24h")
	cmd.Flags().StringVar(&in.RequestedBy, "by", os.Getenv("USER"), "who requests the rotation")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the rotation finishes")
	return cmd
}

// alreadyRunning explains a refused second start, naming the running one.
func (a *app) alreadyRunning(cmd *cobra.Command, id, runID string) error {
	step := "unknown"
	if c, err := a.dial(); err == nil {
		if v, err := c.QueryWorkflow(cmd.Context(), id, runID, workflows.QueryStatus); err == nil {
			var st workflows.Status
			if v.Get(&st) == nil {
				step = fmt.Sprintf("%s since %s", st.Step, st.StepStartedAt.Format(time.RFC3339))
			}
		}
	}
	target := strings.TrimPrefix(id, "rotate/")
	return fmt.Errorf("a rotation of %s is already running: workflow %s, run %s, step %s; approve or abort it first (starter approve|abort %s), see %s",
		target, id, runID, step, target, a.link(id, runID))
}

func (a *app) decideCmd(name string) *cobra.Command {
	var d workflows.Decision
	var timeout time.Duration
	short := map[string]string{
		"approve": "End a rotation's grace period now and retire the old version",
		"abort":   "Abort a rotation: roll consumers back to the old version and delete the new one",
		"retry":   "Run a rollback that could not finish again, once what stopped it is fixed",
	}[name]
	done := map[string]string{"approve": "approved", "abort": "aborted", "retry": "compensation retried"}[name]
	cmd := &cobra.Command{
		Use:   name + " TARGET",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if d.By == "" {
				return fmt.Errorf("--by: is required: say who %ss (defaults to $USER)", name)
			}
			if timeout <= 0 {
				return fmt.Errorf("--timeout: %s must be positive, e.g. --timeout 2m", timeout)
			}
			d.Reason = strings.TrimSpace(d.Reason)
			if name == "approve" || name == "abort" {
				if err := checkReason(name, d.Reason); err != nil {
					return err
				}
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			id := workflows.WorkflowID(args[0])
			if _, err := a.update(cmd.Context(), c, args[0], name, d, timeout); err != nil {
				return a.explain(args[0], name, err)
			}
			what := done
			if d.KeepOld {
				what += ", keeping the old version"
			}
			what += " by " + d.By
			if d.Reason != "" {
				what += ": " + d.Reason
			}
			fmt.Fprintf(a.out, "%s: %s\n", id, what)
			return nil
		},
	}
	cmd.Flags().StringVar(&d.By, "by", os.Getenv("USER"), "who decides (recorded in the rotation's status)")
	reasonHelp := "why (recorded in the rotation's status)"
	if name == "approve" || name == "abort" {
		reasonHelp = fmt.Sprintf("why you %s, at most %d characters (required; recorded in the rotation's status and the worker's log)", name, workflows.MaxReasonLength)
	}
	cmd.Flags().StringVar(&d.Reason, "reason", "", reasonHelp)
	cmd.Flags().DurationVar(&timeout, "timeout", defaultDecisionTimeout, "how long to wait for the worker's answer (it says within seconds when no worker polls)")
	if name == "approve" {
		cmd.Flags().BoolVar(&d.KeepOld, "keep-old", false,
			"finish even though objects still use the old version: keep it, labelled retired, and leave its credential valid")
	}
	return cmd
}

// checkReason is the workflow's rule for a decision's reason, in the
// CLI's words: the worker refuses the same, but this fails before dialing.
func checkReason(verb, reason string) error {
	if err := workflows.CheckReason(verb, reason); err != nil {
		n := utf8.RuneCountInString(reason)
		if n == 0 {
			return fmt.Errorf("--reason: is required: say why you %s, e.g. starter %s <target> --reason \"tokens re-issued\" (recorded with --by in the rotation's status)", verb, verb)
		}
		return fmt.Errorf("--reason: is %d characters long: keep it to %d (link a ticket for more)", n, workflows.MaxReasonLength)
	}
	return nil
}

// explain turns Temporal's errors into the operator's words.
func (a *app) explain(target, verb string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("no running rotation of %s: start one with 'starter rotate %s' (or see 'starter list')", target, target)
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return fmt.Errorf("%s refused: %s", verb, app.Message())
	}
	return fmt.Errorf("%s %s: %w", verb, workflows.WorkflowID(target), err)
}

func (a *app) statusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status TARGET",
		Short: "Show a rotation's step, versions, consumers and decisions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.dial()
			if err != nil {
				return err
			}
			st, err := a.status(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.out)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printStatus(a.out, st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

// status reads a rotation's status: from the query while it runs, and from
// its result once it completed, when no worker need be polling.
func (a *app) status(ctx context.Context, c client.Client, target string) (workflows.Status, error) {
	var st workflows.Status
	id := workflows.WorkflowID(target)
	desc, err := c.DescribeWorkflow(ctx, id, "")
	if err != nil {
		return st, a.explain(target, "status", err)
	}
	runID, status := desc.WorkflowExecution.RunID, desc.Status
	if status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		if err := c.GetWorkflow(ctx, id, runID).Get(ctx, &st); err != nil {
			return st, fmt.Errorf("read result of %s: %w", id, err)
		}
		return st, nil
	}
	v, err := c.QueryWorkflow(ctx, id, runID, workflows.QueryStatus)
	if err != nil {
		if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			// A failed rotation's status needs a worker to replay it;
			// its failure message still says what happened.
			runErr := c.GetWorkflow(ctx, id, runID).Get(ctx, nil)
			return st, fmt.Errorf("%s ended %s: %v (start a worker to see its full status)", id,
				strings.ToLower(strings.TrimPrefix(status.String(), "WORKFLOW_EXECUTION_STATUS_")), runErr)
		}
		return st, a.explain(target, "status", err)
	}
	if err := v.Get(&st); err != nil {
		return st, fmt.Errorf("decode status of %s: %w", id, err)
	}
	return st, nil
}

func (a *app) listCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List rotations (running ones unless --all)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.dial()
			if err != nil {
				return err
			}
			q := "RotationTarget IS NOT NULL"
			if !all {
				q += " AND ExecutionStatus = 'Running'"
			}
			tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TARGET\tKIND\tSTEP\tSTATUS\tSTARTED\tWORKFLOW")
			var token []byte
			for {
				resp, err := c.ListWorkflow(cmd.Context(), &workflowservice.ListWorkflowExecutionsRequest{
					Namespace: a.temporal.NamespaceName(), Query: q, NextPageToken: token,
				})
				if err != nil {
					return fmt.Errorf("list rotations: %w", err)
				}
				for _, e := range resp.Executions {
					sa := searchAttributes(e.GetSearchAttributes())
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", sa["RotationTarget"], sa["RotationKind"], sa["RotationStep"],
						strings.ToLower(strings.TrimPrefix(e.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_")),
						e.GetStartTime().AsTime().Format(time.RFC3339), e.GetExecution().GetWorkflowId())
				}
				if token = resp.NextPageToken; len(token) == 0 {
					break
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "include finished rotations")
	return cmd
}

func (a *app) link(id, runID string) string {
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history", strings.TrimRight(a.uiAddress, "/"),
		url.PathEscape(a.temporal.NamespaceName()), url.PathEscape(id), url.PathEscape(runID))
}

// staticDetails is what the Temporal UI shows as a rotation's details from
// its start: the target as the catalog has it.
func staticDetails(t catalog.Target) string {
	consumers := "discovered by preflight (every object in the namespace that uses the Secret)"
	if len(t.Consumers) > 0 {
		var names []string
		for _, c := range t.Consumers {
			names = append(names, strings.ToLower(c.Kind)+"/"+c.Name)
		}
		consumers = strings.Join(names, ", ")
	}
	d := fmt.Sprintf("**%s** (%s): Secret %s/%s\n\nconsumers: %s\n\ngrace: %s, every %s",
		t.Name, t.Kind, t.Namespace, t.Secret, consumers, days(t.Grace.Duration), days(t.Every.Duration))
	return d
}
