package catalog

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"rotator/providers"
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
	errs = append(errs, c.checkOverlaps()...)
	return errors.Join(errs...)
}

func (t *Target) applyDefaults() {
	if !t.Grace.set {
		t.Grace.Duration = DefaultGrace
	}
	if !t.MinGrace.set {
		t.MinGrace.Duration = min(DefaultMinGrace, t.Grace.Duration)
	}
	if !t.Every.set {
		t.Every.Duration = defaultEvery[t.Kind]
	}
	if t.Kind == KindPostgres && t.Postgres != nil {
		if t.Key == "" {
			t.Key = "password"
		}
		p := t.Postgres
		if p.Port == 0 {
			p.Port = 5432
		}
		if p.Database == "" {
			p.Database = p.Role
		}
		if p.DSNSSLMode == "" {
			p.DSNSSLMode = cmp.Or(p.SSLMode, "prefer")
		}
		if p.SSLMode == "" {
			p.SSLMode, p.SSLModeDefaulted = DefaultSSLMode, true
		}
		if p.Strategy == "" {
			p.Strategy = StrategySingleUser
		}
		if p.Strategy == StrategyAlternating && len(p.Users) == 0 && p.Role != "" {
			p.Users = []string{p.Role + "_a", p.Role + "_b"}
		}
	}
	if t.Vault != nil && t.Vault.Mount == "" {
		t.Vault.Mount = DefaultVaultMount
	}
	if t.Kind == KindAPIKeys && t.APIKeys != nil {
		a := t.APIKeys
		if !a.StageTimeout.set {
			a.StageTimeout.Duration = DefaultStageTimeout
		}
		for i := range a.Providers {
			p := &a.Providers[i]
			if p.Key == "" && p.Name != "" {
				p.Key = p.Name + "-api-key"
			}
			if p.BaseURL == "" {
				p.BaseURL = providers.DefaultBaseURL(p.Name)
			}
			if p.Admin != nil && p.Admin.Key == "" {
				p.Admin.Key = DefaultAdminKey
			}
		}
		if a.Probe != nil {
			if a.Probe.Method == "" {
				a.Probe.Method = "GET"
			}
			if a.Probe.ExpectStatus == 0 {
				a.Probe.ExpectStatus = 200
			}
		}
	}
	if t.Kind == KindTLS && t.TLS != nil {
		c := t.TLS
		if t.Key == "" {
			t.Key = TLSCertKey
		}
		if c.Mount == "" {
			c.Mount = DefaultPKIMount
		}
		if !c.TTL.set {
			c.TTL.Duration = DefaultCertTTL
		}
		if !c.RenewBefore.set {
			c.RenewBefore.Duration = DefaultRenewBefore
		}
		if c.Handshake != nil && c.Handshake.ServerName == "" {
			c.Handshake.ServerName = c.CommonName
		}
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
	if t.JWT != nil {
		if t.Kind != KindJWT {
			fail("jwt", "is only valid for kind jwt: remove it or set kind: jwt")
		} else if t.JWT.Bytes < minJWTBytes || t.JWT.Bytes > MaxJWTBytes {
			fail("jwt.bytes", "%d is out of range: use %d to %d (default %d)", t.JWT.Bytes, minJWTBytes, MaxJWTBytes, DefaultJWTBytes)
		}
		switch {
		case t.JWT.Previous == "" || t.JWT.Previous == PreviousKeepUntilNextRotation:
		case t.JWT.Previous != PreviousDropAtRetire:
			fail("jwt.previous", "%q is not a choice: use %s (default) or %s", truncate(t.JWT.Previous), PreviousKeepUntilNextRotation, PreviousDropAtRetire)
		case !t.JWT.DualKey:
			fail("jwt.previous", "only a dual-key Secret has a previous key: set jwt.dualKey: true or remove previous")
		}
	}
	switch {
	case t.Kind == KindPostgres && t.Postgres == nil:
		fail("postgres", "is required for kind postgres: add postgres: {host: ..., role: ...}")
	case t.Kind == KindPostgres:
		t.Postgres.check(fail)
	case t.Postgres != nil:
		fail("postgres", "is only valid for kind postgres: remove it or set kind: postgres")
	}
	if t.Kind == KindPostgres && t.Key != "password" {
		fail("key", "a postgres Secret holds username and password: remove key or set key: password")
	}
	switch {
	case t.Kind == KindAPIKeys && t.APIKeys == nil:
		fail("apiKeys", "is required for kind apikeys: add apiKeys: {providers: [{name: openai}, {name: anthropic}]}")
	case t.Kind == KindAPIKeys:
		// A catalog written back after parsing carries the key derived
		// below, which must read the same again.
		if t.Key != "" && (len(t.APIKeys.Providers) == 0 || t.Key != t.APIKeys.Providers[0].Key) {
			fail("key", "an apikeys Secret holds one key per provider: remove key and set apiKeys.providers[i].key instead")
		}
		t.APIKeys.check(fail)
		if len(t.APIKeys.Providers) > 0 {
			// The first provider's key stands for the version in
			// fingerprints and status.
			t.Key = t.APIKeys.Providers[0].Key
		}
	case t.APIKeys != nil:
		fail("apiKeys", "is only valid for kind apikeys: remove it or set kind: apikeys")
	}
	switch {
	case t.Kind == KindTLS && t.TLS == nil:
		fail("tls", "is required for kind tls: add tls: {role: ..., commonName: ...}")
	case t.Kind == KindTLS:
		if t.Key != TLSCertKey {
			fail("key", "a tls Secret holds tls.crt and tls.key: remove key")
		}
		t.TLS.check(fail)
	case t.TLS != nil:
		fail("tls", "is only valid for kind tls: remove it or set kind: tls")
	}
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
