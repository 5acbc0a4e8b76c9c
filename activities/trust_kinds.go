package activities

import (
	"fmt"
	"slices"
	"strings"

	"rotator/catalog"
	"rotator/postgres"
)

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

func checkTLS(t catalog.Target, p Plan) error {
	got := p.TLS
	if got == nil {
		return nil
	}
	want := tlsPlanOf(t)
	if want == nil {
		return refused(t.Name, "tls", "a certificate plan", "no tls section")
	}
	return firstRefused(t.Name, []fieldCheck{
		{"tls.mount", got.Mount, want.Mount, got.Mount == want.Mount},
		{"tls.role", got.Role, want.Role, got.Role == want.Role},
		{"tls.commonName", got.CommonName, want.CommonName, got.CommonName == want.CommonName},
		{"tls.dnsNames", got.DNSNames, want.DNSNames, slices.Equal(got.DNSNames, want.DNSNames)},
		{"tls.ips", got.IPs, want.IPs, slices.Equal(got.IPs, want.IPs)},
		{"tls.ttl", got.TTL, want.TTL, got.TTL == want.TTL},
		{"tls.handshake.address", got.Handshake, want.Handshake, got.Handshake == want.Handshake},
		{"tls.handshake.serverName", got.ServerName, want.ServerName, got.ServerName == want.ServerName},
	})
}

// checkPostgres checks the database plan: the server the worker connects
// to (and sends credentials to), the strategy and the roles whose
// passwords it sets or locks.
func checkPostgres(t catalog.Target, p Plan) error {
	got := p.Postgres
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
	return firstRefused(t.Name, []fieldCheck{
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
	})
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
	return checkKindInput(c, in.Plan, catalog.KindPostgres, in.Old, in.New)
}

// checkKindInput is checkPlan for the steps of one kind's backing system:
// the target must be of that kind, and the old and new versions it reads
// credentials from, when given, versions of the target.
func checkKindInput(c *catalog.Catalog, p Plan, kind catalog.Kind, old, new SecretRef) (catalog.Target, error) {
	t, err := checkPlan(c, p)
	if err != nil {
		return t, err
	}
	if t.Kind != kind {
		return t, refused(t.Name, "kind", t.Kind, kind)
	}
	for _, r := range []struct {
		field string
		ref   SecretRef
	}{{"old", old}, {"new", new}} {
		if r.ref.Name == "" {
			continue
		}
		if err := checkRef(t, r.field, r.ref); err != nil {
			return t, err
		}
	}
	return t, nil
}

// fieldCheck is one field of a plan against what the catalog says.
type fieldCheck struct {
	field     string
	got, want any
	same      bool
}

// firstRefused refuses the first field that differs from the catalog.
func firstRefused(target string, checks []fieldCheck) error {
	for _, f := range checks {
		if !f.same {
			return refused(target, f.field, f.got, f.want)
		}
	}
	return nil
}
