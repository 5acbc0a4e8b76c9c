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
	"k8s.io/client-go/informers"

	"rotator/activities"
	"rotator/catalog"
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

// loginProcedure is a way to change a database password: the runbook's or
// one of rotator's strategies.
type loginProcedure struct {
	name string
	run  func(ctx context.Context, s *dbScenario) error
}

var server = postgres.Server{Host: "127.0.0.1", Port: 5432, Database: "postgres", SSLMode: "disable"}

// benchLogins rotates a 3-replica consumer's database password while a
// client opens a new connection every 10 ms with the credentials of the
// Secret a running pod references, as the consumer's pods would.
func (e *env) benchLogins(ctx context.Context, runs int) (map[string][]loginRun, error) {
	procs := []loginProcedure{
		{"runbook (psql ALTER USER, -new Secret, patch, rollout restart)", runbookProcedure},
		{"rotator single-user", rotatorProcedure},
		{"rotator alternating-users", rotatorProcedure},
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
	s, err := e.newDBScenario(ctx, strings.HasPrefix(p.name, "rotator alternating"))
	if err != nil {
		return loginRun{}, err
	}
	defer s.close()
	cctx, stop := context.WithCancel(ctx)
	var r loginRun
	var wg sync.WaitGroup
	wg.Go(func() { r.attempts, r.failures = s.loginLoad(cctx) })
	start := time.Now()
	err = p.run(ctx, s)
	r.wall = time.Since(start)
	// A second more of load catches failures right after the rollout.
	time.Sleep(time.Second)
	stop()
	wg.Wait()
	return r, err
}

// dbScenario is a namespace with a role, its Secret and a consumer.
type dbScenario struct {
	e                   *env
	ns, role, secret    string
	catalogPath, target string
	taskQueue           string
	su                  *pgx.Conn
	roles               []string
	worker              worker.Worker
}

func suffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (e *env) newDBScenario(ctx context.Context, alternating bool) (*dbScenario, error) {
	x := suffix()
	s := &dbScenario{e: e, ns: "bench-" + x, role: "bench_" + x, secret: "app-db", target: "bench-" + x, taskQueue: "bench-" + x}
	su, err := postgres.Connect(ctx, server, postgres.Credentials{Username: "postgres", Password: strings.TrimSpace(e.superPW)})
	if err != nil {
		return nil, err
	}
	s.su = su
	pw, err := postgres.NewPassword()
	if err != nil {
		return s, err
	}
	if err := s.createRole(ctx, s.role, pw); err != nil {
		return s, err
	}
	k := e.kube
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}, metav1.CreateOptions{}); err != nil {
		return s, err
	}
	secrets := []*corev1.Secret{{ObjectMeta: metav1.ObjectMeta{Name: s.secret}, StringData: map[string]string{"username": s.role, "password": pw}}}
	pgConfig := fmt.Sprintf("      role: %s\n", s.role)
	if alternating {
		admin, err := k.CoreV1().Secrets("rotator").Get(ctx, "rotator-postgres-admin", metav1.GetOptions{})
		if err != nil {
			return s, err
		}
		secrets = append(secrets, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pg-admin"}, Data: admin.Data})
		pgConfig += fmt.Sprintf("      strategy: alternating-users\n      adminSecret: {namespace: %s, name: pg-admin}\n", s.ns)
		s.roles = append(s.roles, s.role+"_a", s.role+"_b")
	}
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
	cat := fmt.Sprintf("targets:\n  - name: %s\n    kind: postgres\n    namespace: %s\n    secret: %s\n    postgres:\n      host: 127.0.0.1\n      database: postgres\n      sslMode: verify-full\n%s",
		s.target, s.ns, s.secret, pgConfig)
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
	if alternating {
		if _, err := s.starter(ctx, "postgres", "setup", s.target); err != nil {
			return s, err
		}
	}
	return s, nil
}

func (s *dbScenario) createRole(ctx context.Context, role, pw string) error {
	s.roles = append(s.roles, role)
	v, err := postgres.Verifier(pw)
	if err != nil {
		return err
	}
	if _, err := s.su.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
		return err
	}
	return postgres.SetPassword(ctx, s.su, role, v, true)
}

func (s *dbScenario) close() {
	ctx := context.Background()
	if s.worker != nil {
		s.worker.Stop()
	}
	_ = s.e.kube.CoreV1().Namespaces().Delete(ctx, s.ns, metav1.DeleteOptions{})
	if s.su != nil {
		for i := len(s.roles) - 1; i >= 0; i-- {
			_, _ = s.su.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{s.roles[i]}.Sanitize())
		}
		s.su.Close(ctx)
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

// loginLoad opens a new connection every 10 ms, round robin over the
// running pods, with the credentials in the Secret that pod references,
// until ctx ends. A Secret that is gone counts as a failed login too.
func (s *dbScenario) loginLoad(ctx context.Context) (attempts, failures int) {
	f := informers.NewSharedInformerFactoryWithOptions(s.e.kube, 0, informers.WithNamespace(s.ns))
	pods, secrets := f.Core().V1().Pods().Lister(), f.Core().V1().Secrets().Lister()
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	defer f.Shutdown()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return attempts, failures
		case <-tick.C:
		}
		list, err := pods.List(labels.SelectorFromSet(labels.Set{"app": "app"}))
		if err != nil {
			continue
		}
		var running []*corev1.Pod
		for _, p := range list {
			if p.Status.Phase == corev1.PodRunning {
				running = append(running, p)
			}
		}
		if len(running) == 0 {
			continue
		}
		pod := running[i%len(running)]
		attempts++
		name := secretOf(pod)
		sec, err := secrets.Secrets(s.ns).Get(name)
		if err != nil {
			failures++
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = postgres.CanLogin(lctx, server, postgres.Credentials{Username: string(sec.Data["username"]), Password: string(sec.Data["password"])})
		cancel()
		if err != nil && ctx.Err() == nil {
			failures++
		}
	}
}

func secretOf(p *corev1.Pod) string {
	for _, e := range p.Spec.Containers[0].Env {
		if e.Name == "DB_PASSWORD" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			return e.ValueFrom.SecretKeyRef.Name
		}
	}
	return ""
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
	psql := exec.CommandContext(ctx, "psql", "-h", "127.0.0.1", "-U", s.role, "-d", "postgres",
		"-c", fmt.Sprintf("ALTER USER %s WITH PASSWORD '%s';", s.role, newPW))
	psql.Env = append(os.Environ(), "PGPASSWORD="+string(old.Data["password"]))
	if out, err := psql.CombinedOutput(); err != nil {
		return fmt.Errorf("psql ALTER USER: %v: %s", err, out)
	}
	newName := s.secret + "-new"
	if err := s.e.kubectlRun(ctx, "create", "secret", "generic", newName, "--from-literal=username="+s.role,
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
