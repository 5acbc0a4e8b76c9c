package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"rotator/catalog"
)

func (a *app) schedulesApplyCmd() *cobra.Command {
	var file string
	var prune, dryRun bool
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Create or update one Schedule per catalog target (and the daily TLS scan)",
		Long: `Create or update one Temporal Schedule per catalog target, ID rotation/<target>, that
starts a rotation every 'every' (overlap policy Skip, with jitter), plus the daily
certificate scan rotation/certificate-scan when the catalog has a tls target.
A Schedule is updated only when it differs from the catalog; a paused one stays paused.
Schedules of targets no longer in the catalog are reported, and deleted with --prune.
Only Schedules rotator manages for this task queue are ever touched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, err := catalog.Load(cmp.Or(file, a.catalogPath))
			if err != nil {
				return err
			}
			desired, err := planSchedules(cat)
			if err != nil {
				return err
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			return a.applySchedules(cmd.Context(), c, desired, prune, dryRun)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "catalog file (default: the --catalog file)")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete rotator's Schedules whose target is no longer in the catalog")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would change and change nothing")
	return cmd
}

// applyStep is what apply does to one desired Schedule.
type applyStep struct {
	d       desiredSchedule
	create  bool
	changes []string
}

// applySchedules describes every Schedule first and changes nothing if one
// of them cannot be applied, so that a refused apply leaves no half-applied
// catalog behind.
func (a *app) applySchedules(ctx context.Context, c client.Client, desired []desiredSchedule, prune, dryRun bool) error {
	sc := c.ScheduleClient()
	tq := a.temporal.TaskQueue
	var steps []applyStep
	var refused []error
	want := map[string]bool{}
	for _, d := range desired {
		want[d.id] = true
		desc, err := sc.GetHandle(ctx, d.id).Describe(ctx)
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			steps = append(steps, applyStep{d: d, create: true})
			continue
		}
		if err != nil {
			return fmt.Errorf("describe schedule %s: %w", d.id, err)
		}
		act, _ := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
		var wfType, actQueue string
		if act != nil {
			wfType, _ = act.Workflow.(string)
			actQueue = act.TaskQueue
		}
		switch {
		case !managed(d.id, wfType, desc.Memo):
			refused = append(refused, fmt.Errorf("schedule %s exists but is not rotator's (it starts %q): delete or rename it, then apply again", d.id, wfType))
		case actQueue != tq:
			// Schedule IDs are shared by the whole namespace; another
			// worker's catalog owns this one, and taking it over would
			// move its rotations to this worker.
			refused = append(refused, fmt.Errorf("schedule %s starts workflows on task queue %s, not %s: another rotator worker manages it; apply with --task-queue %s, or delete it first (temporal schedule delete --schedule-id %s)",
				d.id, actQueue, tq, actQueue, d.id))
		default:
			steps = append(steps, applyStep{d: d, changes: d.diff(desc)})
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("nothing changed: %w", errors.Join(refused...))
	}
	var gone []string
	list, err := a.managedSchedules(ctx, sc)
	if err != nil {
		return err
	}
	for _, m := range list {
		if !want[m.id] {
			gone = append(gone, m.id)
		}
	}

	would := func(s string) string {
		if dryRun {
			return "would be " + s
		}
		return s
	}
	var created, updated, deleted, unchanged int
	for _, st := range steps {
		d := st.d
		switch {
		case st.create:
			created++
			line := fmt.Sprintf("every %s, jitter %s", days(d.every), days(d.jitter))
			if !dryRun {
				if err := a.createSchedule(ctx, sc, d); err != nil {
					return err
				}
				if next := nextRuns(ctx, sc, d.id, 1); next != "" {
					line += ", next run " + next
				}
			}
			fmt.Fprintf(a.out, "%s: %s (%s)\n", d.id, would("created"), line)
		case len(st.changes) == 0:
			unchanged++
			fmt.Fprintf(a.out, "%s: unchanged\n", d.id)
		default:
			updated++
			if !dryRun {
				if err := updateSchedule(ctx, sc.GetHandle(ctx, d.id), d, tq); err != nil {
					return err
				}
			}
			fmt.Fprintf(a.out, "%s: %s (%s)\n", d.id, would("updated"), strings.Join(st.changes, "; "))
		}
	}
	for _, id := range gone {
		if !prune {
			fmt.Fprintf(a.out, "%s: not in the catalog (kept; --prune deletes it)\n", id)
			continue
		}
		deleted++
		if !dryRun {
			if err := sc.GetHandle(ctx, id).Delete(ctx); err != nil {
				return fmt.Errorf("delete schedule %s: %w", id, err)
			}
		}
		fmt.Fprintf(a.out, "%s: %s (not in the catalog)\n", id, would("deleted"))
	}

	switch {
	case created+updated+deleted == 0:
		fmt.Fprintln(a.out, "nothing changed")
	case dryRun:
		fmt.Fprintf(a.out, "dry run, nothing changed: %d would be created, %d updated, %d deleted; %d unchanged\n",
			created, updated, deleted, unchanged)
	default:
		fmt.Fprintf(a.out, "%d created, %d updated, %d deleted; %d unchanged\n", created, updated, deleted, unchanged)
	}
	return nil
}

func (a *app) createSchedule(ctx context.Context, sc client.ScheduleClient, d desiredSchedule) error {
	_, err := sc.Create(ctx, client.ScheduleOptions{
		ID:     d.id,
		Spec:   d.spec(),
		Action: d.action(a.temporal.TaskQueue),
		// A run that finds the previous one still going is skipped, not
		// queued: the wrapper only starts a rotation and ends at once, so
		// one still running means something is wrong with it.
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Memo:    map[string]any{memoManagedBy: managedByRotator, memoTarget: d.target},
	})
	if err != nil {
		return fmt.Errorf("create schedule %s: %w", d.id, err)
	}
	return nil
}

// updateSchedule replaces what apply manages and keeps the rest: a
// Schedule an operator paused stays paused, with its note.
func updateSchedule(ctx context.Context, h client.ScheduleHandle, d desiredSchedule, taskQueue string) error {
	err := h.Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			spec := d.spec()
			s.Spec = &spec
			s.Action = d.action(taskQueue)
			policy := client.SchedulePolicies{}
			if s.Policy != nil {
				policy = *s.Policy
			}
			policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
			s.Policy = &policy
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("update schedule %s: %w", d.id, err)
	}
	return nil
}
