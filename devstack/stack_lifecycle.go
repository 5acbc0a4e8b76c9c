package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// up builds what is missing, starts what is not running, waits until every
// component is ready, seeds the demo workload and writes the env file.
func (s *stack) up(ctx context.Context) error {
	start := time.Now()
	fmt.Fprintf(s.out, "devstack: state %s\n", s.dir)
	if err := s.initDirs(); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The services' certificates first: Temporal can serve mutual TLS
	// with them, and PostgreSQL TLS.
	if err := ensurePKI(s.path("pki"), []string{servicesCA}, serviceLeaves()); err != nil {
		return err
	}
	// Temporal needs nothing but this binary: start it first and let it come
	// up while the tools build and Kubernetes starts.
	fmt.Fprintln(s.out, "temporal:")
	waitTemporal, err := s.procs.launch(ctx, s.temporal())
	if err != nil {
		return err
	}
	temporalDone := make(chan error, 1)
	go func() { temporalDone <- waitTemporal() }()

	// PostgreSQL comes first: it is ready in seconds, and the workload's
	// Secrets carry the passwords of the roles it seeds.
	upErr := s.upPostgres(ctx)
	if upErr == nil {
		fmt.Fprintln(s.out, "redis:")
		upErr = s.procs.ensure(ctx, s.redis().component())
	}
	// Vault next: it needs nothing else, and once built it is ready in a
	// second.
	if upErr == nil {
		upErr = s.upVault(ctx)
	}
	if upErr == nil {
		upErr = s.upKubernetes(ctx)
	}
	if upErr != nil {
		cancel()
	}
	temporalErr := <-temporalDone
	if upErr != nil && errors.Is(temporalErr, context.Canceled) {
		temporalErr = nil // cancelled because of upErr
	}
	if err := errors.Join(upErr, temporalErr); err != nil {
		return err
	}

	if err := s.writeEnv(); err != nil {
		return err
	}
	fmt.Fprintf(s.out, `
devstack is up (%s)
  Temporal     127.0.0.1:%d, namespace default; UI http://127.0.0.1:%d
  Kubernetes   https://127.0.0.1:%d; KUBECONFIG=%s
  kubectl      %s
  PostgreSQL   127.0.0.1:%d; superuser %s, password in %s
  Redis        %s (TLS); user %s, password in %s
  Vault        %s (dev mode, in memory); root token in %s
  logs         %s
  env          eval "$(%s env)"   (or: . %s)
`, time.Since(start).Round(100*time.Millisecond), temporalFrontendPort, temporalUIPort, apiserverPort,
		s.kubeconfig(), s.bin("kubectl"), postgresPort, pgSuperuser, s.postgres().passwordFile(pgSuperuser),
		s.redis().addr(), redisAdminUser, s.redis().adminPasswordFile(),
		s.vault().addr(), s.vault().tokenFile(),
		s.path("logs"), s.selfCommand(), s.path("env"))
	return nil
}

// upPostgres starts PostgreSQL (running initdb the first time) and seeds the
// demo roles and database.
func (s *stack) upPostgres(ctx context.Context) error {
	fmt.Fprintln(s.out, "postgres:")
	pg := s.postgres()
	if err := s.procs.ensure(ctx, pg.component()); err != nil {
		return err
	}
	return pg.seed(ctx)
}

