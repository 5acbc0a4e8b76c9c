package catalog_test

import (
	"strings"
	"testing"

	"rotator/catalog"
)

// badInput is one catalog Parse must refuse: the error must name field (as
// "field:") and contain fix, the words that tell the author what to write.
type badInput struct {
	category, name, yaml string
	field, fix           string
	// also are further fragments, for rows that hold several mistakes.
	also []string
}

// Row builders: one target of a kind, with namespace and Secret set.
func target(kind, lines string) string {
	return "targets:\n  - name: a\n    kind: " + kind + "\n    namespace: ns\n    secret: s\n" + lines
}

const (
	pgOK  = "    postgres: {host: h, role: r}\n"
	akOK  = "    apiKeys: {providers: [{name: openai}]}\n"
	tlsOK = "    tls: {role: r, commonName: a.b}\n"
	nsSec = "    namespace: ns\n    secret: s\n"
	alt   = "strategy: alternating-users, adminSecret: {namespace: n, name: s}"
)

// The categories of docs/reliability.md's Bad input section.
const (
	missing = "missing field"
	wrong   = "wrong kind"
	dns     = "not DNS-1123"
	sqlName = "SQL in a name"
	huge    = "huge value"
	value   = "bad value"
	syntax  = "unknown field or type"
	vaultS  = "vault settings"
)

var mb = strings.Repeat("x", 1<<20)

