package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/worker"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"rotator/activities"
	"rotator/catalog"
	"rotator/internal/loginprobe"
	"rotator/postgres"
	"rotator/workflows"
)

// loginRun is one rotation under a login load.
type loginRun struct {
	attempts, failures int
	// wall is the time from the procedure's start until the new Secret is
	// live in every pod (the rollout finished).
	wall time.Duration
}

// loginProcedure is a way to change a password of a backing system: the
// runbook's or one of rotator's strategies, on one backend.
type loginProcedure struct {
	name    string
	backend loginBackend
	run     func(ctx context.Context, s *dbScenario) error
}

// loginBackend is the system the consumer logs in to: prepare creates its
// user and says what the first Secret and the target hold; login is one
// new connection with a Secret's data.
type loginBackend struct {
	prepare func(ctx context.Context, s *dbScenario) (loginSetup, error)
	login   loginprobe.Login
}

// loginSetup is what a backend's prepare gives the scenario.
type loginSetup struct {
	// first is the data of the Secret's first version.
	first map[string]string
	// extra are further Secrets of the namespace (an admin login).
	extra []*corev1.Secret
	// targetYAML is the target's kind and section.
	targetYAML string
	// starterSetup, when set, are the starter's arguments that prepare
	// the target once the worker runs.
	starterSetup []string
}

var server = postgres.Server{Host: "127.0.0.1", Port: 5432, Database: "postgres", SSLMode: "disable"}

// benchLogins rotates a 3-replica consumer's password while a client opens
// a new connection every 10 ms with the credentials of the Secret a
// running pod references, as the consumer's pods would.
func (e *env) benchLogins(ctx context.Context, runs int) (map[string][]loginRun, error) {
	procs := []loginProcedure{
		{"runbook (psql ALTER USER, -new Secret, patch, rollout restart)", postgresBackend(false), runbookProcedure},
		{"rotator single-user", postgresBackend(false), rotatorProcedure},
		{"rotator alternating-users", postgresBackend(true), rotatorProcedure},
		{"rotator redis (one ACL user, two passwords)", redisBackend(), rotatorProcedure},
	}
	results := map[string][]loginRun{}
	for i := range runs {
		for _, p := range procs {
			r, err := e.loginRun(ctx, p)
			if err != nil {
				return nil, fmt.Errorf("%s, run %d: %w", p.name, i+1, err)
			}
			e.log.Info("login benchmark run", "procedure", p.name, "run", i+1, "attempts", r.attempts, "failed", r.failures, "wall", r.wall.Round(time.Millisecond))
			results[p.name] = append(results[p.name], r)
		}
	}
	return results, nil
}

func (e *env) loginRun(ctx context.Context, p loginProcedure) (loginRun, error) {
	s, err := e.newDBScenario(ctx, p.backend)
	if err != nil {
		return loginRun{}, err
	}
	defer s.close()
	cctx, stop := context.WithCancel(ctx)
	var r loginRun
	var wg sync.WaitGroup
	wg.Go(func() {
		res := loginprobe.Run(cctx, s.e.kube, s.ns, labels.Set{"app": "app"}, 10*time.Millisecond, p.backend.login)
		r.attempts, r.failures = res.Attempts, res.Failures
	})
	start := time.Now()
	err = p.run(ctx, s)
	r.wall = time.Since(start)
	// A second more of load catches failures right after the rollout.
	time.Sleep(time.Second)
	stop()
	wg.Wait()
	return r, err
}

// dbScenario is a namespace with a user of a backing system, its Secret
// and a consumer.
type dbScenario struct {
	e                   *env
	ns, user, secret    string
	catalogPath, target string
	taskQueue           string
	// cleanups undo what prepare made outside the namespace, last first.
	cleanups []func(context.Context)
	worker   worker.Worker
}

func suffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (e *env) newDBScenario(ctx context.Context, b loginBackend) (*dbScenario, error) {
	x := suffix()
	s := &dbScenario{e: e, ns: "bench-" + x, user: "bench_" + x, secret: "app-db", target: "bench-" + x, taskQueue: "bench-" + x}
	k := e.kube
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}, metav1.CreateOptions{}); err != nil {
		return s, err
	}
	setup, err := b.prepare(ctx, s)
	if err != nil {
		return s, err
	}
	secrets := append([]*corev1.Secret{{ObjectMeta: metav1.ObjectMeta{Name: s.secret}, StringData: setup.first}}, setup.extra...)
	for _, sec := range secrets {
		if _, err := k.CoreV1().Secrets(s.ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			return s, err
		}
	}
	if _, err := k.AppsV1().Deployments(s.ns).Create(ctx, consumer(s.secret), metav1.CreateOptions{}); err != nil {
		return s, err
	}
	if err := e.kubectlRun(ctx, "-n", s.ns, "rollout", "status", "deployment/app", "--timeout=5m"); err != nil {
		return s, err
	}
	cat := fmt.Sprintf("targets:\n  - name: %s\n    namespace: %s\n    secret: %s\n%s", s.target, s.ns, s.secret, setup.targetYAML)
	dir, err := os.MkdirTemp("", "rotator-bench")
	if err != nil {
		return s, err
	}
	s.catalogPath = filepath.Join(dir, "rotator.yaml")
	if err := os.WriteFile(s.catalogPath, []byte(cat), 0o600); err != nil {
		return s, err
	}
	parsed, err := catalog.Load(s.catalogPath)
	if err != nil {
		return s, err
	}
	s.worker = worker.New(e.temporal, s.taskQueue, worker.Options{})
	workflows.Register(s.worker)
	activities.Register(s.worker, activities.Deps{Kube: k, Catalog: parsed})
	if err := s.worker.Start(); err != nil {
		return s, err
	}
	if setup.starterSetup != nil {
		if _, err := s.starter(ctx, setup.starterSetup...); err != nil {
			return s, err
		}
	}
	return s, nil
}

// postgresBackend is a PostgreSQL role of its own, rotated single-user or,
// with alternating, between two login roles.
func postgresBackend(alternating bool) loginBackend {
	return loginBackend{
		prepare: func(ctx context.Context, s *dbScenario) (loginSetup, error) {
			su, err := postgres.Connect(ctx, server, postgres.Credentials{Username: "postgres", Password: strings.TrimSpace(s.e.superPW)})
			if err != nil {
				return loginSetup{}, err
			}
			s.cleanups = append(s.cleanups, func(ctx context.Context) { su.Close(ctx) })
			roles := []string{s.user}
			if alternating {
				roles = append(roles, s.user+"_a", s.user+"_b")
			}
			s.cleanups = append(s.cleanups, func(ctx context.Context) {
				for i := len(roles) - 1; i >= 0; i-- {
					_, _ = su.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{roles[i]}.Sanitize())
				}
			})
			pw, err := postgres.NewPassword()
			if err != nil {
				return loginSetup{}, err
			}
			if err := createRole(ctx, su, s.user, pw); err != nil {
				return loginSetup{}, err
			}
			setup := loginSetup{
				first:      map[string]string{"username": s.user, "password": pw},
				targetYAML: fmt.Sprintf("    kind: postgres\n    postgres:\n      host: 127.0.0.1\n      database: postgres\n      sslMode: verify-full\n      role: %s\n", s.user),
			}
			if alternating {
				admin, err := s.e.kube.CoreV1().Secrets("rotator").Get(ctx, "rotator-postgres-admin", metav1.GetOptions{})
				if err != nil {
					return setup, err
				}
				setup.extra = []*corev1.Secret{{ObjectMeta: metav1.ObjectMeta{Name: "pg-admin"}, Data: admin.Data}}
				setup.targetYAML += fmt.Sprintf("      strategy: alternating-users\n      adminSecret: {namespace: %s, name: pg-admin}\n", s.ns)
				setup.starterSetup = []string{"postgres", "setup", s.target}
			}
			return setup, nil
		},
		login: func(ctx context.Context, data map[string][]byte) error {
			return postgres.CanLogin(ctx, server, postgres.Credentials{Username: string(data["username"]), Password: string(data["password"])})
		},
	}
}

