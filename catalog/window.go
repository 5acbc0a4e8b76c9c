package catalog

import (
	"fmt"
	"slices"
	"strings"
	"time"
	// The worker's image may have no zoneinfo; a window's time zone must
	// still resolve the same everywhere.
	_ "time/tzdata"
)

// Window is when the steps of a rotation that consumers see may run:
// promote (and single-user PostgreSQL's apply, which ends the old
// password), and a retire that revokes, locks or rolls out. Outside it
// those steps wait; what no consumer sees runs at once.
type Window struct {
	// Days are the weekdays it opens on (mon, tue, wed, thu, fri, sat,
	// sun); left out, every day.
	Days []string `json:"days,omitempty"`
	// Start and End are the local times it opens and closes, HH:MM; an
	// End before Start closes the next day.
	Start string `json:"start"`
	End   string `json:"end"`
	// TimeZone is an IANA zone such as Europe/Berlin (default UTC).
	TimeZone string `json:"timeZone,omitempty"`
}

var weekdays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// WindowFor is the target's window, else the catalog's, else nil.
func (c *Catalog) WindowFor(t Target) *Window {
	if t.Window != nil {
		return t.Window
	}
	return c.Window
}

// String reads like "mon-thu 09:00-16:00 Europe/Berlin".
func (w Window) String() string {
	days := "every day"
	if len(w.Days) > 0 {
		days = strings.Join(w.Days, ",")
	}
	return fmt.Sprintf("%s %s-%s %s", days, w.Start, w.End, w.zoneName())
}

func (w Window) zoneName() string {
	if w.TimeZone == "" {
		return "UTC"
	}
	return w.TimeZone
}

func (w Window) check(field string, fail failFunc) {
	if w.Days != nil && len(w.Days) == 0 {
		fail(field+".days", "lists no day, so the window never opens: list days such as [mon, tue, wed, thu] or leave days out for every day")
	}
	for i, d := range w.Days {
		if !slices.Contains(weekdays, d) {
			fail(fmt.Sprintf("%s.days[%d]", field, i), "%q is not a day: use mon, tue, wed, thu, fri, sat or sun", truncate(d))
		}
	}
	start, okS := clock(w.Start)
	end, okE := clock(w.End)
	if !okS {
		fail(field+".start", "%q is not a time of day: use HH:MM, e.g. \"09:00\"", truncate(w.Start))
	}
	if !okE {
		fail(field+".end", "%q is not a time of day: use HH:MM, e.g. \"16:00\"", truncate(w.End))
	}
	if okS && okE && start == end {
		fail(field, "start and end are both %s, so the window never opens: make end later than start (or earlier, for a window past midnight)", w.Start)
	}
	if _, err := time.LoadLocation(w.zoneName()); err != nil || strings.EqualFold(w.TimeZone, "local") {
		fail(field+".timeZone", "%q is not an IANA time zone: use e.g. Europe/Berlin or UTC", truncate(w.TimeZone))
	}
}

// clock parses HH:MM into the time since midnight.
func clock(s string) (time.Duration, bool) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, false
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, true
}

// Next returns when the window is next open at or after t: t itself when
// it is open then (inside true), else the next opening. The window must
// have passed validation.
func (w Window) Next(t time.Time) (open time.Time, inside bool) {
	loc, err := time.LoadLocation(w.zoneName())
	if err != nil {
		loc = time.UTC
	}
	start, _ := clock(w.Start)
	end, _ := clock(w.End)
	lt := t.In(loc)
	var next time.Time
	// From the day before (a window past midnight may still be open)
	// to eight days on, which always holds an opening.
	for d := -1; d <= 8; d++ {
		day := time.Date(lt.Year(), lt.Month(), lt.Day()+d, 0, 0, 0, 0, loc)
		if len(w.Days) > 0 && !slices.Contains(w.Days, weekdays[day.Weekday()]) {
			continue
		}
		opens := at(day, start, loc)
		closes := at(day, end, loc)
		if end < start {
			closes = at(day.AddDate(0, 0, 1), end, loc)
		}
		if !t.Before(opens) && t.Before(closes) {
			return t, true
		}
		if opens.After(t) && (next.IsZero() || opens.Before(next)) {
			next = opens
		}
	}
	return next, false
}

// Closes is when the window that opens at opens closes.
func (w Window) Closes(opens time.Time) time.Time {
	start, _ := clock(w.Start)
	end, _ := clock(w.End)
	length := end - start
	if end < start {
		length += 24 * time.Hour
	}
	return opens.Add(length)
}

// at is the wall clock time since midnight on day, in loc.
func at(day time.Time, since time.Duration, loc *time.Location) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), int(since/time.Hour), int(since%time.Hour/time.Minute), 0, 0, loc)
}