// badInputs is the catalog half of the bad-input table (issue 7, part 5).
var badInputs = []badInput{
	// Missing fields, for the file and for every kind.
	{missing, "empty file", "", "the file is empty", "add a targets: list", nil},
	{missing, "no targets", "targets: []\n", "targets", "add at least one target", nil},
	{missing, "name", "targets:\n  - kind: jwt\n" + nsSec, "name", "is required: the target's name", []string{"targets[0]:"}},
	{missing, "namespace", "targets:\n  - name: a\n    kind: jwt\n    secret: s\n", "namespace", "is required: the Kubernetes namespace", nil},
	{missing, "secret", "targets:\n  - name: a\n    kind: jwt\n    namespace: ns\n", "secret", "is required: the Secret's base name", nil},
	{missing, "kind", "targets:\n  - name: a\n" + nsSec, "kind", "is required: use one of jwt, postgres, apikeys, tls", nil},
	{missing, "postgres block", target("postgres", ""), "postgres", "add postgres: {host: ..., role: ...}", nil},
	{missing, "postgres host and role", target("postgres", "    postgres: {}\n"), "postgres.host", "the server's host name", []string{"postgres.role: is required"}},
	{missing, "postgres adminSecret", target("postgres", "    postgres: {host: h, role: r, strategy: alternating-users}\n"), "postgres.adminSecret", "a role with CREATEROLE", nil},
	{missing, "apiKeys block", target("apikeys", ""), "apiKeys", "add apiKeys: {providers:", nil},
	{missing, "apiKeys providers", target("apikeys", "    apiKeys: {providers: []}\n"), "apiKeys.providers", "list the providers", nil},
	{missing, "provider name", target("apikeys", "    apiKeys: {providers: [{key: k}]}\n"), "apiKeys.providers[0].name", "use one of openai, anthropic", nil},
	{missing, "openai admin projectID", target("apikeys", "    apiKeys: {providers: [{name: openai, admin: {secret: {namespace: rotator, name: adm}}}]}\n"), "apiKeys.providers[0].admin.projectID", "the id (proj_...)", nil},
	{missing, "tls block", target("tls", ""), "tls", "add tls: {role: ..., commonName: ...}", nil},
	{missing, "tls role and commonName", target("tls", "    tls: {}\n"), "tls.role", "the Vault PKI role", []string{"tls.commonName: is required"}},
	{missing, "vault path", target("jwt", "    vault: {mount: secret}\n"), "vault.path", "give the KV v2 path inside the mount", nil},
	{missing, "vault kubernetes role", "vault: {auth: {method: kubernetes}}\n" + target("jwt", ""), "vault.auth.role", "the Vault role bound to the worker's ServiceAccount", nil},

	// Wrong kinds: unknown ones, and a kind's block on another kind.
	{wrong, "unknown kind", target("ldap", ""), "kind", "use one of jwt, postgres, apikeys, tls", []string{`"ldap"`}},
	{wrong, "kind in capitals", target("JWT", ""), "kind", "use one of jwt", []string{`"JWT"`}},
	{wrong, "postgres on jwt", target("jwt", pgOK), "postgres", "remove it or set kind: postgres", nil},
	{wrong, "apiKeys on jwt", target("jwt", akOK), "apiKeys", "remove it or set kind: apikeys", nil},
	{wrong, "tls on postgres", target("postgres", pgOK+tlsOK), "tls", "remove it or set kind: tls", nil},
	{wrong, "jwt on tls", target("tls", tlsOK+"    jwt: {bytes: 64}\n"), "jwt", "remove it or set kind: jwt", nil},
	{wrong, "jwt key on postgres", target("postgres", "    key: secret\n"+pgOK), "key", "remove key or set key: password", nil},
	{wrong, "key on apikeys", target("apikeys", "    key: x\n"+akOK), "key", "set apiKeys.providers[i].key instead", nil},
	{wrong, "key on tls", target("tls", "    key: cert\n"+tlsOK), "key", "a tls Secret holds tls.crt and tls.key: remove key", nil},
	{wrong, "unknown provider", target("apikeys", "    apiKeys: {providers: [{name: mistral}]}\n"), "apiKeys.providers[0].name", "use one of openai, anthropic", []string{`"mistral"`}},
	{wrong, "consumer kind", target("jwt", "    consumers: [{kind: Pod, name: x}]\n"), "consumers[0].kind", "use one of Deployment, StatefulSet, DaemonSet", nil},
	{wrong, "postgres strategy", target("postgres", "    postgres: {host: h, role: r, strategy: rolling}\n"), "postgres.strategy", "use single-user or alternating-users", nil},
	{wrong, "users on single-user", target("postgres", "    postgres: {host: h, role: r, users: [a, b]}\n"), "postgres.users", "remove it or change the strategy", nil},
	{wrong, "projectID on anthropic", target("apikeys", "    apiKeys: {providers: [{name: anthropic, admin: {secret: {namespace: rotator, name: adm}, projectID: p}}]}\n"), "apiKeys.providers[0].admin.projectID", "only used by openai: remove it", nil},

	// Names that are not DNS-1123 where Kubernetes needs them to be.
	{dns, "name with capitals", "targets:\n  - name: Bad_Name\n    kind: jwt\n" + nsSec, "name", "lowercase RFC 1123", []string{"targets[0] (Bad_Name)"}},
	{dns, "namespace Bad_NS", "targets:\n  - name: a\n    kind: jwt\n    namespace: Bad_NS\n    secret: s\n", "namespace", "lowercase RFC 1123 label", []string{`"Bad_NS"`}},
	{dns, "namespace with a dot", "targets:\n  - name: a\n    kind: jwt\n    namespace: a.b\n    secret: s\n", "namespace", "must not contain dots", nil},
	{dns, "secret with a space", "targets:\n  - name: a\n    kind: jwt\n    namespace: ns\n    secret: 'my secret'\n", "secret", "lowercase RFC 1123 subdomain", nil},
	{dns, "consumer name", target("jwt", "    consumers: [{kind: Deployment, name: Web_1}]\n"), "consumers[0].name", "lowercase RFC 1123 subdomain", nil},
	{dns, "admin secret namespace", target("postgres", "    postgres: {host: h, role: r, strategy: alternating-users, adminSecret: {namespace: Bad, name: s}}\n"), "postgres.adminSecret.namespace", "lowercase RFC 1123 label", nil},
	{dns, "provider admin secret", target("apikeys", "    apiKeys: {providers: [{name: anthropic, admin: {secret: {namespace: ns, name: 'a/b'}}}]}\n"), "apiKeys.providers[0].admin.secret.name", "lowercase RFC 1123 subdomain", nil},
	{dns, "tls commonName", target("tls", "    tls: {role: r, commonName: 'Bad Name'}\n"), "tls.commonName", "is not a DNS name", nil},
	{dns, "tls dnsName", target("tls", "    tls: {role: r, commonName: a.b, dnsNames: ['x..y']}\n"), "tls.dnsNames[0]", "is not a DNS name", nil},
	{dns, "postgres host with a space", target("postgres", "    postgres: {host: 'db host', role: r}\n"), "postgres.host", "without scheme, port or path", nil},
	{dns, "postgres host as URL", target("postgres", "    postgres: {host: 'postgres://db:5432', role: r}\n"), "postgres.host", "port goes in postgres.port", nil},
	{dns, "data key", target("jwt", "    key: 'a b'\n"), "key", "is not a valid Secret data key", nil},

	// Names that look like SQL: refused although pgx would quote them.
	{sqlName, "role with quote and semicolon", target("postgres", `    postgres: {host: h, role: 'a";drop role x;--'}`+"\n"), "postgres.role", "rename the role (ALTER ROLE ... RENAME TO ...)", nil},
	{sqlName, "role with a single quote", target("postgres", `    postgres: {host: h, role: "o'brien"}`+"\n"), "postgres.role", "letters, digits, '_', '-', '.' and '$'", nil},
	{sqlName, "role with a space", target("postgres", "    postgres: {host: h, role: 'app user'}\n"), "postgres.role", "rename the role", nil},
	{sqlName, "role with a NUL", target("postgres", `    postgres: {host: h, role: "a\0b"}`+"\n"), "postgres.role", "rename the role", nil},
	{sqlName, "login user with semicolon", target("postgres", "    postgres: {host: h, role: r, users: ['a;b', c], "+alt+"}\n"), "postgres.users[0]", "rename the role", nil},
	{sqlName, "database with quote", target("postgres", `    postgres: {host: h, role: r, database: 'app"; drop database x'}`+"\n"), "postgres.database", "rename the database (ALTER DATABASE", nil},

	// Huge values: refused, and the error quotes only their start.
	{huge, "1 MB name", "targets:\n  - name: " + mb + "\n    kind: jwt\n" + nsSec, "name", "must be no more than 253 characters", []string{"…"}},
	{huge, "1 MB namespace", "targets:\n  - name: a\n    kind: jwt\n    namespace: " + mb + "\n    secret: s\n", "namespace", "must be no more than 63 characters", nil},
	{huge, "long secret", "targets:\n  - name: a\n    kind: jwt\n    namespace: ns\n    secret: " + strings.Repeat("s", 250) + "\n", "secret", "at most 242", nil},
	{huge, "1 MB role", target("postgres", "    postgres: {host: h, role: "+mb+"}\n"), "postgres.role", "PostgreSQL truncates names at 63", nil},
	{huge, "64-byte role", target("postgres", "    postgres: {host: h, role: "+strings.Repeat("r", 64)+"}\n"), "postgres.role", "use a shorter one", nil},
	{huge, "1 MB host", target("postgres", "    postgres: {host: "+mb+", role: r}\n"), "postgres.host", "is not a host name", nil},
	{huge, "1 MB vault path", target("jwt", "    vault: {path: "+mb+"}\n"), "vault.path", "keep it under", nil},
	{huge, "every overflows", target("jwt", "    every: 999999999d\n"), "every", "use at most 106751d", nil},
	{huge, "grace overflows in hours", target("jwt", "    grace: 9999999999999h\n"), "grace", "use hours or days", nil},
	{huge, "ttl overflows", target("tls", "    tls: {role: r, commonName: a.b, ttl: 106752d}\n"), "tls.ttl", "use at most 106751d", nil},
	{huge, "stageTimeout overflows", target("apikeys", "    apiKeys: {providers: [{name: openai}], stageTimeout: 1000000d}\n"), "apiKeys.stageTimeout", "use at most 106751d", nil},
	{huge, "jwt bytes beyond int", target("jwt", "    jwt: {bytes: 99999999999999999999}\n"), "targets.jwt.bytes", "want a whole number that fits", nil},
	{huge, "jwt bytes over the cap", target("jwt", "    jwt: {bytes: 1048576}\n"), "jwt.bytes", "use 32 to 4096", nil},
	{huge, "1 MB of digits", target("postgres", "    postgres: {host: h, role: r, port: 1"+strings.Repeat("0", 1<<20)+"}\n"), "targets.postgres.port", "want a whole number that fits", nil},
	{huge, "1 MB unknown field", target("jwt", "    ? "+mb+"\n    : 1\n"), `unknown field "` + strings.Repeat("x", 64) + `…"`, "check its spelling", nil},

	// Values of the right type but out of range or inconsistent.
	{value, "negative every", target("jwt", "    every: -5h\n"), "every", "must be positive, e.g. every: 2160h", nil},
	{value, "every of a second", target("jwt", "    every: 1s\n"), "every", "use at least 1h", nil},
	{value, "zero grace", target("jwt", "    grace: 0s\n"), "grace", "use an emergency rotation to skip grace", nil},
	{value, "grace of a nanosecond", target("jwt", "    grace: 1ns\n"), "grace", "use at least 1m", nil},
	{value, "minGrace of a second", target("jwt", "    minGrace: 1s\n"), "minGrace", "use at least 1m, e.g. minGrace: 1h", nil},
	{value, "zero minGrace", target("jwt", "    minGrace: 0s\n"), "minGrace", "must be positive", nil},
	{value, "minGrace above grace", target("jwt", "    grace: 2h\n    minGrace: 3h\n"), "minGrace", "3h is longer than grace 2h, which would refuse the target's own grace: lower minGrace or raise grace", nil},
	{value, "minGrace above the default grace", target("jwt", "    minGrace: 8d\n"), "minGrace", "192h is longer than grace 168h", nil},
	{value, "not a duration", target("jwt", "    every: soon\n"), "every", `use hours or days, e.g. "2160h" or "90d"`, []string{`"soon"`}},
	{value, "duration as a number", target("jwt", "    every: 5\n"), "every", `want a duration string such as "2160h"`, nil},
	{value, "duplicate target", "targets:\n  - name: a\n    kind: jwt\n" + nsSec + "  - name: a\n    kind: jwt\n" + nsSec, "name", "target names must be unique", []string{"targets[1] (a)"}},
	{value, "jwt bytes too small", target("jwt", "    jwt: {bytes: 8}\n"), "jwt.bytes", "use 32 to 4096", nil},
	{value, "duplicate consumer", target("jwt", "    consumers: [{kind: Deployment, name: x}, {kind: Deployment, name: x}]\n"), "consumers[1]", "remove the duplicate", nil},
	{value, "postgres port", target("postgres", "    postgres: {host: h, role: r, port: 70000}\n"), "postgres.port", "use 1 to 65535", nil},
	{value, "postgres sslMode", target("postgres", "    postgres: {host: h, role: r, sslMode: maybe}\n"), "postgres.sslMode", "use one of disable", nil},
	{value, "three users", target("postgres", "    postgres: {host: h, role: r, users: [a, b, c], "+alt+"}\n"), "postgres.users", "needs exactly two", nil},
	{value, "same user twice", target("postgres", "    postgres: {host: h, role: r, users: [a, a], "+alt+"}\n"), "postgres.users", "use two different roles", nil},
	{value, "owner as login user", target("postgres", "    postgres: {host: h, role: r, users: [r, b], "+alt+"}\n"), "postgres.users[0]", "must be two other roles", nil},
	{value, "dsnKey overwrites", target("postgres", "    postgres: {host: h, role: r, dsnKey: password}\n"), "postgres.dsnKey", "choose another, e.g. DATABASE_URL", nil},
	{value, "provider twice", target("apikeys", "    apiKeys: {providers: [{name: openai}, {name: openai, key: other}]}\n"), "apiKeys.providers[1].name", "list each provider once", nil},
	{value, "same data key", target("apikeys", "    apiKeys: {providers: [{name: openai, key: k}, {name: anthropic, key: k}]}\n"), "apiKeys.providers[1].key", "each provider needs its own data key", nil},
	{value, "provider baseURL", target("apikeys", "    apiKeys: {providers: [{name: openai, baseURL: 'ftp://x'}]}\n"), "apiKeys.providers[0].baseURL", "use e.g. https://api.openai.com", nil},
	{value, "provider baseURL in clear text", target("apikeys", "    apiKeys: {providers: [{name: openai, baseURL: 'http://openai-proxy.corp:8080'}]}\n"), "apiKeys.providers[0].baseURL", "is plain http to a host that is not loopback", nil},
	{value, "probe in clear text", target("apikeys", "    apiKeys: {providers: [{name: openai}], probe: {url: 'http://orchestrator.ns.svc/health'}}\n"), "apiKeys.probe.url", "use https://", nil},
	{value, "postgres dsnSSLMode", target("postgres", "    postgres: {host: h, role: r, dsnKey: DATABASE_URL, dsnSSLMode: sometimes}\n"), "postgres.dsnSSLMode", "use one of disable", nil},
	{value, "stageTimeout zero", target("apikeys", "    apiKeys: {providers: [{name: openai}], stageTimeout: 0s}\n"), "apiKeys.stageTimeout", "must be positive, e.g. stageTimeout: 72h", nil},
	{value, "probe", target("apikeys", "    apiKeys: {providers: [{name: openai}], probe: {url: 'not a url', method: PUT, body: x}}\n"), "apiKeys.probe.url", "is not an http(s) URL", []string{"apiKeys.probe.method: \"PUT\"", "apiKeys.probe.body: is only sent with method POST"}},
	{value, "probe status", target("apikeys", "    apiKeys: {providers: [{name: openai}], probe: {url: 'https://a.b', expectStatus: 42}}\n"), "apiKeys.probe.expectStatus", "use e.g. 200", nil},
	{value, "tls ips", target("tls", "    tls: {role: r, commonName: a.b, ips: ['300.1.1.1']}\n"), "tls.ips[0]", "is not an IP address", nil},
	{value, "renewBefore not shorter", target("tls", "    tls: {role: r, commonName: a.b, ttl: 24h, renewBefore: 48h}\n"), "tls.renewBefore", "make renewBefore shorter than the ttl", nil},
	{value, "short ttl", target("tls", "    tls: {role: r, commonName: a.b, ttl: 10m, renewBefore: 1m}\n"), "tls.ttl", "use at least 1h", nil},
	{value, "tls handshake", target("tls", "    tls: {role: r, commonName: a.b, handshake: {address: nohost}}\n"), "tls.handshake.address", "is not host:port", nil},
	{value, "tls role with a path", target("tls", "    tls: {role: 'r/../x', commonName: a.b}\n"), "tls.role", "as listed by vault list pki/roles", nil},
	{value, "tls mount escapes", target("tls", "    tls: {role: r, commonName: a.b, mount: '../sys'}\n"), "tls.mount", "use the PKI engine's mount, e.g. pki", nil},
	{value, "name longer than a label", "targets:\n  - name: " + strings.Repeat("n", 64) + "\n    kind: jwt\n" + nsSec, "name", "at most 63", nil},
	{value, "two targets on one Secret", "targets:\n  - name: a\n    kind: jwt\n" + nsSec + "  - name: b\n    kind: jwt\n" + nsSec, "secret", "two targets on one Secret undo each other's rotations", []string{"targets[1] (b)", "ns/s is also the Secret of targets[0] (a)"}},
	{value, "a Secret named like another's version", "targets:\n  - name: a\n    kind: jwt\n" + nsSec + "  - name: b\n    kind: jwt\n    namespace: ns\n    secret: s-2\n", "secret", "targets[0] (a) gives its own versions (s-<n>, s-staged)", []string{"targets[1] (b)"}},
	{value, "two targets on one role", "targets:\n  - name: a\n    kind: postgres\n" + nsSec + pgOK + "  - name: b\n    kind: postgres\n    namespace: ns2\n    secret: s\n    postgres: {host: H, role: r}\n", "postgres.role", "rotate it from one target", []string{`role "r" on h:5432 is also rotated by targets[0] (a)`}},
	{value, "login roles shared", "targets:\n  - name: a\n    kind: postgres\n" + nsSec + "    postgres: {host: h, role: r, " + alt + "}\n  - name: b\n    kind: postgres\n    namespace: ns\n    secret: t\n    postgres: {host: h, role: r_b}\n", "postgres.role", "two targets setting one role's password undo each other", nil},
	{value, "jwt previous unknown", target("jwt", "    jwt: {dualKey: true, previous: never}\n"), "jwt.previous", "use keepUntilNextRotation (default) or dropAtRetire", nil},
	{value, "jwt previous without dualKey", target("jwt", "    jwt: {previous: dropAtRetire}\n"), "jwt.previous", "set jwt.dualKey: true or remove previous", nil},
	{value, "rolloutTimeout of a second", target("jwt", "    rolloutTimeout: 1s\n"), "rolloutTimeout", "use at least 10s", nil},
	{value, "acknowledged manager", target("jwt", "    acknowledgedManagers: ['Argo CD']\n"), "acknowledgedManagers[0]", "use helm, argocd, flux, operator", nil},
	{value, "all errors at once", "targets:\n  - name: a\n    kind: nope\n    namespace: A\n", "kind", "use one of", []string{"namespace:", "secret: is required"}},

	// Unknown fields and values of the wrong type.
	{syntax, "misspelt field", target("jwt", "    gracee: 1h\n"), `unknown field "gracee"`, "check its spelling and case, or remove it", nil},
	{syntax, "unknown top-level field", "vault2: x\n" + target("jwt", ""), `unknown field "vault2"`, "check its spelling", nil},
	{syntax, "targets as a mapping", "targets: {name: a}\n", "targets", "got object, want a list", nil},
	{syntax, "kind as a list", target("[jwt]", ""), "targets.kind", "got array, want a string", nil},
	{syntax, "bytes as a string", target("jwt", "    jwt: {bytes: '64'}\n"), "targets.jwt.bytes", "got string, want a whole number", nil},
	{syntax, "dualKey as a string", target("jwt", "    jwt: {dualKey: 'yes please'}\n"), "targets.jwt.dualKey", "want true or false", nil},
	{syntax, "not YAML", "targets: [\n", "yaml", "line", nil},
	{syntax, "a list at the top", "- name: a\n", "the file", "want a mapping of fields", nil},

	// Vault settings, of the file and of a target.
	{vaultS, "auth method", "vault: {auth: {method: ldap}}\n" + target("jwt", ""), "vault.auth.method", "use token or kubernetes", []string{`"ldap"`}},
	{vaultS, "kubernetes fields on token", "vault: {auth: {method: token, role: r}}\n" + target("jwt", ""), "vault.auth", "remove them or set method: kubernetes", nil},
	{vaultS, "auth role with a space", "vault: {auth: {method: kubernetes, role: 'a b'}}\n" + target("jwt", ""), "vault.auth.role", "use letters, digits", nil},
	{vaultS, "auth mountPath escapes", "vault: {auth: {method: kubernetes, role: r, mountPath: '../x'}}\n" + target("jwt", ""), "vault.auth.mountPath", "e.g. kubernetes", nil},
	{vaultS, "path with ..", target("jwt", "    vault: {path: 'a/../b'}\n"), "vault.path", "without relative segments", nil},
	{vaultS, "path with data/", target("jwt", "    vault: {path: data/x}\n"), "vault.path", "give the path without it", nil},
	{vaultS, "path ends in staged", target("apikeys", akOK+"    vault: {path: x/staged}\n"), "vault.path", "choose another path", nil},
	{vaultS, "path with a quote", target("jwt", `    vault: {path: "a'b"}`+"\n"), "vault.path", "use letters, digits", nil},
	{vaultS, "mount escapes", target("jwt", "    vault: {path: x, mount: '../sys'}\n"), "vault.mount", "use the KV v2 mount, e.g. secret", nil},
}

