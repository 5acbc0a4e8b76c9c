package catalog

import (
	"strings"
	"time"
)

// Kind names a family of secrets that share one way of rotating.
type Kind string

// Sections are the kinds' own parts of a target; a target carries the one
// of its kind. Target embeds them without a name, so each is a field of the
// target in rotator.yaml (jwt:, postgres:, ...) and in Go (t.Postgres).
type Sections struct {
	// JWT configures the jwt kind.
	JWT *JWT `json:"jwt,omitempty"`
	// Postgres configures the postgres kind.
	Postgres *Postgres `json:"postgres,omitempty"`
	// APIKeys configures the apikeys kind.
	APIKeys *APIKeys `json:"apiKeys,omitempty"`
	// TLS configures the tls kind.
	TLS *TLS `json:"tls,omitempty"`
	// Redis configures the redis kind.
	Redis *Redis `json:"redis,omitempty"`
}

// kindSpecs is the registry: every kind this worker rotates, in the order
// errors list them. A kind is listed only once its workflow exists, so a
// catalog never promises a rotation that cannot run. Adding a kind means a
// file of its own (see jwt.go), a field in Sections and a line here.
func kindSpecs() []kindSpec {
	return []kindSpec{jwtKind(), postgresKind(), apiKeysKind(), tlsKind(), redisKind()}
}

// kindSpec is what validation needs to know of a kind; the rest of its
// validation is shared by every target.
type kindSpec struct {
	kind Kind
	// section is the kind's field in rotator.yaml, "" when it has none.
	section string
	// example completes "add ..." when the section is required and
	// missing; "" makes the section optional.
	example string
	// has reports whether the target carries the section, whatever its
	// kind; nil when the kind has no section.
	has func(*Target) bool
	// every is the runbook's cadence, zero for a kind that is not
	// rotated on a schedule.
	every time.Duration
	// defaults fills what a target of the kind leaves out; it runs only
	// on a target of the kind that carries the section or may omit it.
	defaults func(*Target)
	// check reports, with fail, what is wrong with a target of the kind,
	// after defaults; key checks belong here, each kind stores its
	// material under keys of its own.
	check func(*Target, failFunc)
	// logins lists the logins whose passwords the target's rotations set,
	// for the check that no two targets set one; nil for a kind without.
	logins func(Target) []passwordRole
}

// failFunc records one validation error of a field; format and args
// explain it and say how to fix it.
type failFunc func(field, format string, args ...any)

// Kinds returns every supported kind, in the order errors list them.
func Kinds() []Kind {
	specs := kindSpecs()
	out := make([]Kind, 0, len(specs))
	for _, s := range specs {
		out = append(out, s.kind)
	}
	return out
}

// specOf returns the spec of a kind, false for a kind this worker does not
// rotate.
func specOf(k Kind) (kindSpec, bool) {
	for _, s := range kindSpecs() {
		if s.kind == k {
			return s, true
		}
	}
	return kindSpec{}, false
}

// carries reports whether the target carries the spec's section.
func (s kindSpec) carries(t *Target) bool {
	return s.has != nil && s.has(t)
}

// applies reports whether the spec's defaults and checks apply to the
// target: it is of the kind, with the section unless that is optional.
func (s kindSpec) applies(t *Target) bool {
	return t.Kind == s.kind && (s.example == "" || s.carries(t))
}

// kindList is the list of kinds an error offers.
func kindList() string {
	s := make([]string, 0, len(kindSpecs()))
	for _, k := range Kinds() {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}
