package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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

func (p *pgServer) runDir() string { return filepath.Join(p.dir, "run") }

// passwordFile is where the initial password of role is kept. For the
// superuser it is also what ROTATOR_PG_SUPERUSER_PASSWORD_FILE points at.
func (p *pgServer) passwordFile(role string) string {
	if role == pgSuperuser {
		return filepath.Join(p.dir, "superuser.password")
	}
	return filepath.Join(p.dir, role+".password")
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