// TestBadInput: every bad catalog is refused with an error that names the
// field and the fix, quotes no huge value, and yields no catalog.
func TestBadInput(t *testing.T) {
	runBadInputs(t, badInputs)
}

// runBadInputs checks each row as TestBadInput says; a kind's own rows sit
// beside its tests.
func runBadInputs(t *testing.T, rows []badInput) {
	perCategory := map[string]int{}
	for _, tc := range rows {
		perCategory[tc.category]++
		t.Run(tc.category+"/"+tc.name, func(t *testing.T) {
			c, err := catalog.Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatal("Parse accepted a bad catalog")
			}
			if c != nil {
				t.Error("Parse returned a catalog with its error")
			}
			msg := err.Error()
			for _, w := range append([]string{tc.field + ":", tc.fix}, tc.also...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, clip(msg))
				}
			}
			assertShortLines(t, msg)
		})
	}
	t.Logf("%d bad catalogs: %v", len(rows), perCategory)
}

// assertShortLines fails when an error line is long enough to quote a huge
// value: every line is one field's message.
func assertShortLines(t *testing.T, msg string) {
	t.Helper()
	for line := range strings.SplitSeq(msg, "\n") {
		if len(line) > 1024 {
			t.Errorf("an error line is %d bytes long: huge values must be truncated: %s", len(line), clip(line))
		}
	}
}

func clip(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return s
}
