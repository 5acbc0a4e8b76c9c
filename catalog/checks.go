package catalog

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"rotator/internal/loopback"
	"rotator/providers"
	"rotator/vault"
)

// pgMaxIdentifier is PostgreSQL's NAMEDATALEN-1.
const pgMaxIdentifier = 63

// DefaultSSLMode is the worker's sslmode where the catalog writes none:
// encrypted, and to the server the catalog names.
const DefaultSSLMode = "verify-full"

var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

func (p *Postgres) check(fail func(field, format string, args ...any)) {
	switch {
	case p.Host == "":
		fail("postgres.host", "is required: the server's host name as the worker reaches it")
	case !isHost(p.Host):
		fail("postgres.host", "%q is not a host name or IP address: use e.g. postgres.llm-orchestrator.svc or 10.0.0.5, without scheme, port or path (port goes in postgres.port)", truncate(p.Host))
	}
	if p.Port < 1 || p.Port > 65535 {
		fail("postgres.port", "%d is not a TCP port: use 1 to 65535 (default 5432)", p.Port)
	}
	role := func(field, v string) {
		switch {
		case v == "":
			fail(field, "is required: the name of an existing PostgreSQL role")
		default:
			checkPGName(fail, field, v, "role")
		}
	}
	role("postgres.role", p.Role)
	// The database defaults to the role's name, whose error says it all.
	if p.Database != "" && p.Database != p.Role {
		checkPGName(fail, "postgres.database", p.Database, "database")
	}
	if !slices.Contains(sslModes, p.SSLMode) {
		fail("postgres.sslMode", "%q is not an sslmode: use one of %s", truncate(p.SSLMode), strings.Join(sslModes, ", "))
	}
	if p.DSNKey != "" && !slices.Contains(sslModes, p.DSNSSLMode) {
		fail("postgres.dsnSSLMode", "%q is not an sslmode: use one of %s", truncate(p.DSNSSLMode), strings.Join(sslModes, ", "))
	}
	switch p.Strategy {
	case StrategySingleUser:
		if len(p.Users) > 0 {
			fail("postgres.users", "is only used by strategy %s: remove it or change the strategy", StrategyAlternating)
		}
	case StrategyAlternating:
		if len(p.Users) != 2 {
			fail("postgres.users", "lists %d roles: alternating-users needs exactly two, e.g. [%s_a, %s_b]", len(p.Users), p.Role, p.Role)
		} else {
			for i, u := range p.Users {
				role(fmt.Sprintf("postgres.users[%d]", i), u)
				if u == p.Role {
					fail(fmt.Sprintf("postgres.users[%d]", i), "%q is the owning role: the login roles must be two other roles", truncate(u))
				}
			}
			if p.Users[0] == p.Users[1] {
				fail("postgres.users", "names %q twice: use two different roles", truncate(p.Users[0]))
			}
		}
		if p.AdminSecret == nil {
			fail("postgres.adminSecret", "is required for alternating-users: a Secret with username and password of a role with CREATEROLE, e.g. {namespace: rotator, name: postgres-admin}")
		} else {
			checkSecretRef("postgres.adminSecret", *p.AdminSecret, fail)
		}
	default:
		fail("postgres.strategy", "%q is not a strategy: use %s or %s", truncate(p.Strategy), StrategySingleUser, StrategyAlternating)
	}
	if p.DSNKey != "" {
		if msgs := validation.IsConfigMapKey(p.DSNKey); len(msgs) > 0 {
			fail("postgres.dsnKey", "%q is not a valid Secret data key: %s", truncate(p.DSNKey), strings.Join(msgs, "; "))
		} else if p.DSNKey == "username" || p.DSNKey == "password" {
			fail("postgres.dsnKey", "%q would overwrite the %s key: choose another, e.g. DATABASE_URL", p.DSNKey, p.DSNKey)
		}
	}
}

// isHost accepts an IP address or a DNS host name (letters, digits, '-',
// '_' and dots, labels of at most 63 characters).
func isHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// checkPGName refuses PostgreSQL names that rotator would not handle as
// written. pgx quotes every identifier, so no name can inject SQL; a quote,
// semicolon, space or control character in a catalog is still far more
// likely a paste error or an attack than a real role, and it would travel
// on into Secrets, DSNs and logs.
func checkPGName(fail func(field, format string, args ...any), field, v, what string) {
	switch {
	case len(v) > pgMaxIdentifier:
		fail(field, "%q is %d bytes: PostgreSQL truncates names at %d, so two names could mean one %s; use a shorter one", truncate(v), len(v), pgMaxIdentifier, what)
	case strings.IndexFunc(v, func(r rune) bool { return !isPGNameRune(r) }) >= 0:
		fail(field, "%q has characters other than letters, digits, '_', '-', '.' and '$': rename the %s (ALTER %s ... RENAME TO ...) and write the new name here",
			truncate(v), what, strings.ToUpper(what))
	}
}

func isPGNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.$", r)
}

func (a *APIKeys) check(fail func(field, format string, args ...any)) {
	if len(a.Providers) == 0 {
		fail("apiKeys.providers", "is empty: list the providers whose keys the Secret holds, e.g. [{name: openai}, {name: anthropic}]")
	}
	names, keys := map[string]int{}, map[string]int{}
	for i, p := range a.Providers {
		field := fmt.Sprintf("apiKeys.providers[%d]", i)
		switch {
		case p.Name == "":
			fail(field+".name", "is required: use one of %s", strings.Join(providers.Names(), ", "))
		case !slices.Contains(providers.Names(), p.Name):
			fail(field+".name", "%q is not a provider rotator knows: use one of %s", truncate(p.Name), strings.Join(providers.Names(), ", "))
		default:
			if prev, dup := names[p.Name]; dup {
				fail(field+".name", "%s is also providers[%d]: list each provider once", p.Name, prev)
			}
			names[p.Name] = i
		}
		if msgs := validation.IsConfigMapKey(p.Key); len(msgs) > 0 {
			fail(field+".key", "%q is not a valid Secret data key: %s", truncate(p.Key), strings.Join(msgs, "; "))
		} else if prev, dup := keys[p.Key]; dup {
			fail(field+".key", "%q is also the key of providers[%d]: each provider needs its own data key", p.Key, prev)
		}
		keys[p.Key] = i
		if p.Name != "" && p.BaseURL != "" {
			if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				fail(field+".baseURL", "%q is not an http(s) URL: use e.g. %s", truncate(p.BaseURL), providers.DefaultBaseURL(p.Name))
			} else if !encryptedOrLoopback(u) {
				fail(field+".baseURL", "%q is plain http to a host that is not loopback: the admin key and the new keys would travel in clear text; use https://, e.g. %s", truncate(p.BaseURL), providers.DefaultBaseURL(p.Name))
			}
		}
		if p.Admin != nil {
			checkSecretRef(field+".admin.secret", p.Admin.Secret, fail)
			if msgs := validation.IsConfigMapKey(p.Admin.Key); len(msgs) > 0 {
				fail(field+".admin.key", "%q is not a valid Secret data key: %s", truncate(p.Admin.Key), strings.Join(msgs, "; "))
			}
			if p.Name == providers.OpenAI && p.Admin.ProjectID == "" {
				fail(field+".admin.projectID", "is required for openai: the id (proj_...) of the project that owns the keys, from the project's settings page")
			}
			if p.Name != providers.OpenAI && p.Admin.ProjectID != "" {
				fail(field+".admin.projectID", "is only used by openai: remove it")
			}
		}
	}
	checkDuration(fail, "apiKeys.stageTimeout", a.StageTimeout, minStageTimeout, "e.g. stageTimeout: 72h")
	if pr := a.Probe; pr != nil {
		if u, err := url.Parse(pr.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			fail("apiKeys.probe.url", "%q is not an http(s) URL: use the endpoint that exercises the keys, e.g. https://orchestrator.example.com/api/v1/workflows/execute", truncate(pr.URL))
		} else if !encryptedOrLoopback(u) {
			fail("apiKeys.probe.url", "%q is plain http to a host that is not loopback: what the probe sends and reads would travel in clear text; use https://", truncate(pr.URL))
		}
		if !slices.Contains([]string{"GET", "HEAD", "POST"}, pr.Method) {
			fail("apiKeys.probe.method", "%q is not supported: use GET, HEAD or POST", truncate(pr.Method))
		}
		if pr.Body != "" && pr.Method != "POST" {
			fail("apiKeys.probe.body", "is only sent with method POST: set method: POST or remove body")
		}
		if pr.ExpectStatus < 100 || pr.ExpectStatus > 599 {
			fail("apiKeys.probe.expectStatus", "%d is not an HTTP status: use e.g. 200", pr.ExpectStatus)
		}
	}
}

