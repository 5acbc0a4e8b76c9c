package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

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
	if c.Vault != nil {
		if err := c.Vault.check(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Window != nil {
		c.Window.check("window", func(field, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
		})
	}
	var shared []Sink
	if c.Notify != nil {
		c.Notify.check(func(field, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
		})
		shared = c.Notify.Sinks
	}
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
		checkSinks("notify", t.Notify, shared, fail)
		if t.Window != nil {
			t.Window.check("window", fail)
		}
	}
	errs = append(errs, c.checkOverlaps()...)
	return errors.Join(errs...)
}

// applyDefaults fills what the target leaves out: the fields every target
// has, then those of its kind.
func (t *Target) applyDefaults() {
	if !t.Grace.set {
		t.Grace.Duration = DefaultGrace
	}
	if !t.MinGrace.set {
		t.MinGrace.Duration = min(DefaultMinGrace, t.Grace.Duration)
	}
	spec, known := specOf(t.Kind)
	if !t.Every.set && known {
		t.Every.Duration = spec.every
	}
	if t.Vault != nil && t.Vault.Mount == "" {
		t.Vault.Mount = DefaultVaultMount
	}
	if known && spec.applies(t) {
		spec.defaults(t)
	}
}

func (t *Target) check(fail failFunc) {
	dns := func(field, v, what string, max int, f func(string) []string) {
		switch {
		case v == "":
			fail(field, "is required: %s", what)
		default:
			if msgs := f(v); len(msgs) > 0 {
				fail(field, "%q is not a valid name: %s", truncate(v), strings.Join(msgs, "; "))
			} else if len(v) > max {
				fail(field, "%q is %d characters: at most %d", truncate(v), len(v), max)
			}
		}
	}
	// Names end up in workflow IDs and Secret names, so they follow
	// DNS-1123; they are the value of the rotator.dev/target label too,
	// which allows 63 characters.
	dns("name", t.Name, "the target's name, e.g. orchestrator-jwt; rotations run as workflow rotate/<name>",
		validation.LabelValueMaxLength, validation.IsDNS1123Subdomain)
	dns("namespace", t.Namespace, "the Kubernetes namespace of the Secret and its consumers",
		validation.DNS1123LabelMaxLength, validation.IsDNS1123Label)
	// The version suffix "-<n>" must still fit a Secret name.
	dns("secret", t.Secret, "the Secret's base name; its versions are <secret>-<n>",
		validation.DNS1123SubdomainMaxLength-11, validation.IsDNS1123Subdomain)
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
	checkDuration(fail, "every", t.Every, minEvery, "e.g. every: 2160h (90 days)")
	checkDuration(fail, "rolloutTimeout", t.RolloutTimeout, minRolloutTimeout, "e.g. rolloutTimeout: 10m")
	for i, m := range t.AcknowledgedManagers {
		if msgs := validation.IsDNS1123Label(m); len(msgs) > 0 {
			fail(fmt.Sprintf("acknowledgedManagers[%d]", i), "%q is not a manager's name: use helm, argocd, flux, operator, or the lower-case value of an app.kubernetes.io/managed-by label", truncate(m))
		}
	}
	checkDuration(fail, "grace", t.Grace, minGrace, "e.g. grace: 168h (7 days); use an emergency rotation to skip grace")
	checkDuration(fail, "minGrace", t.MinGrace, minGrace, "e.g. minGrace: 1h")
	if t.MinGrace.set && t.MinGrace.bad == "" && t.Grace.bad == "" && t.MinGrace.Duration > t.Grace.Duration {
		fail("minGrace", "%s is longer than grace %s, which would refuse the target's own grace: lower minGrace or raise grace",
			shortDuration(t.MinGrace.Duration), shortDuration(t.Grace.Duration))
	}
	t.checkSections(fail)
	if t.Vault != nil {
		checkVaultPath(t.Vault, fail)
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
			fail(field, "%s/%s is listed twice: remove the duplicate", truncate(c.Kind), truncate(c.Name))
		}
		seen[c] = true
	}
}

// checkSections refuses the sections of other kinds, asks for the kind's
// own when it is required, and checks it. Kinds are visited in registry
// order, so errors read the same for every target.
func (t *Target) checkSections(fail failFunc) {
	for _, s := range kindSpecs() {
		switch {
		case t.Kind != s.kind:
			if s.carries(t) {
				fail(s.section, "is only valid for kind %s: remove it or set kind: %s", s.kind, s.kind)
			}
		case !s.applies(t):
			fail(s.section, "is required for kind %s: add %s", s.kind, s.example)
		default:
			s.check(t, fail)
		}
	}
}
