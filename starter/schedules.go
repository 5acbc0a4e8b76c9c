package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"rotator/catalog"
	"rotator/codec"
	"rotator/workflows"
)

// Schedules rotator manages carry this ID prefix and memo, and start one of
// rotator's workflow types; prune and list touch nothing else.
const (
	schedulePrefix   = "rotation/"
	memoManagedBy    = "managed-by"
	memoTarget       = "target"
	managedByRotator = "rotator"
)

// certificateScanEvery is the cadence of the TLS kind's certificate scan,
// scheduled when the catalog has a tls target: daily, so that a
// certificate is renewed within a day of entering its renewBefore window.
const certificateScanEvery = 24 * time.Hour

// maxJitter bounds the random delay of a scheduled run: spreading load is
// worth a few hours, not days of a 90-day cadence.
const maxJitter = 24 * time.Hour

// desiredSchedule is one Schedule as the catalog asks for it.
type desiredSchedule struct {
	id, target string
	every      time.Duration
	offset     time.Duration
	jitter     time.Duration
	wfType     string
	wfID       string
	// input is the action's one argument; decodeInput reads a described
	// one back into the same type to compare.
	input       any
	decodeInput func(*commonpb.Payload) (any, error)
}

// scheduleID is the one Schedule of a target.
func scheduleID(target string) string { return schedulePrefix + target }

// planSchedules turns the catalog into the Schedules it asks for, in
// catalog order, the certificate scan last. It needs no server, so a bad
// catalog is reported before anything is dialed.
func planSchedules(cat *catalog.Catalog) ([]desiredSchedule, error) {
	var out []desiredSchedule
	var errs []error
	tls := false
	for _, t := range cat.Targets {
		if t.Kind == catalog.KindTLS {
			// Certificates renew when the daily scan finds them near
			// expiry, not on a cadence of their own.
			tls = true
			continue
		}
		_, ok := workflows.TypeFor(t.Kind)
		if !ok {
			errs = append(errs, fmt.Errorf("target %s: kind %s has no rotation workflow in this build, so it cannot be scheduled", t.Name, t.Kind))
			continue
		}
		in := workflows.ScheduledInput{Target: t.Name, Kind: t.Kind}
		out = append(out, newDesired(scheduleID(t.Name), t.Name, t.Every.Duration, workflows.TypeScheduledRotation,
			"scheduled/"+t.Name, in, decodeAs[workflows.ScheduledInput]))
	}
	if tls {
		scan := workflows.CertificateScanID
		if slices.ContainsFunc(out, func(d desiredSchedule) bool { return d.target == scan }) {
			errs = append(errs, fmt.Errorf("target %s: its schedule ID %s is the daily certificate scan's: rename the target",
				scan, scheduleID(scan)))
		}
		out = append(out, newDesired(scheduleID(scan), scan, certificateScanEvery, workflows.TypeCertificateScan,
			scan, workflows.CertificateScanInput{}, decodeAs[workflows.CertificateScanInput]))
	}
	return out, errors.Join(errs...)
}

func newDesired(id, target string, every time.Duration, wfType, wfID string, input any,
	decode func(*commonpb.Payload) (any, error)) desiredSchedule {
	return desiredSchedule{id: id, target: target, every: every, offset: offsetFor(id, every),
		jitter: min(every/10, maxJitter), wfType: wfType, wfID: wfID, input: input, decodeInput: decode}
}

// offsetFor places a schedule's runs within its interval. Interval
// schedules are aligned to the Unix epoch, so without an offset every target
// with the same cadence would rotate in the same minute; a hash of the ID
// spreads them and gives the same offset on every apply.
func offsetFor(id string, every time.Duration) time.Duration {
	minutes := uint64(every / time.Minute)
	if minutes == 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return time.Duration(h.Sum64()%minutes) * time.Minute
}

func decodeAs[T any](p *commonpb.Payload) (any, error) {
	var v T
	err := converter.GetDefaultDataConverter().FromPayload(p, &v)
	return v, err
}

func (d desiredSchedule) spec() client.ScheduleSpec {
	return client.ScheduleSpec{
		Intervals: []client.ScheduleIntervalSpec{{Every: d.every, Offset: d.offset}},
		Jitter:    d.jitter,
	}
}

func (d desiredSchedule) action(taskQueue string) *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		// Temporal appends the run's timestamp to this ID.
		ID:        d.wfID,
		Workflow:  d.wfType,
		Args:      []any{d.input},
		TaskQueue: taskQueue,
	}
}

