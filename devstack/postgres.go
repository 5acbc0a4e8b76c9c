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
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	postgresPort = 5432
	// pgLibDir is where Debian's postgresql-<ver> packages put their
	// binaries, one directory per major version.
	pgLibDir = "/usr/lib/postgresql"
	// pgOSUser is the system user Debian's postgresql package creates; the
	// server refuses to run as root.
	pgOSUser = "postgres"
	// pgSuperuser is the bootstrap superuser initdb creates.
	pgSuperuser = "postgres"

	orchestratorRole = "orchestrator"
	orchestratorDB   = "orchestrator"
	// rotatorAdminRole is rotator's admin credential for the
	// alternating-users strategy.
	rotatorAdminRole = "rotator_admin"

	// scramIterations is PostgreSQL's iteration count (fixed before 16,
	// the default of scram_iterations since).
	scramIterations = 4096
	scramSaltLen    = 16
)

// pgHBA is the whole pg_hba.conf: peer for the unix socket, SCRAM for
// 127.0.0.1, nothing else (no ::1, no replication, no md5 or trust).
const pgHBA = `# Written by devstack on every up; edits are overwritten.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 peer
host    all       all   127.0.0.1/32  scram-sha-256
`

// pgServer is the stack's PostgreSQL: data in <dir>/data, its unix socket in
// <dir>/run and the generated initial passwords in <dir>/<role>.password.
type pgServer struct {
	dir string
	// pki holds postgres.crt and postgres.key (serviceLeaves), which
	// prepare copies into the data directory for the server's TLS.
	pki     string
	port    int
	logFile string
	// markers tie the running postmaster to this state directory (see
	// component.markers); the data directory argument contains them.
	markers []string
	out     io.Writer
	// hbaChanged is set when prepare rewrote pg_hba.conf or the TLS
	// certificate, which seed then has the server reload.
	hbaChanged bool
}

func (s *stack) postgres() *pgServer {
	return &pgServer{
		dir:     s.path("postgres"),
		pki:     s.path("pki"),
		port:    postgresPort,
		logFile: s.procs.logFile(&component{name: "postgres"}),
		markers: s.markers(),
		out:     s.out,
	}
}

func (p *pgServer) dataDir() string { return filepath.Join(p.dir, "data") }
func (p *pgServer) runDir() string  { return filepath.Join(p.dir, "run") }

// passwordFile is where the initial password of role is kept. For the
// superuser it is also what ROTATOR_PG_SUPERUSER_PASSWORD_FILE points at.
func (p *pgServer) passwordFile(role string) string {
	if role == pgSuperuser {
		return filepath.Join(p.dir, "superuser.password")
	}
	return filepath.Join(p.dir, role+".password")
}

// pgBinDir returns the bin directory of the PostgreSQL that must run
// dataDir: the major version recorded in its PG_VERSION when it has been
// initialised (a newer server cannot open it), else the newest installed.
func pgBinDir(libDir, dataDir string) (string, error) {
	matches, _ := filepath.Glob(filepath.Join(libDir, "*", "bin", "postgres"))
	var versions []string
	for _, m := range matches {
		versions = append(versions, filepath.Base(filepath.Dir(filepath.Dir(m))))
	}
	if len(versions) == 0 {
		return "", fmt.Errorf("PostgreSQL not found in %s: install Debian's postgresql (apt-get install postgresql)", libDir)
	}
	if raw, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		want := strings.TrimSpace(string(raw))
		if !slices.Contains(versions, want) {
			return "", fmt.Errorf("%s was initialised by PostgreSQL %s, which is not installed (found %s): install postgresql-%s, or `devstack down --purge` to start over",
				dataDir, want, strings.Join(versions, ", "), want)
		}
		return filepath.Join(libDir, want, "bin"), nil
	}
	slices.SortFunc(versions, compareVersions)
	return filepath.Join(libDir, versions[len(versions)-1], "bin"), nil
}

// compareVersions orders PostgreSQL major versions numerically ("9.6" < "15").
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return strings.Compare(a, b)
}

// pgRunAs is the OS user the server, initdb and the files of <dir> belong to.
type pgRunAs struct {
	name     string
	uid, gid int
	// cred is nil when devstack is not root: then everything runs as the
	// invoking user, which PostgreSQL accepts.
	cred *syscall.Credential
}

