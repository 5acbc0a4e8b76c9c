package main

import (
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"rotator/catalog"
	"rotator/workflows"
)

// The sample catalog plans one Schedule per target on the runbook's cadence.
func TestPlanSchedulesFromTheSampleCatalog(t *testing.T) {
	cat, err := catalog.Load("../rotator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := planSchedules(cat)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]desiredSchedule{}
	for _, d := range plan {
		byID[d.id] = d
	}
	const day = 24 * time.Hour
	for _, w := range []struct {
		id    string
		every time.Duration
		kind  catalog.Kind
	}{
		{"rotation/orchestrator-jwt", 90 * day, catalog.KindJWT},
		{"rotation/orchestrator-db", 90 * day, catalog.KindPostgres},
		{"rotation/orchestrator-llm", 180 * day, catalog.KindAPIKeys},
	} {
		d, ok := byID[w.id]
		if !ok {
			t.Errorf("no schedule %s in %+v", w.id, plan)
			continue
		}
		target := strings.TrimPrefix(w.id, "rotation/")
		if d.every != w.every || d.jitter != day {
			t.Errorf("%s: every %s jitter %s", w.id, d.every, d.jitter)
		}
		if d.offset < 0 || d.offset >= d.every || d.offset%time.Minute != 0 {
			t.Errorf("%s: offset %s must be whole minutes within the interval", w.id, d.offset)
		}
		a := d.action("rotator")
		if a.Workflow != workflows.TypeScheduledRotation || a.ID != "scheduled/"+target || a.TaskQueue != "rotator" {
			t.Errorf("%s: action %+v", w.id, a)
		}
		if in := a.Args[0]; in != (workflows.ScheduledInput{Target: target, Kind: w.kind}) {
			t.Errorf("%s: input %+v", w.id, in)
		}
	}
	// One schedule per target, except tls targets, which the scan covers.
	want, tls := 0, false
	for _, tg := range cat.Targets {
		if tg.Kind == catalog.KindTLS {
			tls = true
		} else {
			want++
		}
	}
	if _, ok := byID["rotation/"+workflows.CertificateScanID]; ok != tls {
		t.Errorf("certificate scan scheduled: %v, catalog has a tls target: %v", ok, tls)
	}
	if tls {
		want++
	}
	if len(plan) != want {
		t.Errorf("want %d schedules, got %d", want, len(plan))
	}
	again, _ := planSchedules(cat)
	if again[0].offset != plan[0].offset {
		t.Errorf("the offset must be the same on every apply")
	}
	if plan[0].offset == plan[1].offset {
		t.Errorf("two targets of the same cadence should not fire in the same minute: both at %s", plan[0].offset)
	}
}

// A tls target gets no cadence of its own; the daily certificate scan covers it.
func TestPlanSchedulesAddsTheDailyScanForTLS(t *testing.T) {
	cat := &catalog.Catalog{Targets: []catalog.Target{
		{Name: "web-tls", Kind: catalog.KindTLS},
		{Name: "app-jwt", Kind: catalog.KindJWT, Every: catalog.Duration{Duration: 5 * 24 * time.Hour}},
	}}
	plan, err := planSchedules(cat)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 2 || plan[0].id != "rotation/app-jwt" || plan[1].id != "rotation/certificate-scan" {
		t.Fatalf("want app-jwt and the scan, got %+v", plan)
	}
	scan := plan[1]
	a := scan.action("q")
	if scan.every != 24*time.Hour || scan.jitter != 24*time.Hour/10 || a.Workflow != workflows.TypeCertificateScan || a.ID != workflows.CertificateScanID {
		t.Fatalf("scan: every %s jitter %s action %+v", scan.every, scan.jitter, a)
	}
	if plan[0].jitter != 12*time.Hour {
		t.Errorf("5d cadence: want a tenth of it as jitter, 12h, got %s", plan[0].jitter)
	}

	_, err = planSchedules(&catalog.Catalog{Targets: []catalog.Target{
		{Name: "certificate-scan", Kind: catalog.KindJWT, Every: catalog.Duration{Duration: time.Hour}},
		{Name: "web-tls", Kind: catalog.KindTLS},
	}})
	if err == nil || !strings.Contains(err.Error(), "is the daily certificate scan's: rename the target") {
		t.Fatalf("want a clash with the scan's ID, got %v", err)
	}
}

// diff finds exactly what apply would change, and nothing on a match.
func TestScheduleDiff(t *testing.T) {
	d := newDesired("rotation/app", "app", 90*24*time.Hour, workflows.TypeScheduledRotation, "scheduled/app",
		workflows.ScheduledInput{Target: "app", Kind: catalog.KindJWT}, decodeAs[workflows.ScheduledInput])
	payload := func(v any) any {
		p, err := converter.GetDefaultDataConverter().ToPayload(v)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// described builds what Describe returns for a schedule apply created.
	described := func() *client.ScheduleDescription {
		spec := d.spec()
		a := d.action("rotator")
		a.Args = []any{payload(a.Args[0])}
		return &client.ScheduleDescription{Schedule: client.Schedule{
			Spec: &spec, Action: a,
			Policy: &client.SchedulePolicies{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchupWindow: 365 * 24 * time.Hour},
			State:  &client.ScheduleState{Paused: true, Note: "paused by an operator"},
		}}
	}
	if got := d.diff(described()); len(got) != 0 {
		t.Fatalf("a schedule as created must be unchanged (paused or not), got %q", got)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*client.ScheduleDescription)
		want   string
	}{
		{"every", func(s *client.ScheduleDescription) { s.Schedule.Spec.Intervals[0].Every = 30 * 24 * time.Hour }, "every 30d → 90d"},
		{"jitter", func(s *client.ScheduleDescription) { s.Schedule.Spec.Jitter = 0 }, "jitter 0s → 1d"},
		{"overlap", func(s *client.ScheduleDescription) {
			s.Schedule.Policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL
		}, "overlap AllowAll → Skip"},
		{"cron added", func(s *client.ScheduleDescription) { s.Schedule.Spec.CronExpressions = []string{"@daily"} }, "set outside rotator"},
		{"input", func(s *client.ScheduleDescription) {
			s.Schedule.Action.(*client.ScheduleWorkflowAction).Args = []any{payload(workflows.ScheduledInput{Target: "app", Kind: catalog.KindPostgres})}
		}, "input"},
		{"workflow", func(s *client.ScheduleDescription) {
			s.Schedule.Action.(*client.ScheduleWorkflowAction).Workflow = "Other"
		}, "workflow Other → ScheduledRotation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			desc := described()
			tc.mutate(desc)
			got := d.diff(desc)
			if len(got) != 1 || !strings.Contains(got[0], tc.want) {
				t.Fatalf("want one change containing %q, got %q", tc.want, got)
			}
		})
	}
}

