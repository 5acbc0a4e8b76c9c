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
    postgres: {host: pg, role: App-User.v2$ro, database: app_db, port: 6432, sslMode: verify-full, dsnKey: DATABASE_URL}
`))
	if err != nil {
		t.Fatal(err)
	}
	db, _ := c.Target("db")
	p := db.Postgres
	if db.Key != "password" || p.Port != 5432 || p.Database != "orchestrator" || p.SSLMode != "verify-full" || p.DSNSSLMode != "prefer" ||
		len(p.Users) != 2 || p.Users[0] != "orchestrator_a" || p.Users[1] != "orchestrator_b" {
		t.Errorf("defaults not applied: %+v", p)
	}
	db2, _ := c.Target("db2")
	// A written sslMode is the DSN's too.
	if db2.Postgres.Strategy != catalog.StrategySingleUser || db2.Postgres.Port != 6432 || db2.Postgres.DSNSSLMode != "verify-full" {
		t.Errorf("db2: %+v", db2.Postgres)
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

// minGrace defaults to an hour, or to the target's grace when that is
// shorter, so that the default never refuses the target's own grace.
func TestMinGraceDefaults(t *testing.T) {
	c, err := catalog.Parse([]byte(`
targets:
  - {name: week, kind: jwt, namespace: ns, secret: a}
  - {name: short, kind: jwt, namespace: ns, secret: b, grace: 10m}
  - {name: strict, kind: jwt, namespace: ns, secret: c, grace: 7d, minGrace: 2d}
`))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]time.Duration{"week": time.Hour, "short": 10 * time.Minute, "strict": 48 * time.Hour} {
		got, err := c.Target(name)
		if err != nil {
			t.Fatal(err)
		}
		if got.MinGrace.Duration != want {
			t.Errorf("%s: minGrace %s, want %s", name, got.MinGrace.Duration, want)
		}
	}
}
