package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Ports of the stack, all on 127.0.0.1.
const (
	temporalFrontendPort = 7233 // history, matching and worker take the next three
	temporalHTTPPort     = 7243
	temporalUIPort       = 8233
	temporalMetricsPort  = 9233
	etcdClientPort       = 2379
	etcdPeerPort         = 2380
	// etcdDataDir is named for the etcd minor version: a data directory of
	// the Debian etcd 3.4 that devstack used before cannot be opened by
	// 3.6 (an upgrade must pass through 3.5), so it is left unused.
	etcdDataDir    = "etcd3.6"
	apiserverPort  = 6443
	controllerPort = 10257
	schedulerPort  = 10259
	kwokPort       = 10247
	// postgresPort (5432) is in postgres.go.

	serviceCIDR = "10.96.0.0/16"
	// serviceIP is the first address of serviceCIDR, the kubernetes Service.
	serviceIP = "10.96.0.1"

	// stateMarker is created in every state directory, so that `down --purge`
	// never deletes a directory devstack did not create.
	stateMarker = ".devstack-state"
)

// stack is the local stack rooted at one state directory.
type stack struct {
	// dir is the absolute state directory.
	dir string
	// src is the devstack source directory (with tools/), "" if not found.
	src string
	// self is this executable, which also runs the Temporal server.
	self  string
	out   io.Writer
	procs *procs

	apiMu sync.Mutex
	api   *kubeAPI
}

// newStack resolves the state and source directories; it creates nothing.
func newStack(stateDir, srcDir string, out io.Writer) (*stack, error) {
	dir, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating devstack's executable: %w", err)
	}
	s := &stack{dir: dir, src: findSource(srcDir), self: self, out: out}
	s.procs = &procs{pidDir: s.path("pids"), logDir: s.path("logs"), workDir: dir, out: out}
	return s, nil
}

// findSource returns the devstack source directory: the --src flag, else
// ./devstack or . (the Makefile runs from the repository root), else the
// directory this file was compiled from.
func findSource(flagValue string) string {
	if flagValue != "" {
		abs, err := filepath.Abs(flagValue)
		if err != nil {
			return flagValue
		}
		return abs
	}
	candidates := []string{"devstack", "."}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		candidates = append(candidates, filepath.Dir(file))
	}
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "tools", "kube", "go.mod")); err == nil {
			if abs, err := filepath.Abs(c); err == nil {
				return abs
			}
		}
	}
	return ""
}

func (s *stack) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

func (s *stack) bin(name string) string { return s.path("bin", name) }

func (s *stack) kubeconfig() string { return s.path("kubeconfig") }

func (s *stack) kubectl() kubectl {
	return kubectl{bin: s.bin("kubectl"), kubeconfig: s.kubeconfig()}
}

// kubeAPI returns the API client, loading the admin certificate on first use.
func (s *stack) kubeAPI() (*kubeAPI, error) {
	s.apiMu.Lock()
	defer s.apiMu.Unlock()
	if s.api == nil {
		api, err := newKubeAPI("https://127.0.0.1:"+strconv.Itoa(apiserverPort), s.path("pki"))
		if err != nil {
			return nil, err
		}
		s.api = api
	}
	return s.api, nil
}

// components returns every component in start order.
func (s *stack) components() []*component {
	return append([]*component{s.temporal(), s.postgres().component(), s.vault().component()}, s.kubeComponents()...)
}

// kubeComponents returns the Kubernetes components in start order.
func (s *stack) kubeComponents() []*component {
	return []*component{s.etcd(), s.apiserver(), s.controllerManager(), s.scheduler(), s.kwok()}
}

func (s *stack) markers(extra ...string) []string {
	return append([]string{s.dir + string(os.PathSeparator)}, extra...)
}

