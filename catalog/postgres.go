package catalog

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// KindPostgres rotates the password of a PostgreSQL login role.
const KindPostgres Kind = "postgres"

// The strategies of a postgres target.
const (
	// StrategySingleUser is the runbook's: the role changes its own
	// password, so new logins with the old one fail until the rollout ends.
	StrategySingleUser = "single-user"
	// StrategyAlternating switches consumers between two login roles, so
	// both passwords work throughout: no failed login.
	StrategyAlternating = "alternating-users"
)

// pgMaxIdentifier is PostgreSQL's NAMEDATALEN-1.
const pgMaxIdentifier = 63

// DefaultSSLMode is the worker's sslmode where the catalog writes none:
// encrypted, and to the server the catalog names.
const DefaultSSLMode = "verify-full"

// sslModes are libpq's; anything else would fail only at the first
// connection, mid-rotation.
var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// Postgres configures a postgres target: where the database is and how its
// password changes.
type Postgres struct {
	// Host and Port are the server as the worker reaches it.
	Host string `json:"host"`
	Port int    `json:"port,omitempty"`
	// Database is the database to log in to (default: the role's name).
	Database string `json:"database,omitempty"`
	// SSLMode is libpq's sslmode for the worker's own connections
	// (default verify-full, against PGSSLROOTCERT or the system's CAs).
	// Whatever the mode, the worker refuses a connection that ends up
	// without TLS unless the mode is disable: allow and prefer fall back
	// to plain text silently, and ALTER ROLE must not travel so.
	SSLMode string `json:"sslMode,omitempty"`
	// DSNSSLMode is the sslmode written into the DSN the consumers read
	// (default: SSLMode when the catalog writes one, else prefer, what the
	// DSN said before the worker's default became verify-full: a
	// consumer without the server's CA would fail to connect).
	DSNSSLMode string `json:"dsnSSLMode,omitempty"`
	// SSLModeDefaulted says the catalog wrote no sslMode, so SSLMode is
	// DefaultSSLMode: rotations planned before that default (prefer then)
	// carry prefer, which the worker then replaces with verify-full.
	SSLModeDefaulted bool `json:"-"`
	// Role is the login role (single-user) or the role that owns the
	// objects and whose members the two login roles are (alternating-users).
	Role string `json:"role"`
	// Strategy is single-user (default) or alternating-users.
	Strategy string `json:"strategy,omitempty"`
	// Users are the two login roles of alternating-users (default
	// <role>_a and <role>_b).
	Users []string `json:"users,omitempty"`
	// AdminSecret holds username and password of a role with CREATEROLE,
	// needed by alternating-users to set the other role's password.
	AdminSecret *SecretRef `json:"adminSecret,omitempty"`
	// DSNKey, when set, adds a postgres:// URL under that data key.
	DSNKey string `json:"dsnKey,omitempty"`
}

// OldStopsAtApply reports whether the current credential stops working as
// soon as the new one is applied (a single-user PostgreSQL role has one
// password), so nothing may be left on it.
func (t Target) OldStopsAtApply() bool {
	return t.Kind == KindPostgres && t.Postgres != nil && t.Postgres.Strategy == StrategySingleUser
}

// postgresKind registers the postgres kind: its section says where the
// server is and which role to rotate, so it is required.
func postgresKind() kindSpec {
	return kindSpec{
		kind:     KindPostgres,
		section:  "postgres",
		example:  "postgres: {host: ..., role: ...}",
		has:      func(t *Target) bool { return t.Postgres != nil },
		every:    90 * 24 * time.Hour,
		defaults: postgresDefaults,
		check:    postgresCheck,
		logins:   postgresLogins,
	}
}

func postgresDefaults(t *Target) {
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

func postgresCheck(t *Target, fail failFunc) {
	t.Postgres.check(fail)
	// The Secret's keys are username and password, what libpq and most
	// drivers read; DSNKey adds a URL beside them.
	if t.Key != "password" {
		fail("key", "a postgres Secret holds username and password: remove key or set key: password")
	}
}

func (p *Postgres) check(fail failFunc) {
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

// checkPGName refuses PostgreSQL names that rotator would not handle as
// written. pgx quotes every identifier, so no name can inject SQL; a quote,
// semicolon, space or control character in a catalog is still far more
// likely a paste error or an attack than a real role, and it would travel
// on into Secrets, DSNs and logs.
func checkPGName(fail failFunc, field, v, what string) {
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

// postgresLogins are the roles whose password a postgres target sets: the
// role itself (single-user) or the two login roles (alternating-users).
func postgresLogins(t Target) []passwordRole {
	p := t.Postgres
	if p.Host == "" {
		return nil
	}
	role := func(field, name string) passwordRole { return loginOn("role", p.Host, p.Port, field, name) }
	if p.Strategy == StrategyAlternating {
		var out []passwordRole
		for i, u := range p.Users {
			out = append(out, role(fmt.Sprintf("postgres.users[%d]", i), u))
		}
		return out
	}
	if p.Role == "" {
		return nil
	}
	return []passwordRole{role("postgres.role", p.Role)}
}
