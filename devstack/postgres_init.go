package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
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
	pw, err := ensureSecretFile(path)
	if err == nil {
		err = u.chown(path)
	}
	if err != nil {
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