func (s *stack) temporal() *component {
	ready := s.path("temporal.ready")
	return &component{
		name: "temporal",
		bin:  s.self,
		args: []string{
			"temporal",
			"--db", s.path("temporal.db"),
			"--ip", "127.0.0.1",
			"--frontend-port", strconv.Itoa(temporalFrontendPort),
			"--http-port", strconv.Itoa(temporalHTTPPort),
			"--ui-port", strconv.Itoa(temporalUIPort),
			"--metrics-port", strconv.Itoa(temporalMetricsPort),
			"--namespace", "default",
			"--ready-file", ready,
		},
		addr: fmt.Sprintf("127.0.0.1:%d (UI http://127.0.0.1:%d)", temporalFrontendPort, temporalUIPort),
		ports: []int{
			temporalFrontendPort, temporalFrontendPort + 1, temporalFrontendPort + 2, temporalFrontendPort + 3,
			temporalHTTPPort, temporalUIPort, temporalMetricsPort,
		},
		markers: s.markers("temporal"),
		beforeStart: func() error {
			if err := os.Remove(ready); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		},
		ready: func(ctx context.Context) error {
			if _, err := os.Stat(ready); err != nil {
				return errors.New("ready file not written yet")
			}
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(temporalFrontendPort)))
			if err != nil {
				return err
			}
			return conn.Close()
		},
		readyTimeout: 3 * time.Minute,
		stopTimeout:  20 * time.Second,
	}
}

