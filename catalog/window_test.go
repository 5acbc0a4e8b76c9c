package catalog_test

import (
	"testing"
	"time"

	"rotator/catalog"
)

const windowS = "window settings"

// TestWindowBadInput: a window that can never open, or does not parse, is
// refused, naming the field and the fix.
func TestWindowBadInput(t *testing.T) {
	runBadInputs(t, []badInput{
		{windowS, "no days", target("jwt", "    window: {days: [], start: '09:00', end: '16:00'}\n"), "window.days", "the window never opens", []string{"targets[0] (a)"}},
		{windowS, "unknown day", target("jwt", "    window: {days: [mon, monday], start: '09:00', end: '16:00'}\n"), "window.days[1]", "use mon, tue, wed", []string{`"monday"`}},
		{windowS, "start equals end", target("jwt", "    window: {start: '09:00', end: '09:00'}\n"), "window", "start and end are both 09:00, so the window never opens", nil},
		{windowS, "bad start", target("jwt", "    window: {start: '9am', end: '16:00'}\n"), "window.start", `use HH:MM, e.g. "09:00"`, nil},
		{windowS, "missing end", target("jwt", "    window: {start: '09:00'}\n"), "window.end", "is not a time of day", nil},
		{windowS, "hour 24", target("jwt", "    window: {start: '09:00', end: '24:00'}\n"), "window.end", "is not a time of day", nil},
		{windowS, "unknown zone", target("jwt", "    window: {start: '09:00', end: '16:00', timeZone: Mars/Olympus}\n"), "window.timeZone", "use e.g. Europe/Berlin", nil},
		{windowS, "catalog window", "window: {start: '09:00', end: '16:00', timeZone: CEST}\n" + target("jwt", ""), "window.timeZone", "is not an IANA time zone", nil},
	})
}

// TestWindowNext: when a window is open and when it next opens, across a
// weekend, past midnight and across a change to summer time.
func TestWindowNext(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	office := catalog.Window{Days: []string{"mon", "tue", "wed", "thu"}, Start: "09:00", End: "16:00", TimeZone: "Europe/Berlin"}
	night := catalog.Window{Start: "22:00", End: "04:00"}
	at := func(loc *time.Location, s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		w      catalog.Window
		now    time.Time
		inside bool
		next   time.Time
	}{
		{"thursday noon", office, at(berlin, "2026-12-03 12:00"), true, at(berlin, "2026-12-03 12:00")},
		{"thursday at close", office, at(berlin, "2026-12-03 16:00"), false, at(berlin, "2026-12-07 09:00")},
		{"friday", office, at(berlin, "2026-12-04 10:00"), false, at(berlin, "2026-12-07 09:00")},
		{"monday early", office, at(berlin, "2026-12-07 08:59"), false, at(berlin, "2026-12-07 09:00")},
		{"monday at opening", office, at(berlin, "2026-12-07 09:00"), true, at(berlin, "2026-12-07 09:00")},
		{"in UTC, 08:30Z is 09:30 in Berlin", office, at(time.UTC, "2026-12-07 08:30"), true, at(time.UTC, "2026-12-07 08:30")},
		{"before summer time", office, at(berlin, "2026-03-26 17:00"), false, at(berlin, "2026-03-30 09:00")},
		{"past midnight, still open", night, at(time.UTC, "2026-12-04 03:00"), true, at(time.UTC, "2026-12-04 03:00")},
		{"past midnight, closed", night, at(time.UTC, "2026-12-04 04:00"), false, at(time.UTC, "2026-12-04 22:00")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, inside := tc.w.Next(tc.now)
			if inside != tc.inside || !next.Equal(tc.next) {
				t.Errorf("Next(%s) = %s, %v; want %s, %v", tc.now, next, inside, tc.next, tc.inside)
			}
		})
	}
	// Summer time: 09:00 in Berlin is 07:00 UTC, not 08:00.
	if next, _ := office.Next(at(berlin, "2026-03-26 17:00")); next.UTC().Hour() != 7 {
		t.Errorf("the opening after the change to summer time is %s UTC, want 07:00", next.UTC())
	}
}

// TestWindowFor: a target's window replaces the catalog's.
func TestWindowFor(t *testing.T) {
	c, err := catalog.Parse([]byte("window: {start: '09:00', end: '16:00'}\n" +
		"targets:\n  - name: a\n    kind: jwt\n" + nsSec + "    window: {days: [sat], start: '01:00', end: '05:00', timeZone: Europe/Berlin}\n" +
		"  - name: b\n    kind: jwt\n    namespace: ns\n    secret: s2\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.Target("a")
	b, _ := c.Target("b")
	if got := c.WindowFor(a).String(); got != "sat 01:00-05:00 Europe/Berlin" {
		t.Errorf("a's window %q", got)
	}
	if got := c.WindowFor(b).String(); got != "every day 09:00-16:00 UTC" {
		t.Errorf("b's window %q", got)
	}
}