// pgUser returns the postgres system user when devstack runs as root, else
// the current user.
func pgUser() (*pgRunAs, error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		return &pgRunAs{name: u.Username, uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup(pgOSUser)
	if err != nil {
		return nil, fmt.Errorf("postgres refuses to run as root and there is no %q system user (%w): apt-get install postgresql creates it", pgOSUser, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("postgres: user %s: %w", pgOSUser, err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	// Without setting the groups the child would keep root's supplementary
	// groups.
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.Atoi(id); err == nil {
				cred.Groups = append(cred.Groups, uint32(g))
			}
		}
	}
	return &pgRunAs{name: u.Username, uid: uid, gid: gid, cred: cred}, nil
}

// component describes the postmaster. Settings are command-line flags rather
// than postgresql.conf edits, so they win over the file and ALTER SYSTEM, and
// `up` notices a running server started with other ones.
func (p *pgServer) component() *component {
	binDir, binErr := pgBinDir(pgLibDir, p.dataDir())
	bin := filepath.Join(binDir, "postgres")
	if binErr != nil {
		bin = "postgres" // status and down still work; prepare reports binErr
	}
	var cred *syscall.Credential
	if u, err := pgUser(); err == nil {
		cred = u.cred // else prepare reports err before anything starts
	}
	return &component{
		name: "postgres",
		bin:  bin,
		args: []string{
			"-D", p.dataDir(),
			"-c", "listen_addresses=127.0.0.1",
			"-c", "port=" + strconv.Itoa(p.port),
			// Quoted: the setting is a list, so a comma or a space in the
			// path would otherwise split it.
			"-c", `unix_socket_directories="` + p.runDir() + `"`,
			"-c", "password_encryption=scram-sha-256",
			// TLS with the services CA's certificate for 127.0.0.1 and
			// localhost, so that clients can verify-full; plain text stays
			// possible (sslmode disable) for the tests that show rotator
			// refusing it.
			"-c", "ssl=on",
			"-c", "ssl_cert_file=" + filepath.Join(p.dataDir(), "server.crt"),
			"-c", "ssl_key_file=" + filepath.Join(p.dataDir(), "server.key"),
			"-c", "ssl_min_protocol_version=TLSv1.2",
		},
		cred:  cred,
		addr:  fmt.Sprintf("127.0.0.1:%d (socket %s)", p.port, p.runDir()),
		ports: []int{p.port},
		// Where systemd runs, installing Debian's postgresql also starts
		// its default cluster on 5432.
		portHint: " (Debian's own cluster? `pg_lsclusters`, then `pg_ctlcluster <version> main stop`)",
		markers:  p.markers,
		prepare: func(ctx context.Context) error {
			if binErr != nil {
				return binErr
			}
			return p.prepare(ctx, binDir)
		},
		ready: func(ctx context.Context) error {
			return pgIsReady(ctx, filepath.Join(binDir, "pg_isready"), p.port)
		},
		readyTimeout: time.Minute,
		// Fast shutdown: a dev stack need not wait for clients to leave.
		stopSignal: syscall.SIGINT,
		// The postmaster stops its children itself; SIGINT means other
		// things to them (cancel the query, request a checkpoint).
		signalLeaderOnly: true,
		stopTimeout:      30 * time.Second,
	}
}

// prepare creates the directories and the initial passwords, runs initdb the
// first time and rewrites pg_hba.conf; all idempotent.
func (p *pgServer) prepare(ctx context.Context, binDir string) error {
	u, err := pgUser()
	if err != nil {
		return err
	}
	// <dir> holds the password files: only the server's user (and root) may
	// read it.
	for _, d := range []string{p.dir, p.dataDir(), p.runDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return err
		}
		if err := u.chown(d); err != nil {
			return err
		}
	}
	if err := reachable(p.dataDir(), u); err != nil {
		return err
	}
	superPW := p.passwordFile(pgSuperuser)
	for _, role := range []string{pgSuperuser, orchestratorRole, rotatorAdminRole} {
		if _, err := ensurePasswordFile(p.passwordFile(role), u); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(p.dataDir(), "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := p.initdb(ctx, binDir, superPW, u); err != nil {
			return err
		}
	}
	changed, err := writeOwnedIfChanged(filepath.Join(p.dataDir(), "pg_hba.conf"), []byte(pgHBA), u)
	if err != nil {
		return fmt.Errorf("postgres: pg_hba.conf: %w", err)
	}
	p.hbaChanged = p.hbaChanged || changed
	// The server reads its key only if its own user owns it with mode
	// 0600, so it gets copies; a renewed certificate reaches a running
	// server with the same reload as pg_hba.conf.
	for src, dst := range map[string]string{"postgres.crt": "server.crt", "postgres.key": "server.key"} {
		data, err := os.ReadFile(filepath.Join(p.pki, src))
		if err != nil {
			return fmt.Errorf("postgres: TLS certificate: %w", err)
		}
		changed, err := writeOwnedIfChanged(filepath.Join(p.dataDir(), dst), data, u)
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", dst, err)
		}
		p.hbaChanged = p.hbaChanged || changed
	}
	return nil
}

