package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in YAML as "2160h", "90m" or "90d".
type Duration struct {
	time.Duration
	// set tells an explicit zero, which is an error, from an absent field,
	// which takes the default.
	set bool
	// bad says why the written value is not a duration. Unmarshalling
	// does not know the field's name, so validation reports it, with the
	// target and the field.
	bad string
}

// UnmarshalJSON reads a duration string; sigs.k8s.io/yaml converts YAML to
// JSON first, so this also serves YAML. A value that is not a duration is
// kept as a problem for validation, never an unmarshalling error.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	*d = Duration{set: true}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		d.bad = fmt.Sprintf("want a duration string such as \"2160h\" or \"90d\", got %s", truncate(string(b)))
		return nil
	}
	v, err := ParseDuration(s)
	if err != nil {
		d.bad = err.Error()
		return nil
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration in Go's notation.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(d.String())), nil
}

// IsZero reports an unset duration, so that omitzero leaves it out and a
// written catalog parses back to the same defaults.
func (d Duration) IsZero() bool { return d.Duration == 0 && d.bad == "" }

// maxDays is the longest whole number of days a time.Duration holds.
const maxDays = int64(math.MaxInt64 / (24 * time.Hour))

// ParseDuration accepts Go durations plus a whole number of days ("90d"),
// since rotation cadences are written in days.
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a duration: use hours or days, e.g. \"2160h\" or \"90d\"", truncate(s))
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, bad
		}
		if err != nil || n > maxDays || n < -maxDays {
			return 0, fmt.Errorf("%q is too long: use at most %dd (292 years)", truncate(s), maxDays)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, bad
	}
	return v, nil
}

// The shortest durations that make sense: a cadence shorter than an hour
// would start rotations faster than one can roll out, a grace or a wait for
// keys under a minute ends before anyone can act.
const (
	minEvery        = time.Hour
	minGrace        = time.Minute
	minStageTimeout = time.Minute
	// minRolloutTimeout leaves a pod time to be scheduled and started.
	minRolloutTimeout = 10 * time.Second
)

// checkDuration reports a duration that did not parse or is below min;
// an absent one took its default and is not checked.
func checkDuration(fail func(field, format string, args ...any), field string, d Duration, min time.Duration, example string) {
	switch {
	case d.bad != "":
		fail(field, "%s", d.bad)
	case !d.set:
	case d.Duration <= 0:
		fail(field, "%s must be positive, %s", d.Duration, example)
	case d.Duration < min:
		fail(field, "%s is too short: use at least %s, %s", d.Duration, shortDuration(min), example)
	}
}

// FormatDuration writes a duration as a catalog author would: 1h0m0s as
// 1h, 1m0s as 1m.
func FormatDuration(d time.Duration) string { return shortDuration(d) }

// shortDuration writes 1h0m0s as 1h and 1m0s as 1m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
