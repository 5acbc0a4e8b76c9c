package catalog

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// targetOf is a target of kind with the common fields set and extra lines
// (indented as target fields) added.
func targetOf(kind Kind, extra ...string) []byte {
	s := "targets:\n  - name: a\n    kind: " + string(kind) + "\n    namespace: ns\n    secret: s\n"
	for _, l := range extra {
		s += "    " + l + "\n"
	}
	return []byte(s)
}

// TestKindSpecsComplete: every kind has a spec the generic validation can
// drive: defaults and check, and either a section that is a field of
// Sections with a has func, or explicitly none.
func TestKindSpecsComplete(t *testing.T) {
	// A new kind goes at the end, so that the errors that list kinds keep
	// their order.
	if got, want := Kinds(), []Kind{KindJWT, KindPostgres, KindAPIKeys, KindTLS}; len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Errorf("Kinds() = %v, want it to start with %v: the order errors list kinds in changed", got, want)
	}
	var fields []string
	st := reflect.TypeFor[Sections]()
	for i := range st.NumField() {
		name, _, _ := strings.Cut(st.Field(i).Tag.Get("json"), ",")
		fields = append(fields, name)
	}
	seen := map[string]Kind{}
	for _, k := range Kinds() {
		s, ok := specOf(k)
		if !ok || s.kind != k {
			t.Errorf("kind %s has no spec", k)
			continue
		}
		if s.defaults == nil || s.check == nil {
			t.Errorf("kind %s: defaults and check are required (a no-op func when there is nothing to do)", k)
		}
		if s.every < 0 {
			t.Errorf("kind %s: negative cadence %s", k, s.every)
		}
		if s.section == "" {
			if s.has != nil || s.example != "" {
				t.Errorf("kind %s has no section but a has func or an example", k)
			}
			continue
		}
		if s.has == nil {
			t.Errorf("kind %s: section %s has no has func", k, s.section)
		}
		if !slices.Contains(fields, s.section) {
			t.Errorf("kind %s: section %s is not a field of Sections (%v)", k, s.section, fields)
		}
		if other, dup := seen[s.section]; dup {
			t.Errorf("kinds %s and %s share section %s", other, k, s.section)
		}
		seen[s.section] = k
	}
	kinds := map[Kind]bool{}
	for _, s := range kindSpecs() {
		if kinds[s.kind] {
			t.Errorf("kind %s is registered twice", s.kind)
		}
		kinds[s.kind] = true
	}
}

// TestOtherKindsSectionRefused: for every pair of kinds, a target of one
// carrying the other's section is refused with the generic message, and
// the other kind's checks do not run on it.
func TestOtherKindsSectionRefused(t *testing.T) {
	for _, own := range kindSpecs() {
		for _, other := range kindSpecs() {
			if other.kind == own.kind || other.section == "" {
				continue
			}
			t.Run(string(own.kind)+"/"+other.section, func(t *testing.T) {
				lines := []string{other.section + ": {}"}
				if own.section != "" {
					lines = append(lines, own.section+": {}")
				}
				_, err := Parse(targetOf(own.kind, lines...))
				if err == nil {
					t.Fatal("Parse accepted another kind's section")
				}
				msg := err.Error()
				want := "targets[0] (a): " + other.section + ": is only valid for kind " + string(other.kind) +
					": remove it or set kind: " + string(other.kind)
				if !strings.Contains(msg, want) {
					t.Errorf("error does not contain %q:\n%s", want, msg)
				}
				if strings.Contains(msg, "targets[0] (a): "+other.section+".") {
					t.Errorf("the %s checks ran on a target of kind %s:\n%s", other.kind, own.kind, msg)
				}
				if own.section != "" && strings.Contains(msg, own.section+": is only valid") {
					t.Errorf("the target's own section %s was refused:\n%s", own.section, msg)
				}
			})
		}
	}
}

// TestRequiredSection: a kind with an example refuses a target without
// its section and says what to add; a kind without one accepts it.
func TestRequiredSection(t *testing.T) {
	for _, s := range kindSpecs() {
		t.Run(string(s.kind), func(t *testing.T) {
			c, err := Parse(targetOf(s.kind))
			if s.example == "" {
				if err != nil {
					t.Fatalf("kind %s has an optional section but a target without it is refused: %v", s.kind, err)
				}
				if got := c.Targets[0].Every.Duration; got != s.every {
					t.Errorf("every defaulted to %s, want the spec's %s", got, s.every)
				}
				return
			}
			want := "targets[0] (a): " + s.section + ": is required for kind " + string(s.kind) + ": add " + s.example
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("want an error containing %q, got %v", want, err)
			}
		})
	}
}

// TestDecodeFollowsSections: values under a section keep the type hints
// of their fields, so YAML numbers and booleans in string fields read as
// strings, as they did before Sections was embedded (role: 123 is "123";
// YAML 1.1 reads n and no as false), and errors name the field as the file
// writes it, without the embedded struct.
func TestDecodeFollowsSections(t *testing.T) {
	c, err := Parse(targetOf(KindPostgres, "postgres: {host: h, role: 123, "+
		"strategy: alternating-users, users: [no, 7], adminSecret: {namespace: n, name: s}}"))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Targets[0].Postgres
	if p.Role != "123" || !slices.Equal(p.Users, []string{"false", "7"}) || p.AdminSecret.Namespace != "false" {
		t.Errorf("scalars under postgres lost their string type: %+v %+v", p, p.AdminSecret)
	}
	_, err = Parse(targetOf(KindPostgres, "postgres: {host: h, role: r, port: x}"))
	if err == nil || !strings.Contains(err.Error(), "parse: targets.postgres.port: got string, want a whole number") {
		t.Errorf("want the error to name targets.postgres.port, got %v", err)
	}
}
