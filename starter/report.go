package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"k8s.io/client-go/kubernetes"

	"rotator/catalog"
	"rotator/clients"
	"rotator/report"
	"rotator/workflows"
)

// reportRow is one catalog target in `starter report`.
type reportRow struct {
	Target    string       `json:"target"`
	Kind      catalog.Kind `json:"kind"`
	Namespace string       `json:"namespace"`
	// Current is the version the consumers use; Managed says rotator
	// made it (else it is the base Secret, never rotated by rotator).
	Current string    `json:"current,omitempty"`
	Managed bool      `json:"managed"`
	Created time.Time `json:"created,omitzero"`
	// AgeDays and CadenceDays are in days, as policies are.
	AgeDays     float64   `json:"ageDays"`
	CadenceDays float64   `json:"cadenceDays"`
	NextRun     time.Time `json:"nextRun,omitzero"`
	// LastResult is the last rotation's end (completed, failed,
	// canceled, terminated) or running, with its step; LastAt when it
	// ended, or started if it runs.
	LastResult string    `json:"lastResult"`
	LastAt     time.Time `json:"lastAt,omitzero"`
	Overdue    bool      `json:"overdue"`
	// Error says what could not be read for this target.
	Error string `json:"error,omitempty"`
}

func (a *app) reportCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Every catalog target's current version, its age, cadence, next run, last rotation and whether it is overdue",
		Long: "report answers \"which secrets are older than policy?\": for every target in the catalog it reads\n" +
			"the current version from the cluster (its Secret's creation is its age), the next run from the\n" +
			"target's Schedule and the last rotation from Temporal. A target is overdue when its current\n" +
			"version is older than its every (tls: ttl less renewBefore) plus a day. Exit status 0 either way.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" && output != "csv" {
				return fmt.Errorf("--output: %q is not a format: use table, json or csv", truncate(output))
			}
			cat, err := a.catalog()
			if err != nil {
				return err
			}
			kube, err := clients.Kube(20, 40)
			if err != nil {
				return err
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			now := time.Now()
			var rows []reportRow
			for _, t := range cat.Targets {
				rows = append(rows, a.reportRow(cmd.Context(), c, kube, t, now))
			}
			return a.printReport(rows, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, json or csv")
	return cmd
}

func (a *app) reportRow(ctx context.Context, c client.Client, kube kubernetes.Interface, t catalog.Target, now time.Time) reportRow {
	day := 24 * time.Hour
	row := reportRow{Target: t.Name, Kind: t.Kind, Namespace: t.Namespace, CadenceDays: report.Cadence(t).Hours() / 24}
	var errs []string
	if v, err := report.Current(ctx, kube, t); err != nil {
		errs = append(errs, err.Error())
	} else {
		row.Current, row.Managed, row.Created = v.Name, v.Managed, v.Created
		age := now.Sub(v.Created)
		row.AgeDays = float64(age.Round(time.Hour)) / float64(day)
		row.Overdue = report.Overdue(t, age)
	}
	sched := scheduleID(t.Name)
	if t.Kind == catalog.KindTLS {
		sched = scheduleID(workflows.CertificateScanID)
	}
	if desc, err := c.ScheduleClient().GetHandle(ctx, sched).Describe(ctx); err == nil && len(desc.Info.NextActionTimes) > 0 {
		row.NextRun = desc.Info.NextActionTimes[0].UTC()
	}
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: a.temporal.NamespaceName(), PageSize: 1,
		Query: fmt.Sprintf("WorkflowId = '%s'", workflows.WorkflowID(t.Name)), // newest first, visibility's order
	})
	switch {
	case err != nil:
		errs = append(errs, fmt.Sprintf("list rotations: %v", err))
	case len(resp.GetExecutions()) == 0:
		row.LastResult = "never"
	default:
		e := resp.GetExecutions()[0]
		status := strings.ToLower(strings.TrimPrefix(e.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))
		row.LastResult = status
		if step := searchAttributes(e.GetSearchAttributes())[workflows.SearchStep.GetName()]; step != "" {
			row.LastResult += " (" + step + ")"
		}
		row.LastAt = e.GetStartTime().AsTime().UTC()
		if e.GetCloseTime() != nil && e.GetCloseTime().IsValid() && e.GetCloseTime().AsTime().Unix() > 0 {
			row.LastAt = e.GetCloseTime().AsTime().UTC()
		}
	}
	row.Error = strings.Join(errs, "; ")
	return row
}

func (a *app) printReport(rows []reportRow, output string) error {
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format(time.RFC3339)
	}
	yesNo := map[bool]string{true: "yes", false: "no"}
	switch output {
	case "json":
		enc := json.NewEncoder(a.out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "csv":
		w := csv.NewWriter(a.out)
		_ = w.Write([]string{"target", "kind", "namespace", "current", "managed", "created", "age_days", "cadence_days", "next_run", "last_result", "last_at", "overdue", "error"})
		for _, r := range rows {
			_ = w.Write([]string{r.Target, string(r.Kind), r.Namespace, r.Current, yesNo[r.Managed], stamp(r.Created),
				fmt.Sprintf("%.1f", r.AgeDays), fmt.Sprintf("%.0f", r.CadenceDays), stamp(r.NextRun), r.LastResult, stamp(r.LastAt), yesNo[r.Overdue], r.Error})
		}
		w.Flush()
		return w.Error()
	}
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tKIND\tCURRENT\tAGE\tEVERY\tNEXT RUN\tLAST ROTATION\tOVERDUE")
	overdue := 0
	for _, r := range rows {
		cur, age := r.Current, fmt.Sprintf("%.0fd", r.AgeDays)
		switch {
		case r.Current == "":
			cur, age = "?", "?"
		case !r.Managed:
			cur += " (never rotated)"
		}
		last := r.LastResult
		if !r.LastAt.IsZero() {
			last += " " + r.LastAt.Format(time.RFC3339)
		}
		od := yesNo[r.Overdue]
		if r.Overdue {
			overdue++
			od = "YES"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0fd\t%s\t%s\t%s\n", r.Target, r.Kind, cur, age, r.CadenceDays, stamp(r.NextRun), last, od)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(a.out, "%s: %s\n", r.Target, r.Error)
		}
	}
	fmt.Fprintf(a.out, "%d of %d targets overdue\n", overdue, len(rows))
	return nil
}
