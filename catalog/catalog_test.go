package catalog_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rotator/catalog"
)

func TestParseValid(t *testing.T) {
	c, err := catalog.Parse([]byte(`
targets:
  - name: orchestrator-jwt
    kind: jwt
    namespace: llm-orchestrator
    secret: orchestrator-jwt-secret
  - name: other
    kind: jwt
    namespace: ns
    secret: s
    key: token
    every: 30d
    grace: 1h
    jwt: {bytes: 48, dualKey: true}
    consumers: [{kind: StatefulSet, name: db}]
`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Target("orchestrator-jwt")
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != "secret" || got.Grace.Duration != 7*24*time.Hour || got.Every.Duration != 90*24*time.Hour ||
		got.JWT == nil || got.JWT.Bytes != 64 || got.JWT.DualKey {
		t.Errorf("defaults not applied: %+v %+v", got, got.JWT)
	}
	other, _ := c.Target("other")
	if other.Key != "token" || other.Every.Duration != 30*24*time.Hour || other.Grace.Duration != time.Hour ||
		other.JWT.Bytes != 48 || !other.JWT.DualKey || len(other.Consumers) != 1 {
		t.Errorf("explicit values lost: %+v %+v", other, other.JWT)
	}
	if _, err := c.Target("nope"); err == nil || !strings.Contains(err.Error(), "orchestrator-jwt, other") {
		t.Errorf("unknown target error should list known targets, got %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	const ok = "    namespace: ns\n    secret: s\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string // every fragment must appear in the error
	}{
		{"empty file", "", []string{"empty", "targets:"}},
		{"no targets", "targets: []\n", []string{"targets", "add at least one"}},
		{"unknown field", "targets:\n  - name: a\n    kind: jwt\n    gracee: 1h\n" + ok, []string{"unknown field", "gracee"}},
		{"missing name", "targets:\n  - kind: jwt\n" + ok, []string{"targets[0]", "name: is required"}},
		{"bad name", "targets:\n  - name: Bad_Name\n    kind: jwt\n" + ok, []string{"targets[0] (Bad_Name)", "name:", "lowercase"}},
		{"bad namespace", "targets:\n  - name: a\n    kind: jwt\n    namespace: a.b\n    secret: s\n", []string{"(a)", "namespace:", "a.b"}},
		{"missing secret", "targets:\n  - name: a\n    kind: jwt\n    namespace: ns\n", []string{"(a)", "secret: is required"}},
		{"long secret", "targets:\n  - name: a\n    kind: jwt\n    namespace: ns\n    secret: " + strings.Repeat("s", 250) + "\n", []string{"secret:", "at most 242"}},
		{"unknown kind", "targets:\n  - name: a\n    kind: ldap\n" + ok, []string{"(a)", "kind:", `"ldap"`, "use one of jwt"}},
		{"missing kind", "targets:\n  - name: a\n" + ok, []string{"(a)", "kind: is required"}},
		{"negative every", "targets:\n  - name: a\n    kind: jwt\n    every: -5h\n" + ok, []string{"(a)", "every:", "must be positive"}},
		{"zero grace", "targets:\n  - name: a\n    kind: jwt\n    grace: 0s\n" + ok, []string{"(a)", "grace:", "must be positive", "emergency"}},
		{"not a duration", "targets:\n  - name: a\n    kind: jwt\n    every: soon\n" + ok, []string{`"soon"`, "2160h"}},
		{"duplicate", "targets:\n  - name: a\n    kind: jwt\n" + ok + "  - name: a\n    kind: jwt\n" + ok, []string{"targets[1] (a)", "also the name of targets[0]"}},
		{"bad key", "targets:\n  - name: a\n    kind: jwt\n    key: 'a b'\n" + ok, []string{"key:", `"a b"`}},
		{"jwt bytes", "targets:\n  - name: a\n    kind: jwt\n    jwt: {bytes: 8}\n" + ok, []string{"jwt.bytes", "32 to 4096"}},
		{"bad consumer", "targets:\n  - name: a\n    kind: jwt\n    consumers: [{kind: Pod, name: x}]\n" + ok, []string{"consumers[0].kind", "Deployment, StatefulSet, DaemonSet"}},
		{"duplicate consumer", "targets:\n  - name: a\n    kind: jwt\n    consumers: [{kind: Deployment, name: x}, {kind: Deployment, name: x}]\n" + ok, []string{"consumers[1]", "listed twice"}},
		{"huge value", "targets:\n  - name: " + strings.Repeat("x", 100000) + "\n    kind: jwt\n" + ok, []string{"name:", "…"}},
		{"all errors at once", "targets:\n  - name: a\n    kind: nope\n    namespace: A\n", []string{"kind:", "namespace:", "secret: is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := catalog.Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatal("Parse accepted a bad catalog")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if len(err.Error()) > 2000 {
				t.Errorf("error is %d bytes long: huge values must be truncated", len(err.Error()))
			}
		})
	}
}

func TestLoadShippedCatalog(t *testing.T) {
	c, err := catalog.Load(filepath.Join("..", "rotator.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Target("orchestrator-jwt"); err != nil {
		t.Fatal(err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := catalog.Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "read catalog") {
		t.Fatalf("want a read error, got %v", err)
	}
}

func TestParsePostgres(t *testing.T) {
	c, err := catalog.Parse([]byte(`
targets:
  - name: db
    kind: postgres
    namespace: ns
    secret: db-secret
    postgres: {host: pg.ns.svc, role: orchestrator, strategy: alternating-users, adminSecret: {namespace: rotator, name: pg-admin}}
  - name: db2
    kind: postgres
    namespace: ns
    secret: db2-secret
    postgres: {host: pg, role: 'we"ird;role', database: app, port: 6432, sslMode: verify-full, dsnKey: DATABASE_URL}
`))
	if err != nil {
		t.Fatal(err)
	}
	db, _ := c.Target("db")
	p := db.Postgres
	if db.Key != "password" || p.Port != 5432 || p.Database != "orchestrator" || p.SSLMode != "prefer" ||
		len(p.Users) != 2 || p.Users[0] != "orchestrator_a" || p.Users[1] != "orchestrator_b" {
		t.Errorf("defaults not applied: %+v", p)
	}
	db2, _ := c.Target("db2")
	if db2.Postgres.Strategy != catalog.StrategySingleUser || db2.Postgres.Port != 6432 {
		t.Errorf("db2: %+v", db2.Postgres)
	}
}

func TestParsePostgresErrors(t *testing.T) {
	const head = "targets:\n  - name: db\n    kind: postgres\n    namespace: ns\n    secret: s\n"
	for _, tc := range []badCatalog{
		{"no postgres block", head, []string{"(db)", "postgres: is required for kind postgres"}},
		{"postgres on jwt", "targets:\n  - name: a\n    kind: jwt\n    namespace: ns\n    secret: s\n    postgres: {host: h, role: r}\n", []string{"postgres: is only valid for kind postgres"}},
		{"missing host and role", head + "    postgres: {}\n", []string{"postgres.host: is required", "postgres.role: is required"}},
		{"bad port", head + "    postgres: {host: h, role: r, port: 70000}\n", []string{"postgres.port", "70000"}},
		{"bad strategy", head + "    postgres: {host: h, role: r, strategy: rolling}\n", []string{"postgres.strategy", `"rolling"`, "single-user or alternating-users"}},
		{"no admin secret", head + "    postgres: {host: h, role: r, strategy: alternating-users}\n", []string{"postgres.adminSecret: is required"}},
		{"three users", head + "    postgres: {host: h, role: r, strategy: alternating-users, users: [a, b, c], adminSecret: {namespace: n, name: s}}\n", []string{"postgres.users", "exactly two"}},
		{"same users", head + "    postgres: {host: h, role: r, strategy: alternating-users, users: [a, a], adminSecret: {namespace: n, name: s}}\n", []string{"postgres.users", "twice"}},
		{"owner as user", head + "    postgres: {host: h, role: r, strategy: alternating-users, users: [r, b], adminSecret: {namespace: n, name: s}}\n", []string{"postgres.users[0]", "owning role"}},
		{"users on single", head + "    postgres: {host: h, role: r, users: [a, b]}\n", []string{"postgres.users", "only used by strategy alternating-users"}},
		{"long role", head + "    postgres: {host: h, role: " + strings.Repeat("r", 64) + "}\n", []string{"postgres.role", "64 bytes", "truncates"}},
		{"bad sslmode", head + "    postgres: {host: h, role: r, sslMode: maybe}\n", []string{"postgres.sslMode", `"maybe"`}},
		{"dsn overwrites", head + "    postgres: {host: h, role: r, dsnKey: password}\n", []string{"postgres.dsnKey", "overwrite"}},
		{"jwt key on postgres", head + "    key: secret\n    postgres: {host: h, role: r}\n", []string{"key:", "username and password"}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantParseError(t, tc.yaml, tc.want...) })
	}
}

func TestParseAPIKeysAndVault(t *testing.T) {
	c, err := catalog.Parse([]byte(`
vault:
  auth: {method: kubernetes, role: rotator}
targets:
  - name: llm
    kind: apikeys
    namespace: ns
    secret: llm-keys
    vault: {path: ns/llm}
    apiKeys:
      providers:
        - name: openai
          admin: {secret: {namespace: rotator, name: openai-admin}, projectID: proj_abc}
        - name: anthropic
          key: claude
          baseURL: http://127.0.0.1:9999
      probe: {url: "https://app.example.com/api/v1/workflows/execute", method: POST, body: "{}"}
`))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := c.Target("llm")
	a := got.APIKeys
	if got.Key != "openai-api-key" || a.Providers[0].Key != "openai-api-key" || a.Providers[1].Key != "claude" ||
		a.Providers[0].BaseURL != "https://api.openai.com" || a.Providers[1].BaseURL != "http://127.0.0.1:9999" ||
		a.Providers[0].Admin.Key != "admin-key" || a.StageTimeout.Duration != 72*time.Hour ||
		a.Probe.ExpectStatus != 200 || got.Every.Duration != 180*24*time.Hour {
		t.Errorf("defaults not applied: %+v %+v", got, a)
	}
	if got.Vault.Mount != "secret" || !c.UsesVault() || c.Vault.Auth.Role != "rotator" {
		t.Errorf("vault defaults: %+v %+v", got.Vault, c.Vault)
	}
}

func TestParseAPIKeysAndVaultErrors(t *testing.T) {
	const head = "targets:\n  - name: a\n    kind: apikeys\n    namespace: ns\n    secret: s\n"
	for _, tc := range []badCatalog{
		{"no apiKeys", head, []string{"apiKeys: is required", "providers"}},
		{"no providers", head + "    apiKeys: {providers: []}\n", []string{"apiKeys.providers", "is empty"}},
		{"unknown provider", head + "    apiKeys: {providers: [{name: mistral}]}\n", []string{"apiKeys.providers[0].name", `"mistral"`, "openai, anthropic"}},
		{"provider twice", head + "    apiKeys: {providers: [{name: openai}, {name: openai, key: other}]}\n", []string{"providers[1].name", "also providers[0]"}},
		{"same data key", head + "    apiKeys: {providers: [{name: openai, key: k}, {name: anthropic, key: k}]}\n", []string{"providers[1].key", "own data key"}},
		{"bad base URL", head + "    apiKeys: {providers: [{name: openai, baseURL: 'ftp://x'}]}\n", []string{"providers[0].baseURL", "https://api.openai.com"}},
		{"openai admin without project", head + "    apiKeys: {providers: [{name: openai, admin: {secret: {namespace: rotator, name: adm}}}]}\n", []string{"admin.projectID", "proj_"}},
		{"anthropic admin with project", head + "    apiKeys: {providers: [{name: anthropic, admin: {secret: {namespace: rotator, name: adm}, projectID: p}}]}\n", []string{"admin.projectID", "only used by openai"}},
		{"bad admin secret", head + "    apiKeys: {providers: [{name: anthropic, admin: {secret: {namespace: Bad, name: adm}}}]}\n", []string{"admin.secret.namespace", `"Bad"`}},
		{"key on apikeys", head + "    key: x\n    apiKeys: {providers: [{name: openai}]}\n", []string{"key:", "providers[i].key"}},
		{"bad probe", head + "    apiKeys: {providers: [{name: openai}], probe: {url: 'not a url', method: PUT, body: x}}\n", []string{"probe.url", "probe.method", "probe.body"}},
		{"apiKeys on jwt", "targets:\n  - name: a\n    kind: jwt\n    namespace: ns\n    secret: s\n    apiKeys: {providers: [{name: openai}]}\n", []string{"apiKeys: is only valid for kind apikeys"}},
		{"vault path missing", head + "    apiKeys: {providers: [{name: openai}]}\n    vault: {mount: secret}\n", []string{"vault.path", "is empty"}},
		{"vault path dotdot", head + "    apiKeys: {providers: [{name: openai}]}\n    vault: {path: 'a/../b'}\n", []string{"vault.path", "relative segments"}},
		{"vault path data prefix", head + "    apiKeys: {providers: [{name: openai}]}\n    vault: {path: data/x}\n", []string{"vault.path", "the KV v2 API's own prefix"}},
		{"vault path staged", head + "    apiKeys: {providers: [{name: openai}]}\n    vault: {path: x/staged}\n", []string{"vault.path", "/staged"}},
		{"vault auth method", "vault: {auth: {method: ldap}}\n" + head + "    apiKeys: {providers: [{name: openai}]}\n", []string{"vault.auth.method", `"ldap"`, "token or kubernetes"}},
		{"vault kubernetes without role", "vault: {auth: {method: kubernetes}}\n" + head + "    apiKeys: {providers: [{name: openai}]}\n", []string{"vault.auth.role: is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantParseError(t, tc.yaml, tc.want...) })
	}
}

func TestParseTLS(t *testing.T) {
	c, err := catalog.Parse([]byte(`
targets:
  - name: web
    kind: tls
    namespace: ns
    secret: web-tls
    tls: {role: devstack, commonName: web.ns.svc, dnsNames: [web.ns.svc.cluster.local], ips: [127.0.0.1], handshake: {address: "127.0.0.1:8443"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := c.Target("web")
	if got.Key != "tls.crt" || got.TLS.Mount != "pki" || got.TLS.TTL.Duration != 90*24*time.Hour ||
		got.TLS.RenewBefore.Duration != 30*24*time.Hour || got.TLS.Handshake.ServerName != "web.ns.svc" {
		t.Errorf("defaults not applied: %+v %+v", got, got.TLS)
	}
}

func TestParseTLSErrors(t *testing.T) {
	const head = "targets:\n  - name: a\n    kind: tls\n    namespace: ns\n    secret: s\n"
	for _, tc := range []badCatalog{
		{"no tls", head, []string{"tls: is required"}},
		{"no role or cn", head + "    tls: {}\n", []string{"tls.role: is required", "tls.commonName: is required"}},
		{"bad names", head + "    tls: {role: r, commonName: 'Bad Name', dnsNames: ['x..y'], ips: ['300.1.1.1']}\n", []string{"tls.commonName", "tls.dnsNames[0]", "tls.ips[0]"}},
		{"renew not shorter", head + "    tls: {role: r, commonName: a.b, ttl: 24h, renewBefore: 48h}\n", []string{"tls.renewBefore", "not shorter than tls.ttl"}},
		{"short ttl", head + "    tls: {role: r, commonName: a.b, ttl: 10m, renewBefore: 1m}\n", []string{"tls.ttl", "at least 1h"}},
		{"bad handshake", head + "    tls: {role: r, commonName: a.b, handshake: {address: nohost}}\n", []string{"tls.handshake.address", "host:port"}},
		{"key set", head + "    key: cert\n    tls: {role: r, commonName: a.b}\n", []string{"key:", "tls.crt"}},
		{"tls on jwt", "targets:\n  - name: a\n    kind: jwt\n    namespace: ns\n    secret: s\n    tls: {role: r, commonName: a.b}\n", []string{"tls: is only valid for kind tls"}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantParseError(t, tc.yaml, tc.want...) })
	}
}

// badCatalog is a catalog Parse must refuse, and fragments its error must
// contain.
type badCatalog struct {
	name, yaml string
	want       []string
}

func wantParseError(t *testing.T, yaml string, want ...string) {
	t.Helper()
	_, err := catalog.Parse([]byte(yaml))
	if err == nil {
		t.Fatal("Parse accepted a bad catalog")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}
