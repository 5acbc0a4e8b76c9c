package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// psql runs sql (on stdin, so nothing of it is in argv) with Debian's psql
// over 127.0.0.1 as role, with the password in PGPASSWORD: the environment
// of a process is readable only by its user and root, unlike argv.
func (p *pgServer) psql(ctx context.Context, role, password, db, sql string) (string, error) {
	binDir, err := pgBinDir(pgLibDir, p.dataDir())
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "psql"),
		"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", role, "-d", db)
	cmd.Stdin = strings.NewReader(sql)
	cmd.Env = append(pgFreeEnv(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=10", "PGAPPNAME=devstack")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// psql's messages never contain the password; the statements hold
		// SCRAM verifiers only.
		return stdout.String(), fmt.Errorf("psql as %s: %w: %s", role, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// seed creates, as the superuser, whatever of the demo roles and database is
// absent: orchestrator (LOGIN) owning database orchestrator, and
// rotator_admin (LOGIN CREATEROLE, and ADMIN OPTION on orchestrator, which
// PostgreSQL 16+ requires to grant orchestrator to the alternating users and
// to change its password). Existing roles keep their password: after a
// rotation it differs from the initial one on file, and must stay so.
func (p *pgServer) seed(ctx context.Context) error {
	superPW, err := os.ReadFile(p.passwordFile(pgSuperuser))
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	have, err := p.psql(ctx, pgSuperuser, string(superPW), "postgres", fmt.Sprintf(`
SELECT 'role:' || rolname FROM pg_roles WHERE rolname IN (%[1]s, %[2]s)
UNION ALL SELECT 'db:' || datname FROM pg_database WHERE datname = %[3]s
UNION ALL SELECT 'admin' FROM pg_auth_members m
  JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles a ON a.oid = m.member
  WHERE r.rolname = %[1]s AND a.rolname = %[2]s AND m.admin_option;
`, sqlLiteral(orchestratorRole), sqlLiteral(rotatorAdminRole), sqlLiteral(orchestratorDB)))
	if err != nil {
		return fmt.Errorf("postgres: seed: %w", err)
	}
	exists := map[string]bool{}
	for _, line := range strings.Fields(have) {
		exists[line] = true
	}

	// Roles and the grant in one transaction, so a failure never leaves a
	// role without its password that the next up would then leave as is.
	var stmts, done []string
	created := map[string]string{} // role -> password, to check the login
	for _, r := range []struct{ role, attrs string }{
		{orchestratorRole, "LOGIN"},
		{rotatorAdminRole, "LOGIN CREATEROLE"},
	} {
		if exists["role:"+r.role] {
			continue
		}
		pw, err := os.ReadFile(p.passwordFile(r.role))
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		v, err := scramVerifier(string(pw))
		if err != nil {
			return err
		}
		// The verifier, not the password: even with log_statement = 'all'
		// the server log gets nothing to log in with.
		stmts = append(stmts, fmt.Sprintf("CREATE ROLE %s %s;", sqlIdent(r.role), r.attrs),
			fmt.Sprintf("ALTER ROLE %s PASSWORD %s;", sqlIdent(r.role), sqlLiteral(v)))
		done = append(done, "role "+r.role+" created")
		created[r.role] = string(pw)
	}
	if !exists["admin"] {
		stmts = append(stmts, fmt.Sprintf("GRANT %s TO %s WITH ADMIN OPTION;", sqlIdent(orchestratorRole), sqlIdent(rotatorAdminRole)))
		done = append(done, fmt.Sprintf("%s granted to %s with admin option", orchestratorRole, rotatorAdminRole))
	}
	if len(stmts) > 0 {
		stmts = append([]string{"BEGIN;"}, append(stmts, "COMMIT;")...)
	}
	// CREATE DATABASE cannot run inside a transaction.
	if !exists["db:"+orchestratorDB] {
		stmts = append(stmts, fmt.Sprintf("CREATE DATABASE %s OWNER %s;", sqlIdent(orchestratorDB), sqlIdent(orchestratorRole)))
		done = append(done, "database "+orchestratorDB+" created")
	}
	// A server already running reads the pg_hba.conf prepare rewrote only
	// on reload.
	if p.hbaChanged {
		stmts = append(stmts, "SELECT pg_reload_conf();")
	}
	if len(stmts) > 0 {
		if _, err := p.psql(ctx, pgSuperuser, string(superPW), "postgres", strings.Join(stmts, "\n")+"\n"); err != nil {
			return fmt.Errorf("postgres: seed: %w", err)
		}
	}
	for role, pw := range created {
		db := "postgres"
		if role == orchestratorRole {
			db = orchestratorDB
		}
		if _, err := p.psql(ctx, role, pw, db, "SELECT 1;\n"); err != nil {
			return fmt.Errorf("postgres: role %s cannot log in with its new password: %w", role, err)
		}
	}
	p.hbaChanged = false
	if len(done) == 0 {
		fmt.Fprintf(p.out, "  roles %s, %s and database %s exist (left as is)\n", orchestratorRole, rotatorAdminRole, orchestratorDB)
	}
	for _, d := range done {
		fmt.Fprintf(p.out, "  %s\n", d)
	}
	return nil
}

// pgCredentials are the initial login credentials that go into the
// Kubernetes Secrets.
type pgCredentials struct {
	orchestratorPassword string
	adminPassword        string
}

// credentials reads the initial passwords kept on file.
func (p *pgServer) credentials() (pgCredentials, error) {
	orch, err1 := os.ReadFile(p.passwordFile(orchestratorRole))
	admin, err2 := os.ReadFile(p.passwordFile(rotatorAdminRole))
	if err := errors.Join(err1, err2); err != nil {
		return pgCredentials{}, fmt.Errorf("postgres: %w", err)
	}
	return pgCredentials{orchestratorPassword: string(orch), adminPassword: string(admin)}, nil
}

// scramVerifier returns password's SCRAM-SHA-256 verifier with a fresh
// random salt, as PostgreSQL stores it in pg_authid.rolpassword. It repeats
// rotator/postgres.Verifier on purpose: devstack is its own module (the
// Temporal server pins an older go.temporal.io/api than the worker's SDK),
// so it cannot import the worker's packages; both are checked against the
// same verifiers from a real PostgreSQL.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, scramSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("scram: %w", err)
	}
	return scramVerifierWith(password, salt, scramIterations)
}

// scramVerifierWith computes SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
// (RFC 5802, RFC 7677). PostgreSQL first applies SASLprep, which is the
// identity for printable ASCII; other passwords are refused rather than
// hashed differently from the server.
func scramVerifierWith(password string, salt []byte, iterations int) (string, error) {
	for _, r := range password {
		if r < 0x20 || r > 0x7e {
			return "", errors.New("scram: password has a character outside printable ASCII, which would need SASLprep")
		}
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("scram: %w", err)
	}
	hmacOf := func(msg string) []byte {
		h := hmac.New(sha256.New, salted)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	storedKey := sha256.Sum256(hmacOf("Client Key"))
	serverKey := hmacOf("Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

// sqlIdent quotes a SQL identifier.
func sqlIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// sqlLiteral quotes a SQL string literal (standard_conforming_strings is on
// by default, so only the quote needs doubling).
func sqlLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