func createRole(ctx context.Context, su *pgx.Conn, role, pw string) error {
	v, err := postgres.Verifier(pw)
	if err != nil {
		return err
	}
	if _, err := su.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
		return err
	}
	return postgres.SetPassword(ctx, su, role, v, true)
}

func (s *dbScenario) close() {
	ctx := context.Background()
	if s.worker != nil {
		s.worker.Stop()
	}
	_ = s.e.kube.CoreV1().Namespaces().Delete(ctx, s.ns, metav1.DeleteOptions{})
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i](ctx)
	}
	if s.catalogPath != "" {
		os.RemoveAll(filepath.Dir(s.catalogPath))
	}
}

// consumer is a 3-replica Deployment that reads the database Secret.
func consumer(secret string) *appsv1.Deployment {
	replicas := int32(3)
	ref := func(key string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}}
	}
	sel := map[string]string{"app": "app"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Env: []corev1.EnvVar{
						{Name: "DB_USERNAME", ValueFrom: ref("username")}, {Name: "DB_PASSWORD", ValueFrom: ref("password")},
					}}},
					NodeSelector: map[string]string{"type": "kwok"},
					Tolerations:  []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
				},
			},
		},
	}
}

// runbookProcedure is the runbook's "Rotate Database Password", as written:
// ALTER USER with the password in clear text, a "-new" Secret, a patch and
// a rollout restart.
func runbookProcedure(ctx context.Context, s *dbScenario) error {
	old, err := s.e.kube.CoreV1().Secrets(s.ns).Get(ctx, s.secret, metav1.GetOptions{})
	if err != nil {
		return err
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	newPW := base64.StdEncoding.EncodeToString(b) // openssl rand -base64 32
	psql := exec.CommandContext(ctx, "psql", "-h", "127.0.0.1", "-U", s.user, "-d", "postgres",
		"-c", fmt.Sprintf("ALTER USER %s WITH PASSWORD '%s';", s.user, newPW))
	psql.Env = append(os.Environ(), "PGPASSWORD="+string(old.Data["password"]))
	if out, err := psql.CombinedOutput(); err != nil {
		return fmt.Errorf("psql ALTER USER: %v: %s", err, out)
	}
	newName := s.secret + "-new"
	if err := s.e.kubectlRun(ctx, "create", "secret", "generic", newName, "--from-literal=username="+s.user,
		"--from-literal=password="+newPW, "-n", s.ns); err != nil {
		return err
	}
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[`+
		`{"name":"DB_USERNAME","valueFrom":{"secretKeyRef":{"name":%q,"key":"username"}}},`+
		`{"name":"DB_PASSWORD","valueFrom":{"secretKeyRef":{"name":%q,"key":"password"}}}]}]}}}}`, newName, newName)
	if err := s.e.kubectlRun(ctx, "patch", "deployment", "app", "-n", s.ns, "-p", patch); err != nil {
		return err
	}
	if err := s.e.kubectlRun(ctx, "rollout", "restart", "deployment/app", "-n", s.ns); err != nil {
		return err
	}
	return s.e.kubectlRun(ctx, "rollout", "status", "deployment/app", "-n", s.ns, "--timeout=5m")
}

// rotatorProcedure starts a rotation with the CLI and waits until it is in
// grace: the new Secret is then live in every pod.
func rotatorProcedure(ctx context.Context, s *dbScenario) error {
	if _, err := s.starter(ctx, "rotate", s.target, "--by", "bench"); err != nil {
		return err
	}
	_, err := s.starter(ctx, "wait", s.target, "--step", string(workflows.StepGrace), "--timeout", "5m")
	return err
}

func (s *dbScenario) starter(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "bin/starter", append([]string{"--catalog", s.catalogPath, "--task-queue", s.taskQueue}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("starter %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (e *env) kubectlRun(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, e.kubectl, args...).CombinedOutput()
	if err != nil {
		// kubectl echoes its arguments in some errors; a bench value is no
		// production secret, but keep the output out of the error anyway.
		return fmt.Errorf("kubectl %s: %v (%d bytes of output)", args[0], err, len(out))
	}
	return nil
}
