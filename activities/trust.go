// The worker trusts only its catalog: whoever can reach the Temporal
// frontend can schedule these activities with any input, from a workflow of
// their own on a task queue of their own. So every activity that acts takes
// the target's name, re-derives from the catalog what the plan says
// (namespace, Secret names, database server and roles, provider URLs,
// Vault paths, certificate names), and checks the Secrets it reads carry
// the target's labels. An input that disagrees fails, non-retryable, before
// anything changes.

package activities

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"rotator/catalog"
	"rotator/postgres"
)

// refused is the error of an input that disagrees with the catalog. It names
// the field, what the input says and what the catalog has; none of them is
// ever a secret value.
func refused(target, field string, got, want any) error {
	return badInput("target %s: %s: the input says %s, the catalog has %s: input refused, nothing was changed "+
		"(activities act only on what rotator.yaml and the target's labelled objects say; start a rotation instead)",
		target, field, shown(got), shown(want))
}

// shown quotes a value of an input for an error, cut short: an input is
// anybody's, and may be long.
func shown(v any) string {
	s := fmt.Sprintf("%v", v)
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return strconv.Quote(s)
}

// checkPlan re-derives from the catalog every field of a plan that decides
// what an activity touches, and returns the target. The plan need not be
// complete (preflight fills it in step by step), but what it has must be
// what the catalog says.
func checkPlan(c *catalog.Catalog, p Plan) (catalog.Target, error) {
	t, err := catalogTarget(c, p.Target)
	if err != nil {
		return t, err
	}
	switch {
	case p.Kind != t.Kind:
		return t, refused(t.Name, "kind", p.Kind, t.Kind)
	case p.Namespace != t.Namespace:
		return t, refused(t.Name, "namespace", p.Namespace, t.Namespace)
	case p.Base != t.Secret:
		return t, refused(t.Name, "secret (base)", p.Base, t.Secret)
	case p.Key != t.Key:
		return t, refused(t.Name, "key", p.Key, t.Key)
	case p.NextVersion < 2:
		return t, refused(t.Name, "nextVersion", p.NextVersion, "2 or more (version 1 is the original Secret)")
	}
	if err := checkRef(t, "current", p.Current); err != nil {
		return t, err
	}
	if err := checkConsumers(t, p.Consumers, p.Ingresses); err != nil {
		return t, err
	}
	size, dual := 0, false
	if t.JWT != nil {
		size, dual = t.JWT.Bytes, t.JWT.DualKey
	}
	if p.JWTBytes != size {
		return t, refused(t.Name, "jwt.bytes", p.JWTBytes, size)
	}
	if p.DualKey != dual {
		return t, refused(t.Name, "jwt.dualKey", p.DualKey, dual)
	}
	if want := vaultPlanOf(t); !sameVault(p.Vault, want) {
		return t, refused(t.Name, "vault", vaultShown(p.Vault), vaultShown(want))
	}
	if err := checkTLS(t, p.TLS); err != nil {
		return t, err
	}
	if err := checkPostgres(t, p.Postgres); err != nil {
		return t, err
	}
	return t, checkAPIKeys(t, p)
}

func catalogTarget(c *catalog.Catalog, name string) (catalog.Target, error) {
	if c == nil {
		return catalog.Target{}, badInput("target %s: this worker was started without a catalog, so it acts on no target: pass --catalog", name)
	}
	if name == "" {
		return catalog.Target{}, badInput("target: is required: an activity acts only on a target of rotator.yaml, named in its input")
	}
	t, err := c.Target(name)
	if err != nil {
		return t, badInput("target: %v", err)
	}
	return t, nil
}