// upKubernetes builds the tools if needed and brings up the cluster and the
// demo workload.
func (s *stack) upKubernetes(ctx context.Context) error {
	if s.src == "" {
		fmt.Fprintln(s.out, "devstack: source directory not found (use --src); using existing binaries only")
	}
	b := &builder{binDir: s.path("bin"), logDir: s.path("logs"), out: s.out}
	for _, ts := range []toolset{etcdToolset(s.src), kubeToolset(s.src), kwokToolset(s.src)} {
		if err := b.ensure(ctx, ts); err != nil {
			return err
		}
	}
	if err := installKwokStages(ctx, filepath.Join(s.src, "tools", "kwok"), s.path("kwok", "stages.yaml")); err != nil {
		return err
	}

	if err := ensurePKI(s.path("pki"), []string{clusterCA, frontProxyCA}, clusterLeaves(net.ParseIP(serviceIP))); err != nil {
		return err
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", apiserverPort)
	for _, kc := range []struct{ path, user string }{
		{s.kubeconfig(), "admin"},
		{s.path("kube", "controller-manager.kubeconfig"), "controller-manager"},
		{s.path("kube", "scheduler.kubeconfig"), "scheduler"},
	} {
		data, err := kubeconfigData(server, s.path("pki"), kc.user)
		if err != nil {
			return err
		}
		if err := writeIfChanged(kc.path, data, 0o600); err != nil {
			return fmt.Errorf("kubeconfig: %w", err)
		}
	}

	fmt.Fprintln(s.out, "kubernetes:")
	for _, c := range s.kubeComponents() {
		if err := s.procs.ensure(ctx, c); err != nil {
			return err
		}
	}
	fmt.Fprintln(s.out, "workload:")
	api, err := s.kubeAPI()
	if err != nil {
		return err
	}
	creds, err := s.postgres().credentials()
	if err != nil {
		return err
	}
	return seedWorkload(ctx, s.out, api, s.kubectl(), creds)
}

// initDirs creates the state directory layout and its marker.
func (s *stack) initDirs() error {
	for _, d := range []string{"", "bin", "logs", "pids", "kube"} {
		if err := os.MkdirAll(s.path(d), 0o755); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
	}
	if err := os.MkdirAll(s.path(etcdDataDir), 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	return writeIfChanged(s.path(stateMarker), []byte("devstack state directory; `devstack down --purge` may delete it\n"), 0o644)
}

// down stops every component in reverse start order; purge then removes the
// state directory except bin/.
func (s *stack) down(ctx context.Context, purge bool) error {
	if _, err := os.Stat(s.dir); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(s.out, "devstack: no state in %s\n", s.dir)
		return nil
	}
	fmt.Fprintf(s.out, "devstack: stopping (state %s)\n", s.dir)
	comps := s.components()
	var errs []error
	for i := len(comps) - 1; i >= 0; i-- {
		if err := s.procs.stop(ctx, comps[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if !purge {
		return nil
	}
	return s.purge()
}

// purge removes the state directory except bin/ (the expensive builds).
func (s *stack) purge() error {
	if _, err := os.Stat(s.path(stateMarker)); err != nil {
		return fmt.Errorf("refusing to purge %s: it has no %s marker, so devstack did not create it", s.dir, stateMarker)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	for _, e := range entries {
		if e.Name() == "bin" || e.Name() == stateMarker {
			continue
		}
		if err := os.RemoveAll(s.path(e.Name())); err != nil {
			return fmt.Errorf("purge: %w", err)
		}
	}
	fmt.Fprintf(s.out, "devstack: purged %s (kept bin/)\n", s.dir)
	return nil
}

// status prints one line per component and fails unless all are ready.
func (s *stack) status(ctx context.Context) error {
	tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tPID\tSTATE\tADDRESS")
	allOK := true
	for _, c := range s.components() {
		st := s.procs.status(ctx, c)
		pid := "-"
		if st.pid > 0 {
			pid = strconv.Itoa(st.pid)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", st.name, pid, st.state, st.addr)
		allOK = allOK && st.ok
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !allOK {
		return exitError(1)
	}
	return nil
}

// writeEnv writes the shell exports that point clients at the stack.
func (s *stack) writeEnv() error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by `devstack up`; load with: eval \"$(devstack env)\"\n")
	for _, kv := range [][2]string{
		{"TEMPORAL_ADDRESS", fmt.Sprintf("127.0.0.1:%d", temporalFrontendPort)},
		{"TEMPORAL_NAMESPACE", "default"},
		{"TEMPORAL_UI", fmt.Sprintf("http://127.0.0.1:%d", temporalUIPort)},
		{"KUBECONFIG", s.kubeconfig()},
		{"KUBECTL", s.bin("kubectl")},
		{"PGHOST", "127.0.0.1"},
		{"PGPORT", strconv.Itoa(postgresPort)},
		// The CA of PostgreSQL's certificate, for sslmode verify-full
		// (pgx and libpq read it).
		{"PGSSLROOTCERT", s.path("pki", servicesCA+".crt")},
		// A file reference: the env file is world-readable and ends up in
		// shells and CI logs, the password must not.
		{"ROTATOR_PG_SUPERUSER_PASSWORD_FILE", s.postgres().passwordFile(pgSuperuser)},
		// Redis serves TLS with a certificate of the services CA (the
		// PGSSLROOTCERT file); the admin password is a file reference too.
		{"ROTATOR_REDIS_ADDR", s.redis().addr()},
		{"ROTATOR_REDIS_ADMIN_PASSWORD_FILE", s.redis().adminPasswordFile()},
		{"VAULT_ADDR", s.vault().addr()},
		// Likewise the root token: clients read it from the file
		// (VAULT_TOKEN="$(cat "$VAULT_TOKEN_FILE")" for the vault CLI).
		{"VAULT_TOKEN_FILE", s.vault().tokenFile()},
		{"ROTATOR_DEVSTACK", s.dir},
	} {
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	return writeIfChanged(s.path("env"), []byte(b.String()), 0o644)
}

// printEnv prints the env file written by up.
func (s *stack) printEnv() error {
	data, err := os.ReadFile(s.path("env"))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s does not exist: run `devstack up` first", s.path("env"))
	}
	if err != nil {
		return err
	}
	_, err = s.out.Write(data)
	return err
}

// selfCommand is how the summary tells the user to call devstack again.
func (s *stack) selfCommand() string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, s.self); err == nil && !strings.HasPrefix(rel, "..") {
			cmd := "./" + rel
			if s.dir != filepath.Join(wd, ".devstack") {
				cmd += " --state " + shellQuote(s.dir)
			}
			return cmd
		}
	}
	return shellQuote(s.self) + " --state " + shellQuote(s.dir)
}

// shellQuote quotes v for POSIX shells unless it is plainly safe.
func shellQuote(v string) string {
	safe := v != ""
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-:=@,+", r)) {
			safe = false
			break
		}
	}
	if safe {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