func (s *stack) etcd() *component {
	client := fmt.Sprintf("http://127.0.0.1:%d", etcdClientPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", etcdPeerPort)
	return &component{
		name: "etcd",
		bin:  s.bin("etcd"),
		args: []string{
			"--name=devstack",
			"--data-dir=" + s.path(etcdDataDir),
			"--listen-client-urls=" + client,
			"--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=devstack=" + peer,
			"--logger=zap",
			"--log-outputs=stderr",
			"--auto-compaction-mode=periodic",
			"--auto-compaction-retention=1h",
		},
		addr:    client,
		ports:   []int{etcdClientPort, etcdPeerPort},
		markers: s.markers(),
		ready: func(ctx context.Context) error {
			return httpProbe(ctx, client+"/health", false)
		},
		readyTimeout: time.Minute,
	}
}

func (s *stack) apiserver() *component {
	pki := func(name string) string { return s.path("pki", name) }
	return &component{
		name: "kube-apiserver",
		bin:  s.bin("kube-apiserver"),
		args: []string{
			"--advertise-address=127.0.0.1",
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(apiserverPort),
			"--etcd-servers=" + fmt.Sprintf("http://127.0.0.1:%d", etcdClientPort),
			"--tls-cert-file=" + pki("apiserver.crt"),
			"--tls-private-key-file=" + pki("apiserver.key"),
			"--client-ca-file=" + pki("ca.crt"),
			// Aggregation layer, as kubeadm configures it; without it the
			// controller manager and scheduler log an error every 10 s.
			"--requestheader-client-ca-file=" + pki("front-proxy-ca.crt"),
			"--requestheader-allowed-names=front-proxy-client",
			"--requestheader-username-headers=X-Remote-User",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--proxy-client-cert-file=" + pki("front-proxy-client.crt"),
			"--proxy-client-key-file=" + pki("front-proxy-client.key"),
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + pki("sa.pub"),
			"--service-account-signing-key-file=" + pki("sa.key"),
			"--service-cluster-ip-range=" + serviceCIDR,
			"--authorization-mode=Node,RBAC",
			"--allow-privileged=true",
			// The endpoint of the kubernetes Service would be 127.0.0.1,
			// which Endpoints validation rejects; nothing in devstack uses it.
			"--endpoint-reconciler-type=none",
			"--profiling=false",
		},
		addr:    fmt.Sprintf("https://127.0.0.1:%d", apiserverPort),
		ports:   []int{apiserverPort},
		markers: s.markers(),
		ready: func(ctx context.Context) error {
			api, err := s.kubeAPI()
			if err != nil {
				return err
			}
			return api.readyz(ctx)
		},
		readyTimeout: 2 * time.Minute,
	}
}

func (s *stack) controllerManager() *component {
	kc := s.path("kube", "controller-manager.kubeconfig")
	return &component{
		name: "kube-controller-manager",
		bin:  s.bin("kube-controller-manager"),
		args: []string{
			"--kubeconfig=" + kc,
			"--authentication-kubeconfig=" + kc,
			"--authorization-kubeconfig=" + kc,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(controllerPort),
			"--leader-elect=false",
			"--use-service-account-credentials=true",
			"--service-account-private-key-file=" + s.path("pki", "sa.key"),
			"--root-ca-file=" + s.path("pki", "ca.crt"),
			"--cluster-signing-cert-file=" + s.path("pki", "ca.crt"),
			"--cluster-signing-key-file=" + s.path("pki", "ca.key"),
			"--service-cluster-ip-range=" + serviceCIDR,
			"--cluster-name=devstack",
			"--profiling=false",
			// The default client limit (20 requests/s per controller) held
			// the deployment and replicaset controllers to about 2.6
			// rollouts/s; make bench's scale runs start hundreds at once.
			"--kube-api-qps=200",
			"--kube-api-burst=400",
			"--concurrent-deployment-syncs=20",
			"--concurrent-replicaset-syncs=20",
		},
		addr:    fmt.Sprintf("https://127.0.0.1:%d", controllerPort),
		ports:   []int{controllerPort},
		markers: s.markers(),
		ready: func(ctx context.Context) error {
			return httpProbe(ctx, fmt.Sprintf("https://127.0.0.1:%d/healthz", controllerPort), true)
		},
		readyTimeout: time.Minute,
	}
}

func (s *stack) scheduler() *component {
	kc := s.path("kube", "scheduler.kubeconfig")
	return &component{
		name: "kube-scheduler",
		bin:  s.bin("kube-scheduler"),
		args: []string{
			"--kubeconfig=" + kc,
			"--authentication-kubeconfig=" + kc,
			"--authorization-kubeconfig=" + kc,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(schedulerPort),
			"--leader-elect=false",
			"--profiling=false",
			// As for the controller manager: binding hundreds of pods at
			// once at the default 50 requests/s.
			"--kube-api-qps=200",
			"--kube-api-burst=400",
		},
		addr:    fmt.Sprintf("https://127.0.0.1:%d", schedulerPort),
		ports:   []int{schedulerPort},
		markers: s.markers(),
		ready: func(ctx context.Context) error {
			return httpProbe(ctx, fmt.Sprintf("https://127.0.0.1:%d/healthz", schedulerPort), true)
		},
		readyTimeout: time.Minute,
	}
}

func (s *stack) kwok() *component {
	return &component{
		name: "kwok",
		bin:  s.bin("kwok"),
		args: []string{
			"--kubeconfig=" + s.kubeconfig(),
			"--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
			"--config=" + s.path("kwok", "stages.yaml"),
			"--server-address=" + fmt.Sprintf("127.0.0.1:%d", kwokPort),
		},
		addr:    fmt.Sprintf("http://127.0.0.1:%d", kwokPort),
		ports:   []int{kwokPort},
		markers: s.markers(),
		// The fake nodes exist before kwok starts, so it picks them up at once;
		// applying on every up also recreates a node deleted by hand.
		prepare: func(ctx context.Context) error {
			res, err := s.kubectl().applyManifest(ctx, "nodes.yaml")
			if err != nil {
				return err
			}
			printIndented(s.out, res)
			return nil
		},
		ready: func(ctx context.Context) error {
			if err := httpProbe(ctx, fmt.Sprintf("http://127.0.0.1:%d/healthz", kwokPort), false); err != nil {
				return err
			}
			api, err := s.kubeAPI()
			if err != nil {
				return err
			}
			return api.nodesReady(ctx, kwokNodeSelector)
		},
		readyTimeout: 90 * time.Second,
	}
}

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
  Vault        %s (dev mode, in memory); root token in %s
  logs         %s
  env          eval "$(%s env)"   (or: . %s)
`, time.Since(start).Round(100*time.Millisecond), temporalFrontendPort, temporalUIPort, apiserverPort,
		s.kubeconfig(), s.bin("kubectl"), postgresPort, pgSuperuser, s.postgres().passwordFile(pgSuperuser),
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