// versionOf returns the version a Secret name stands for: the base name is
// version 1 (the original, adopted at the first promote), <base>-<n> is n.
// Any other name is no version of the target.
func versionOf(t catalog.Target, name string) (int, bool) {
	if name == t.Secret {
		return 1, true
	}
	rest, ok := strings.CutPrefix(name, t.Secret+"-")
	if !ok || rest == "" || rest[0] == '0' || strings.Trim(rest, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}

// checkRef checks that a reference names a version of the target, in its
// namespace.
func checkRef(t catalog.Target, field string, r SecretRef) error {
	if r.Namespace != "" && r.Namespace != t.Namespace {
		return refused(t.Name, field+".namespace", r.Namespace, t.Namespace)
	}
	if _, ok := versionOf(t, r.Name); !ok {
		return refused(t.Name, field+".name", r.Name, t.Secret+" or "+t.Secret+"-<n>")
	}
	return nil
}

// checkLabels checks that a Secret read as a version of the target is one:
// labelled as the target's, or the target's original Secret, which carries
// no rotator labels until the first promote adopts it.
func checkLabels(t catalog.Target, s *corev1.Secret) error {
	got := s.Labels[LabelTarget]
	if got == t.Name || (got == "" && s.Name == t.Secret) {
		return nil
	}
	return badInput("target %s: Secret %s/%s is labelled %s=%q, not %q, so it is no version of the target: input refused, nothing was changed",
		t.Name, s.Namespace, s.Name, LabelTarget, got, t.Name)
}

// checkConsumers checks that what a step repoints is the target's: in its
// namespace by construction, one of the catalog's consumers when it lists
// them, and Ingresses only for tls targets (preflight repoints no other
// Ingress).
func checkConsumers(t catalog.Target, consumers []Workload, ingresses []string) error {
	if len(t.Consumers) > 0 {
		for i, c := range consumers {
			if !slices.ContainsFunc(t.Consumers, func(cc catalog.Consumer) bool { return cc.Kind == c.Kind && cc.Name == c.Name }) {
				return refused(t.Name, fmt.Sprintf("consumers[%d]", i), c, "only the consumers it lists")
			}
		}
	}
	if len(ingresses) > 0 && t.Kind != catalog.KindTLS {
		return refused(t.Name, "ingresses", strings.Join(ingresses, ","), "none: only tls targets repoint Ingresses")
	}
	return nil
}

// vaultPlanOf is where the catalog records the target's versions, if it
// does.
func vaultPlanOf(t catalog.Target) *VaultPlan {
	if t.Vault == nil {
		return nil
	}
	return &VaultPlan{Mount: t.Vault.Mount, Path: t.Vault.Path}
}

func sameVault(a, b *VaultPlan) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func vaultShown(v *VaultPlan) string {
	if v == nil {
		return "no Vault path"
	}
	return v.Mount + "/" + v.Path
}

// checkVault checks that a Vault path is the one the catalog gives a
// target, and returns that target.
func checkVault(c *catalog.Catalog, v VaultPlan) (catalog.Target, error) {
	if c == nil {
		return catalog.Target{}, badInput("vault: this worker was started without a catalog, so it acts on no Vault path: pass --catalog")
	}
	var paths []string
	for _, t := range c.Targets {
		if want := vaultPlanOf(t); want != nil {
			if *want == v {
				return t, nil
			}
			paths = append(paths, vaultShown(want))
		}
	}
	return catalog.Target{}, badInput("vault: the input says %s, which is no target's vault.path in the catalog (it has %s): input refused, nothing was changed",
		shown(vaultShown(&v)), shown(strings.Join(paths, ", ")))
}

// tlsPlanOf is what the catalog says a tls target's certificate must be.
func tlsPlanOf(t catalog.Target) *TLSPlan {
	c := t.TLS
	if c == nil {
		return nil
	}
	p := &TLSPlan{Mount: c.Mount, Role: c.Role, CommonName: c.CommonName, DNSNames: c.DNSNames, IPs: c.IPs, TTL: c.TTL.Duration}
	if c.Handshake != nil {
		p.Handshake, p.ServerName = c.Handshake.Address, c.Handshake.ServerName
	}
	return p
}

func checkTLS(t catalog.Target, got *TLSPlan) error {
	if got == nil {
		return nil
	}
	want := tlsPlanOf(t)
	if want == nil {
		return refused(t.Name, "tls", "a certificate plan", "no tls section")
	}
	for _, f := range []struct {
		field     string
		got, want any
		same      bool
	}{
		{"tls.mount", got.Mount, want.Mount, got.Mount == want.Mount},
		{"tls.role", got.Role, want.Role, got.Role == want.Role},
		{"tls.commonName", got.CommonName, want.CommonName, got.CommonName == want.CommonName},
		{"tls.dnsNames", got.DNSNames, want.DNSNames, slices.Equal(got.DNSNames, want.DNSNames)},
		{"tls.ips", got.IPs, want.IPs, slices.Equal(got.IPs, want.IPs)},
		{"tls.ttl", got.TTL, want.TTL, got.TTL == want.TTL},
		{"tls.handshake.address", got.Handshake, want.Handshake, got.Handshake == want.Handshake},
		{"tls.handshake.serverName", got.ServerName, want.ServerName, got.ServerName == want.ServerName},
	} {
		if !f.same {
			return refused(t.Name, f.field, f.got, f.want)
		}
	}
	return nil
}

// checkPostgres checks the database plan: the server the worker connects
// to (and sends credentials to), the strategy and the roles whose
// passwords it sets or locks.
func checkPostgres(t catalog.Target, got *PostgresPlan) error {
	if got == nil {
		return nil
	}
	c := t.Postgres
	if c == nil {
		return refused(t.Name, "postgres", "a database plan", "no postgres section")
	}
	want := postgres.Server{Host: c.Host, Port: c.Port, Database: c.Database, SSLMode: c.SSLMode}
	if got.Server.SSLMode == "prefer" && c.SSLModeDefaulted {
		// Planned before the default became verify-full, by an older
		// worker: the connection uses the catalog's mode, never weaker.
		got.Server.SSLMode = c.SSLMode
	}
	allowed := c.Users
	if c.Strategy == catalog.StrategySingleUser {
		allowed = []string{c.Role}
	}
	for _, f := range []struct {
		field     string
		got, want any
		same      bool
	}{
		{"postgres.host", got.Server.Host, want.Host, got.Server.Host == want.Host},
		{"postgres.port", got.Server.Port, want.Port, got.Server.Port == want.Port},
		{"postgres.database", got.Server.Database, want.Database, got.Server.Database == want.Database},
		{"postgres.sslMode", got.Server.SSLMode, want.SSLMode, got.Server.SSLMode == want.SSLMode},
		{"postgres.strategy", got.Strategy, c.Strategy, got.Strategy == c.Strategy},
		{"postgres.role", got.Role, c.Role, got.Role == c.Role},
		{"postgres.users", got.Users, c.Users, slices.Equal(got.Users, c.Users)},
		{"postgres.dsnKey", got.DSNKey, c.DSNKey, got.DSNKey == c.DSNKey},
		// Empty in a plan made before the field existed.
		{"postgres.dsnSSLMode", got.DSNSSLMode, c.DSNSSLMode, got.DSNSSLMode == c.DSNSSLMode || got.DSNSSLMode == ""},
		{"postgres username (the new version's login role)", got.Username, strings.Join(allowed, " or "), slices.Contains(allowed, got.Username)},
	} {
		if !f.same {
			return refused(t.Name, f.field, f.got, f.want)
		}
	}
	return nil
}

// checkAPIKeys checks the providers an apikeys plan calls: their order,
// names, data keys, base URLs (where keys are sent) and whether an admin
// key revokes, and where staged keys are read and deleted. The old keys'
// ids are checked by RevokeOldKeys, against what the worker recorded.
func checkAPIKeys(t catalog.Target, p Plan) error {
	got := p.APIKeys
	if got == nil {
		return nil
	}
	if t.APIKeys == nil {
		return refused(t.Name, "apiKeys", "an api keys plan", "no apiKeys section")
	}
	want := t.APIKeys.Providers
	if len(got.Providers) != len(want) {
		return refused(t.Name, "apiKeys.providers", len(got.Providers), len(want))
	}
	for i, g := range got.Providers {
		w := want[i]
		field := fmt.Sprintf("apiKeys.providers[%d]", i)
		switch {
		case g.Name != w.Name:
			return refused(t.Name, field+".name", g.Name, w.Name)
		case g.Key != w.Key:
			return refused(t.Name, field+".key", g.Key, w.Key)
		case g.BaseURL != w.BaseURL:
			return refused(t.Name, field+".baseURL", g.BaseURL, w.BaseURL)
		case g.Admin != (w.Admin != nil):
			return refused(t.Name, field+".admin", g.Admin, w.Admin != nil)
		case g.OldKeyID != "" && !g.Admin:
			return refused(t.Name, field+".oldKeyID", g.OldKeyID, "none: the provider has no admin key")
		}
	}
	staging := ""
	if t.Vault == nil {
		staging = StagingSecretName(t.Secret)
	}
	if got.StagingSecret != staging {
		return refused(t.Name, "apiKeys.stagingSecret", got.StagingSecret, staging)
	}
	return nil
}

// checkDatabase is checkPlan for the database steps, with the versions
// they read credentials from.
func checkDatabase(c *catalog.Catalog, in DatabaseInput) (catalog.Target, error) {
	t, err := checkPlan(c, in.Plan)
	if err != nil {
		return t, err
	}
	if t.Kind != catalog.KindPostgres {
		return t, refused(t.Name, "kind", t.Kind, catalog.KindPostgres)
	}
	for _, r := range []struct {
		field string
		ref   SecretRef
	}{{"old", in.Old}, {"new", in.New}} {
		if r.ref.Name == "" {
			continue
		}
		if err := checkRef(t, r.field, r.ref); err != nil {
			return t, err
		}
	}
	return t, nil
}

// versionTargets are the targets of which a Secret is a version, by its
// namespace and name alone: what a step that names no target may touch.
func versionTargets(c *catalog.Catalog, ref SecretRef) ([]catalog.Target, error) {
	if c == nil {
		return nil, badInput("secret: this worker was started without a catalog, so it acts on no Secret: pass --catalog")
	}
	var out []catalog.Target
	for _, t := range c.Targets {
		if _, ok := versionOf(t, ref.Name); ok && t.Namespace == ref.Namespace {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, badInput("secret: Secret %s/%s is no version of a target in the catalog (<secret> or <secret>-<n> in the target's namespace): input refused, nothing was changed",
			ref.Namespace, ref.Name)
	}
	return out, nil
}

// labelledFor checks a Secret read by a step that names no target against
// the targets its name makes it a version of.
func labelledFor(targets []catalog.Target, s *corev1.Secret) error {
	var err error
	for _, t := range targets {
		if err = checkLabels(t, s); err == nil {
			return nil
		}
	}
	return err
}

// checkNamespace checks that a read-only step looks only into a target's
// namespace: the named target's, or any target's.
func checkNamespace(c *catalog.Catalog, target, ns string) error {
	if target != "" {
		t, err := catalogTarget(c, target)
		if err != nil {
			return err
		}
		if ns != t.Namespace {
			return refused(t.Name, "namespace", ns, t.Namespace)
		}
		return nil
	}
	if c == nil {
		return badInput("namespace: this worker was started without a catalog, so it acts on no namespace: pass --catalog")
	}
	if !slices.ContainsFunc(c.Targets, func(t catalog.Target) bool { return t.Namespace == ns }) {
		return badInput("namespace: %s is the namespace of no target in the catalog: input refused, nothing was changed", shown(ns))
	}
	return nil
}

// checkPromote checks that a promote, or the rollback that uses it, moves
// the target's consumers between two versions of the target, in its
// namespace.
func checkPromote(c *catalog.Catalog, in PromoteInput) (catalog.Target, error) {
	t, err := catalogTarget(c, in.Target)
	if err != nil {
		return t, err
	}
	if in.Namespace != t.Namespace {
		return t, refused(t.Name, "namespace", in.Namespace, t.Namespace)
	}
	if err := checkRef(t, "from", in.From); err != nil {
		return t, err
	}
	if err := checkRef(t, "to", in.To); err != nil {
		return t, err
	}
	return t, checkConsumers(t, in.Consumers, in.Ingresses)
}