func TestManagedOnlyTouchesRotatorsSchedules(t *testing.T) {
	memo := func(by string) *commonpb.Memo {
		p, _ := converter.GetDefaultDataConverter().ToPayload(by)
		return &commonpb.Memo{Fields: map[string]*commonpb.Payload{"managed-by": p}}
	}
	for _, tc := range []struct {
		id, wfType string
		memo       *commonpb.Memo
		want       bool
	}{
		{"rotation/app", workflows.TypeScheduledRotation, memo("rotator"), true},
		{"rotation/certificate-scan", workflows.TypeCertificateScan, memo("rotator"), true},
		{"rotation/app", workflows.TypeScheduledRotation, nil, true},
		{"rotation/app", workflows.TypeScheduledRotation, memo("someone-else"), false},
		{"rotation/app", "NightlyBackup", memo("rotator"), false},
		{"backup/app", workflows.TypeScheduledRotation, memo("rotator"), false},
	} {
		if got := managed(tc.id, tc.wfType, tc.memo); got != tc.want {
			t.Errorf("managed(%s, %s, %v) = %v, want %v", tc.id, tc.wfType, tc.memo, got, tc.want)
		}
	}
}

// TestWindowedSchedulesRunInsideTheWindow: a target with a window gets a
// cadence of whole weeks, no later than the catalog's, and no jitter, and
// every run of the next five years falls inside the window, summer time
// included.
func TestWindowedSchedulesRunInsideTheWindow(t *testing.T) {
	cat, err := catalog.Parse([]byte("window: {days: [mon, tue, wed, thu], start: '09:00', end: '16:00', timeZone: Europe/Berlin}\n" +
		"targets:\n" +
		"  - {name: a, kind: jwt, namespace: ns, secret: s}\n" +
		"  - {name: b, kind: jwt, namespace: ns, secret: s2, every: 180d}\n" +
		"  - {name: c, kind: jwt, namespace: ns, secret: s3, every: 1d, window: {start: '01:00', end: '04:00', timeZone: America/New_York}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := planSchedules(cat)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{"a": 84 * 24 * time.Hour, "b": 175 * 24 * time.Hour, "c": 24 * time.Hour}
	from, until := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2031, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, d := range plan {
		tg, _ := cat.Target(d.target)
		w := cat.WindowFor(tg)
		if d.every != want[d.target] || d.jitter != 0 {
			t.Errorf("%s: every %s, jitter %s; want every %s and no jitter", d.target, d.every, d.jitter, want[d.target])
		}
		runs := 0
		first := from.Add(-from.Sub(time.Unix(0, 0))%d.every + d.offset)
		for run := first; run.Before(until); run = run.Add(d.every) {
			if _, inside := w.Next(run); !inside {
				t.Errorf("%s: the run at %s (%s) is outside %s", d.target, run.UTC(), run.In(mustZone(t, w.TimeZone)), w)
			}
			runs++
		}
		if runs < 10 {
			t.Errorf("%s: only %d runs checked", d.target, runs)
		}
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
