// Package catalog holds the targets file (rotator.yaml): what to rotate, where
// it lives and how often, and the validation that turns a bad file into an
// error naming the target, the field and the fix before anything changes.
package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// Kind names a family of secrets that share one way of rotating.
type Kind string

// The kinds this worker rotates. A kind is listed here only once its workflow
// exists, so a catalog never promises a rotation that cannot run.
const (
	KindJWT Kind = "jwt"
)

// Kinds returns every supported kind, in the order errors list them.
func Kinds() []Kind { return []Kind{KindJWT} }

// Defaults applied to fields a target leaves out.
const (
	DefaultGrace    = 7 * 24 * time.Hour
	DefaultJWTBytes = 64
	DefaultJWTKey   = "secret"
	// MaxJWTBytes bounds key size: larger keys add nothing to HS512 and a
	// Secret must stay well below etcd's 1 MiB object limit.
	MaxJWTBytes = 4096
	minJWTBytes = 32
)

// DefaultEvery is the runbook's cadence for each kind.
var defaultEvery = map[Kind]time.Duration{
	KindJWT: 90 * 24 * time.Hour,
}

// WorkloadKinds are the consumer kinds whose pod templates rotator repoints.
var workloadKinds = []string{"Deployment", "StatefulSet", "DaemonSet"}

// Catalog is the parsed and validated targets file.
type Catalog struct {
	Targets []Target `json:"targets"`
}

// Target is one secret that rotator rotates.
type Target struct {
	// Name identifies the target; the workflow ID is rotate/<name>.
	Name string `json:"name"`
	// Kind selects the rotation workflow.
	Kind Kind `json:"kind"`
	// Namespace holds the Secret and its consumers.
	Namespace string `json:"namespace"`
	// Secret is the base name; versions are <secret>-<n>.
	Secret string `json:"secret"`
	// Key is the data key that holds the material.
	Key string `json:"key,omitempty"`
	// Every is the rotation cadence used by schedules.
	Every Duration `json:"every,omitempty"`
	// Grace is how long the previous version stays valid after promote.
	Grace Duration `json:"grace,omitempty"`
	// JWT configures the jwt kind.
	JWT *JWT `json:"jwt,omitempty"`
	// Consumers lists workloads explicitly; they are discovered when empty.
	Consumers []Consumer `json:"consumers,omitempty"`
}

// JWT configures a jwt target.
type JWT struct {
	// Bytes is the length of the random key before base64 encoding.
	Bytes int `json:"bytes,omitempty"`
	// DualKey makes each new Secret also carry the previous key under
	// "previous", so applications that verify with both keys keep tokens
	// signed before the rotation valid through grace.
	DualKey bool `json:"dualKey,omitempty"`
}

// Consumer names a workload that reads the Secret.
type Consumer struct {
	// Kind is Deployment, StatefulSet or DaemonSet.
	Kind string `json:"kind"`
	// Name is the workload's name in the target's namespace.
	Name string `json:"name"`
}

// Duration is a time.Duration written in YAML as "2160h", "90m" or "90d".
type Duration struct {
	time.Duration
	// set tells an explicit zero, which is an error, from an absent field,
	// which takes the default.
	set bool
}

// UnmarshalJSON reads a duration string; sigs.k8s.io/yaml converts YAML to
// JSON first, so this also serves YAML.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("want a duration string such as \"2160h\" or \"90d\", got %s", b)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration, d.set = v, true
	return nil
}

// MarshalJSON writes the duration in Go's notation.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(d.String())), nil
}

// ParseDuration accepts Go durations plus a whole number of days ("90d"),
// since rotation cadences are written in days.
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: use hours or days, e.g. \"2160h\" or \"90d\"", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: use hours or days, e.g. \"2160h\" or \"90d\"", s)
	}
	return v, nil
}

// Load reads, parses and validates a catalog file.
func Load(path string) (*Catalog, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	return c, nil
}

// Parse parses and validates catalog YAML. Unknown fields are errors, so a
// misspelt field never silently falls back to a default.
func Parse(b []byte) (*Catalog, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("the file is empty: add a targets: list (see rotator.yaml in the repository)")
	}
	var c Catalog
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Target returns the target with the given name.
func (c *Catalog) Target(name string) (Target, error) {
	for _, t := range c.Targets {
		if t.Name == name {
			return t, nil
		}
	}
	names := make([]string, 0, len(c.Targets))
	for _, t := range c.Targets {
		names = append(names, t.Name)
	}
	return Target{}, fmt.Errorf("target %q is not in the catalog: add it to rotator.yaml or use one of %s",
		name, strings.Join(names, ", "))
}

// FieldError is a validation error that names the target, the field and the fix.
type FieldError struct {
	Target string
	Field  string
	Detail string
}