// diff lists what differs between the Schedule as described and as
// desired, in the operator's words; empty means nothing to update. The task
// queue is not compared: apply refuses another queue's Schedule instead.
func (d desiredSchedule) diff(desc *client.ScheduleDescription) []string {
	var changes []string
	s := desc.Schedule
	spec := s.Spec
	if spec == nil {
		spec = &client.ScheduleSpec{}
	}
	var every, offset time.Duration
	if len(spec.Intervals) == 1 {
		every, offset = spec.Intervals[0].Every, spec.Intervals[0].Offset
	}
	switch {
	case len(spec.Intervals) != 1:
		changes = append(changes, fmt.Sprintf("every: %d intervals → %s", len(spec.Intervals), days(d.every)))
	case every != d.every:
		changes = append(changes, fmt.Sprintf("every %s → %s", days(every), days(d.every)))
	case offset != d.offset:
		changes = append(changes, fmt.Sprintf("offset %s → %s", offset, d.offset))
	}
	if spec.Jitter != d.jitter {
		changes = append(changes, fmt.Sprintf("jitter %s → %s", days(spec.Jitter), days(d.jitter)))
	}
	if len(spec.Calendars) > 0 || len(spec.CronExpressions) > 0 || len(spec.Skip) > 0 ||
		!spec.StartAt.IsZero() || !spec.EndAt.IsZero() || spec.TimeZoneName != "" {
		changes = append(changes, "calendar, cron, skip, start/end or time zone set outside rotator, removed")
	}
	if s.Policy == nil || s.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP {
		overlap := enumspb.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED
		if s.Policy != nil {
			overlap = s.Policy.Overlap
		}
		changes = append(changes, fmt.Sprintf("overlap %s → %s", overlap, enumspb.SCHEDULE_OVERLAP_POLICY_SKIP))
	}
	a, ok := s.Action.(*client.ScheduleWorkflowAction)
	if !ok {
		return append(changes, fmt.Sprintf("action → start %s", d.wfType))
	}
	if name, _ := a.Workflow.(string); name != d.wfType {
		changes = append(changes, fmt.Sprintf("workflow %s → %s", name, d.wfType))
	}
	if a.ID != d.wfID {
		changes = append(changes, fmt.Sprintf("workflow ID %s → %s", a.ID, d.wfID))
	}
	if !d.sameInput(a.Args) {
		changes = append(changes, "input")
	}
	return changes
}

// sameInput compares the described action's arguments with the desired
// input by value. An argument the default converter cannot read (a payload
// codec encrypted it) is taken as unchanged: the input follows from the
// target's name, which is part of the schedule's ID, and its kind.
func (d desiredSchedule) sameInput(args []any) bool {
	if len(args) != 1 {
		return false
	}
	p, ok := args[0].(*commonpb.Payload)
	if !ok {
		return reflect.DeepEqual(args[0], d.input)
	}
	// A Schedule written before encryption was required starts rotations
	// with a plain input, which the workers then refuse: rewrite it, and
	// the client's codec encrypts it.
	if required, _ := codec.Required(); required && string(p.GetMetadata()[converter.MetadataEncoding]) != codec.EncodingEncrypted {
		return false
	}
	got, err := d.decodeInput(p)
	if err != nil {
		return true
	}
	return reflect.DeepEqual(got, d.input)
}

// days prints a duration in whole days when it is one, as the catalog does.
func days(d time.Duration) string {
	switch {
	case d > 0 && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d > 0 && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

// managed reports whether a Schedule is rotator's: its ID has rotator's
// prefix and it starts one of rotator's workflow types. The memo is checked
// too where it can be read; a payload codec may have encrypted it.
func managed(id, wfType string, memo *commonpb.Memo) bool {
	if !strings.HasPrefix(id, schedulePrefix) || (wfType != workflows.TypeScheduledRotation && wfType != workflows.TypeCertificateScan) {
		return false
	}
	var by string
	if p := memo.GetFields()[memoManagedBy]; p != nil && converter.GetDefaultDataConverter().FromPayload(p, &by) == nil {
		return by == managedByRotator
	}
	return true
}

func (a *app) schedulesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedules",
		Short: "Manage the Temporal Schedules that rotate every target on its cadence",
	}
	cmd.AddCommand(a.schedulesApplyCmd(), a.schedulesListCmd())
	return cmd
}

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