// initdb creates the cluster. The superuser password comes from a file
// (--pwfile), never from argv; initdb's output goes to the postgres log.
func (p *pgServer) initdb(ctx context.Context, binDir, pwfile string, u *pgRunAs) error {
	// A data directory without PG_VERSION is a failed initdb's leftover
	// (initdb refuses a non-empty directory); it lives in devstack's state.
	entries, err := os.ReadDir(p.dataDir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(p.dataDir(), e.Name())); err != nil {
			return err
		}
	}
	// 0600: a failed statement is logged with its text, and ALTER ROLE's
	// carries a password verifier. Chmod covers a log an older devstack
	// left readable.
	logf, err := os.OpenFile(p.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("postgres: open log: %w", err)
	}
	defer logf.Close()
	if err := logf.Chmod(0o600); err != nil {
		return fmt.Errorf("postgres: log: %w", err)
	}
	args := []string{
		"-D", p.dataDir(),
		"-U", pgSuperuser,
		"--pwfile=" + pwfile,
		"--auth-local=peer",
		"--auth-host=scram-sha-256",
		"--encoding=UTF8",
		// The C locale needs no generated locales, which minimal machines lack.
		"--no-locale",
	}
	fmt.Fprintf(logf, "\n==== %s devstack: %s %s\n", time.Now().Format(time.RFC3339), filepath.Join(binDir, "initdb"), strings.Join(args, " "))
	start := time.Now()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = p.dir
	cmd.Env = append(pgFreeEnv(), "LANG=C", "LC_ALL=C")
	if u.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred}
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("postgres: initdb: %w; last lines of %s:\n%s", err, p.logFile, tail(p.logFile, 15))
	}
	fmt.Fprintf(p.out, "  %-24s initdb %s as %s (%s)\n", "postgres", p.dataDir(), u.name, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// chown gives path to the server's user; a no-op when not root.
func (u *pgRunAs) chown(path string) error {
	if u.cred == nil {
		return nil
	}
	if err := os.Lchown(path, u.uid, u.gid); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// reachable checks that u can traverse every parent of dir, since the server
// runs as u while devstack's state may sit under a directory only root can
// enter; the check turns initdb's late "permission denied" into the fix.
func reachable(dir string, u *pgRunAs) error {
	if u.cred == nil {
		return nil
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		perm := info.Mode().Perm()
		var can bool
		switch {
		case int(st.Uid) == u.uid:
			can = perm&0o100 != 0
		case int(st.Gid) == u.gid || slices.Contains(u.cred.Groups, st.Gid):
			can = perm&0o010 != 0
		default:
			can = perm&0o001 != 0
		}
		if !can {
			return fmt.Errorf("postgres runs as user %s, who cannot enter %s (mode %v): chmod o+x %s, or use a --state directory elsewhere", u.name, d, perm, d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// ensurePasswordFile returns the password kept in path, generating it the
// first time. The file holds exactly the password (no newline), mode 0600,
// owned by the server's user, who reads the superuser's with initdb.
func ensurePasswordFile(path string, u *pgRunAs) (string, error) {
	if data, err := os.ReadFile(path); err == nil && len(data) > 0 {
		return string(data), u.chown(path)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("postgres: %w", err)
	}
	pw, err := newPassword()
	if err != nil {
		return "", err
	}
	if _, err := writeOwnedIfChanged(path, []byte(pw), u); err != nil {
		return "", fmt.Errorf("postgres: %w", err)
	}
	return pw, nil
}

// newPassword returns 32 random URL-safe characters (192 bits): printable
// ASCII, so SASLprep leaves it unchanged, and no quoting needed anywhere.
func newPassword() (string, error) {
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// writeOwnedIfChanged writes data with mode 0600 owned by u unless path
// already holds it, and reports whether it wrote.
func writeOwnedIfChanged(path string, data []byte, u *pgRunAs) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, u.chown(path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err = errors.Join(err, tmp.Chmod(0o600), tmp.Close(), u.chown(tmp.Name())); err != nil {
		return false, err
	}
	return true, os.Rename(tmp.Name(), path)
}

// pgFreeEnv is devstack's environment without PG* variables, so that a
// user's PGSERVICE, PGSSLMODE or PGPASSFILE cannot redirect the clients.
func pgFreeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

// pgIsReady runs Debian's pg_isready against 127.0.0.1:port: the wire
// protocol is not in the standard library, and a TCP connect alone succeeds
// before the server accepts sessions (during recovery).
func pgIsReady(ctx context.Context, bin string, port int) error {
	cmd := exec.CommandContext(ctx, bin, "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", pgSuperuser, "-d", "postgres", "-t", "3")
	cmd.Env = pgFreeEnv()
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case 1:
			return errors.New("pg_isready: rejecting connections (starting up or shutting down)")
		case 2:
			return errors.New("pg_isready: no response")
		}
	}
	if err != nil {
		return fmt.Errorf("pg_isready: %w", err)
	}
	return nil
}

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