// Error reads like "targets[0] (orchestrator-jwt): secret: is required".
func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Target, e.Field, e.Detail)
}

func (c *Catalog) validate() error {
	if len(c.Targets) == 0 {
		return errors.New("targets: the list is empty: add at least one target")
	}
	var errs []error
	seen := map[string]int{}
	for i := range c.Targets {
		t := &c.Targets[i]
		id := fmt.Sprintf("targets[%d]", i)
		if t.Name != "" {
			id = fmt.Sprintf("%s (%s)", id, truncate(t.Name))
		}
		fail := func(field, format string, args ...any) {
			errs = append(errs, &FieldError{Target: id, Field: field, Detail: fmt.Sprintf(format, args...)})
		}
		if prev, dup := seen[t.Name]; dup && t.Name != "" {
			fail("name", "%q is also the name of targets[%d]: target names must be unique", truncate(t.Name), prev)
		}
		seen[t.Name] = i
		t.applyDefaults()
		t.check(fail)
	}
	return errors.Join(errs...)
}

func (t *Target) applyDefaults() {
	if !t.Grace.set {
		t.Grace.Duration = DefaultGrace
	}
	if !t.Every.set {
		t.Every.Duration = defaultEvery[t.Kind]
	}
	if t.Kind == KindJWT {
		if t.Key == "" {
			t.Key = DefaultJWTKey
		}
		if t.JWT == nil {
			t.JWT = &JWT{}
		}
		if t.JWT.Bytes == 0 {
			t.JWT.Bytes = DefaultJWTBytes
		}
	}
}

func (t *Target) check(fail func(field, format string, args ...any)) {
	dns := func(field, v string, max int, f func(string) []string) {
		switch {
		case v == "":
			fail(field, "is required")
		default:
			if msgs := f(v); len(msgs) > 0 {
				fail(field, "%q is not a valid name: %s", truncate(v), strings.Join(msgs, "; "))
			} else if len(v) > max {
				fail(field, "%q is %d characters: at most %d", truncate(v), len(v), max)
			}
		}
	}
	// Names end up in workflow IDs and Secret names, so they follow DNS-1123.
	dns("name", t.Name, validation.DNS1123SubdomainMaxLength, validation.IsDNS1123Subdomain)
	dns("namespace", t.Namespace, validation.DNS1123LabelMaxLength, validation.IsDNS1123Label)
	// The version suffix "-<n>" must still fit a Secret name.
	dns("secret", t.Secret, validation.DNS1123SubdomainMaxLength-11, validation.IsDNS1123Subdomain)
	switch {
	case t.Kind == "":
		fail("kind", "is required: use one of %s", kindList())
	case !slices.Contains(Kinds(), t.Kind):
		fail("kind", "%q is not a known kind: use one of %s", truncate(string(t.Kind)), kindList())
	}
	if t.Key != "" {
		if msgs := validation.IsConfigMapKey(t.Key); len(msgs) > 0 {
			fail("key", "%q is not a valid Secret data key: %s", truncate(t.Key), strings.Join(msgs, "; "))
		}
	}
	if t.Every.set && t.Every.Duration <= 0 {
		fail("every", "%s must be positive, e.g. every: 2160h (90 days)", t.Every)
	}
	if t.Grace.set && t.Grace.Duration <= 0 {
		fail("grace", "%s must be positive, e.g. grace: 168h (7 days); use an emergency rotation to skip grace", t.Grace)
	}
	if t.JWT != nil {
		if t.Kind != KindJWT {
			fail("jwt", "is only valid for kind jwt: remove it or set kind: jwt")
		} else if t.JWT.Bytes < minJWTBytes || t.JWT.Bytes > MaxJWTBytes {
			fail("jwt.bytes", "%d is out of range: use %d to %d (default %d)", t.JWT.Bytes, minJWTBytes, MaxJWTBytes, DefaultJWTBytes)
		}
	}
	seen := map[Consumer]bool{}
	for i, c := range t.Consumers {
		field := fmt.Sprintf("consumers[%d]", i)
		if !slices.Contains(workloadKinds, c.Kind) {
			fail(field+".kind", "%q is not a workload kind rotator repoints: use one of %s",
				truncate(c.Kind), strings.Join(workloadKinds, ", "))
		}
		if msgs := validation.IsDNS1123Subdomain(c.Name); len(msgs) > 0 {
			fail(field+".name", "%q is not a valid name: %s", truncate(c.Name), strings.Join(msgs, "; "))
		}
		if seen[c] {
			fail(field, "%s/%s is listed twice: remove the duplicate", c.Kind, c.Name)
		}
		seen[c] = true
	}
}

func kindList() string {
	s := make([]string, 0, len(Kinds()))
	for _, k := range Kinds() {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

// truncate keeps error messages readable when a field holds a huge value.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