func (c *TLS) check(fail func(field, format string, args ...any)) {
	mount := c.Mount
	if !isVaultMount(c.Mount) {
		fail("tls.mount", "%q is not a mount path: use the PKI engine's mount, e.g. pki", truncate(c.Mount))
		mount = DefaultPKIMount
	}
	if c.Role == "" {
		fail("tls.role", "is required: the Vault PKI role that issues the certificate (vault list %s/roles)", mount)
	} else if !isVaultName(c.Role) {
		fail("tls.role", "%q is not a Vault role name: use letters, digits, '-', '_' and '.' only, as listed by vault list %s/roles", truncate(c.Role), mount)
	}
	if c.CommonName == "" {
		fail("tls.commonName", "is required: the name clients connect to, e.g. orchestrator.llm-orchestrator.svc")
	}
	for i, n := range append([]string{c.CommonName}, c.DNSNames...) {
		if n == "" {
			continue
		}
		field := "tls.commonName"
		if i > 0 {
			field = fmt.Sprintf("tls.dnsNames[%d]", i-1)
		}
		if msgs := validation.IsDNS1123Subdomain(strings.TrimPrefix(n, "*.")); len(msgs) > 0 {
			fail(field, "%q is not a DNS name: %s", truncate(n), strings.Join(msgs, "; "))
		}
	}
	for i, ip := range c.IPs {
		if net.ParseIP(ip) == nil {
			fail(fmt.Sprintf("tls.ips[%d]", i), "%q is not an IP address", truncate(ip))
		}
	}
	checkDuration(fail, "tls.ttl", c.TTL, time.Hour, "e.g. ttl: 2160h (90 days)")
	checkDuration(fail, "tls.renewBefore", c.RenewBefore, time.Nanosecond, "e.g. renewBefore: 720h (30 days)")
	if c.TTL.bad == "" && c.RenewBefore.bad == "" && c.RenewBefore.Duration >= c.TTL.Duration {
		fail("tls.renewBefore", "%s is not shorter than tls.ttl %s: every scan would renew again; make renewBefore shorter than the ttl", c.RenewBefore, c.TTL)
	}
	if h := c.Handshake; h != nil {
		if _, port, err := net.SplitHostPort(h.Address); err != nil || port == "" {
			fail("tls.handshake.address", "%q is not host:port, e.g. orchestrator.llm-orchestrator.svc:443", truncate(h.Address))
		}
	}
}

func checkSecretRef(field string, r SecretRef, fail func(field, format string, args ...any)) {
	if msgs := validation.IsDNS1123Label(r.Namespace); len(msgs) > 0 {
		fail(field+".namespace", "%q is not a valid namespace: %s", truncate(r.Namespace), strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Subdomain(r.Name); len(msgs) > 0 {
		fail(field+".name", "%q is not a valid Secret name: %s", truncate(r.Name), strings.Join(msgs, "; "))
	}
}

// checkVaultPath refuses paths Vault would read differently from how they
// are written; vault.CheckPath says which and how to fix them.
func checkVaultPath(v *VaultPath, fail func(field, format string, args ...any)) {
	if err := vault.CheckPath(v.Path); err != nil {
		fail("vault.path", "%v", err)
	}
	if !isVaultMount(v.Mount) {
		fail("vault.mount", "%q is not a mount path: use the KV v2 mount, e.g. secret", truncate(v.Mount))
	}
}

// isVaultMount accepts a mount path Vault reads as written: no empty,
// relative or odd segments.
func isVaultMount(m string) bool {
	m = strings.Trim(m, "/")
	if m == "" || len(m) > 256 {
		return false
	}
	for seg := range strings.SplitSeq(m, "/") {
		if seg == "." || seg == ".." || !isVaultName(seg) {
			return false
		}
	}
	return true
}

// isVaultName accepts a role or mount segment: it becomes part of a Vault
// API path, so '/', '..' and characters that need escaping are refused.
func isVaultName(s string) bool {
	if s == "" || len(s) > 128 || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@", r)) {
			return false
		}
	}
	return true
}

func (v *Vault) check() error {
	switch v.Auth.Method {
	case "", VaultAuthToken:
		if v.Auth.Role != "" || v.Auth.MountPath != "" || v.Auth.TokenPath != "" {
			return errors.New("vault.auth: role, mountPath and tokenPath are only used by method kubernetes: remove them or set method: kubernetes")
		}
	case VaultAuthKubernetes:
		var errs []error
		switch {
		case v.Auth.Role == "":
			errs = append(errs, errors.New("vault.auth.role: is required for method kubernetes: the Vault role bound to the worker's ServiceAccount"))
		case !isVaultName(v.Auth.Role):
			errs = append(errs, fmt.Errorf("vault.auth.role: %q is not a Vault role name: use letters, digits, '-', '_' and '.' only, as listed by vault list auth/kubernetes/role", truncate(v.Auth.Role)))
		}
		if v.Auth.MountPath != "" && !isVaultMount(v.Auth.MountPath) {
			errs = append(errs, fmt.Errorf("vault.auth.mountPath: %q is not a mount path: use where the kubernetes auth method is enabled, e.g. kubernetes", truncate(v.Auth.MountPath)))
		}
		if strings.ContainsRune(v.Auth.TokenPath, 0) || len(v.Auth.TokenPath) > 4096 {
			errs = append(errs, errors.New("vault.auth.tokenPath: is not a file path: remove it to use the projected ServiceAccount token"))
		}
		return errors.Join(errs...)
	default:
		return fmt.Errorf("vault.auth.method: %q is not supported: use token or kubernetes", truncate(v.Auth.Method))
	}
	return nil
}

// encryptedOrLoopback accepts https, and plain http only where the
// connection never leaves the machine.
func encryptedOrLoopback(u *url.URL) bool {
	return u.Scheme == "https" || loopback.Is(u.Hostname())
}
