package main

import (
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

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
		d := newDesired(scheduleID(t.Name), t.Name, t.Every.Duration, workflows.TypeScheduledRotation,
			"scheduled/"+t.Name, in, decodeAs[workflows.ScheduledInput])
		if w := cat.WindowFor(t); w != nil {
			d.every, d.offset, d.jitter = inWindow(d.id, d.every, *w)
		}
		out = append(out, d)
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

// week is the period a windowed cadence is rounded to.
const week = 7 * 24 * time.Hour

// windowReference is the Monday whose week places windowed schedules: a
// fixed date, so that every apply computes the same offset.
var windowReference = time.Date(2026, time.January, 5, 0, 0, 0, 0, time.UTC)

// inWindow places a windowed target's runs inside its window. A cadence of
// a week or more is rounded down to whole weeks (90 days: 84), so every run
// falls on the same weekday and time; never later than the catalog asks.
// The run is set a margin after an opening (spread by the ID over the
// window's days and the cadence's weeks) and has no jitter, which could
// push it out. The opening is taken in the zone's January time: half the
// year a run lands an hour earlier or later in the window, so windows of
// three hours or more hold it all year; a run that still falls outside waits
// for the window in the rotation.
func inWindow(id string, every time.Duration, w catalog.Window) (time.Duration, time.Duration, time.Duration) {
	if every >= week {
		every = every / week * week
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	sum := h.Sum64()
	loc, err := time.LoadLocation(w.TimeZone)
	if w.TimeZone == "" || err != nil {
		loc = time.UTC
	}
	ref := time.Date(windowReference.Year(), windowReference.Month(), windowReference.Day(), 0, 0, 0, 0, loc)
	if every >= week {
		ref = ref.Add(time.Duration(sum%uint64(every/week)) * week)
	}
	opens, _ := w.Next(ref)
	days := len(w.Days)
	if days == 0 {
		days = 7
	}
	for i := sum % uint64(days); i > 0; i-- {
		closes := w.Closes(opens)
		opens, _ = w.Next(closes)
	}
	length := w.Closes(opens).Sub(opens)
	margin := min(time.Hour+time.Duration(sum%30)*time.Minute, length/2)
	run := opens.Add(margin)
	offset := run.Sub(time.Unix(0, 0)) % every
	return every, offset, 0
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
