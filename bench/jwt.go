package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/worker"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"rotator/activities"
	"rotator/catalog"
	"rotator/clients"
	"rotator/workflows"
)

// jwtRun is one JWT rotation, by the runbook or by rotator.
type jwtRun struct {
	// wall is from the start until the new key is live in every pod.
	wall time.Duration
	// rollouts counts the ReplicaSets the rotation created.
	rollouts int
	// requests counts the API requests the procedure made, start to end
	// (for rotator: the whole workflow, retire included).
	requests int
	// rolling is the part of wall during which the consumer was rolling
	// out: from the first change of its template to the end of the
	// rollout of the last one.
	rolling time.Duration
	// events is the rotation's history length (rotator only).
	events int
	// oldTokens is the share of tokens signed before the rotation that a
	// pod still verifies once the new key is live.
	oldTokens float64
	// reference is the Secret the consumer references at the end, and
	// whether that Secret still exists.
	reference string
	exists    bool
}

type jwtProcedure struct {
	name string
	run  func(ctx context.Context, s *jwtScenario) (jwtRun, error)
}

// jwtSet is the runs of both procedures on consumers whose pods become
// Ready readyDelay after they start.
type jwtSet struct {
	readyDelay time.Duration
	runs       map[string][]jwtRun
}

// slowReady is how long the pods of the second JWT comparison take to
// become Ready, as an application with a readiness probe does; kwok's fast
// stages otherwise make pods Ready the moment they are scheduled.
const slowReady = 2 * time.Second

// readyDelayAnnotation is read by the devstack's kwok pod-ready stage.
const readyDelayAnnotation = "pod-ready.stage.kwok.x-k8s.io/delay"

func (e *env) benchJWT(ctx context.Context, runs int, readyDelay time.Duration) (map[string][]jwtRun, error) {
	procs := []jwtProcedure{
		{"runbook (kubectl, as written)", runbookJWT},
		{"rotator (dual-key)", rotatorJWT},
	}
	results := map[string][]jwtRun{}
	for i := range runs {
		for _, p := range procs {
			s, err := e.newJWTScenario(ctx, readyDelay)
			if err != nil {
				return nil, err
			}
			r, err := p.run(ctx, s)
			s.close()
			if err != nil {
				return nil, fmt.Errorf("%s, run %d: %w", p.name, i+1, err)
			}
			e.log.Info("jwt benchmark run", "procedure", p.name, "ready_delay", readyDelay, "run", i+1, "wall", r.wall.Round(time.Millisecond),
				"rolling_out", r.rolling.Round(time.Millisecond),
				"rollouts", r.rollouts, "requests", r.requests, "events", r.events, "old_tokens_valid", r.oldTokens)
			results[p.name] = append(results[p.name], r)
		}
	}
	return results, nil
}

// jwtScenario is a namespace with a JWT Secret and a 3-replica consumer.
type jwtScenario struct {
	e       *env
	ns      string
	secret  string
	tokens  [][]byte
	target  string
	catalog string
}

func (e *env) newJWTScenario(ctx context.Context, readyDelay time.Duration) (*jwtScenario, error) {
	x := suffix()
	s := &jwtScenario{e: e, ns: "bench-jwt-" + x, secret: "app-jwt", target: "bench-jwt-" + x}
	k := e.kube
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	key := make([]byte, 64)
	_, _ = rand.Read(key)
	old := []byte(base64.StdEncoding.EncodeToString(key))
	if _, err := k.CoreV1().Secrets(s.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: s.secret},
		Data: map[string][]byte{"secret": old}}, metav1.CreateOptions{}); err != nil {
		return s, err
	}
	d := consumer(s.secret)
	d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "JWT_SECRET", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: s.secret}, Key: "secret"}}}}
	if readyDelay > 0 {
		d.Spec.Template.Annotations = map[string]string{readyDelayAnnotation: readyDelay.String()}
	}
	if _, err := k.AppsV1().Deployments(s.ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return s, err
	}
	if err := e.kubectlRun(ctx, "-n", s.ns, "rollout", "status", "deployment/app", "--timeout=5m"); err != nil {
		return s, err
	}
	for i := range 100 {
		s.tokens = append(s.tokens, sign(old, fmt.Sprintf(`{"sub":"user-%d"}`, i)))
	}
	return s, nil
}

func (s *jwtScenario) close() {
	_ = s.e.kube.CoreV1().Namespaces().Delete(context.Background(), s.ns, metav1.DeleteOptions{})
	if s.catalog != "" {
		os.RemoveAll(filepath.Dir(s.catalog))
	}
}

// sign makes an HS256 JWT, as the consumer would with its key.
func sign(key []byte, claims string) []byte {
	enc := base64.RawURLEncoding.EncodeToString
	unsigned := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(claims))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(unsigned))
	return []byte(unsigned + "." + enc(m.Sum(nil)))
}

// verifies checks a token with every key a dual-key consumer accepts.
func verifies(token []byte, keys ...[]byte) bool {
	i := bytes.LastIndexByte(token, '.')
	for _, k := range keys {
		if len(k) == 0 {
			continue
		}
		m := hmac.New(sha256.New, k)
		m.Write(token[:i])
		if hmac.Equal([]byte(base64.RawURLEncoding.EncodeToString(m.Sum(nil))), token[i+1:]) {
			return true
		}
	}
	return false
}

// measure reads, once the new key is live, what the consumer's pods see:
// the share of old tokens they still verify, the Secret they reference, and
// the ReplicaSets created since before.
func (s *jwtScenario) measure(ctx context.Context, r *jwtRun, rsBefore int) error {
	d, err := s.e.kube.AppsV1().Deployments(s.ns).Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		return err
	}
	r.reference = d.Spec.Template.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name
	sec, err := s.e.kube.CoreV1().Secrets(s.ns).Get(ctx, r.reference, metav1.GetOptions{})
	if err == nil {
		ok := 0
		for _, t := range s.tokens {
			if verifies(t, sec.Data["secret"], sec.Data[activities.PreviousKey]) {
				ok++
			}
		}
		r.oldTokens = float64(ok) / float64(len(s.tokens))
	}
	rs, err := s.replicaSets(ctx)
	r.rollouts = rs - rsBefore
	return err
}

func (s *jwtScenario) replicaSets(ctx context.Context) (int, error) {
	list, err := s.e.kube.AppsV1().ReplicaSets(s.ns).List(ctx, metav1.ListOptions{LabelSelector: labels.Set{"app": "app"}.String()})
	if err != nil {
		return 0, err
	}
	return len(list.Items), nil
}

// rolloutClock watches the consumer while a procedure runs, to tell the
// time its rollout took from the time the procedure spent around it.
type rolloutClock struct {
	stop   func()
	events chan rolloutEvent
}

// rolloutEvent is the consumer at one watch event: its generation, and
// whether it had rolled that generation out.
type rolloutEvent struct {
	at       time.Time
	gen      int64
	complete bool
}

// watchRollout starts watching the consumer from where it is now.
func (s *jwtScenario) watchRollout(ctx context.Context) (*rolloutClock, error) {
	d, err := s.e.kube.AppsV1().Deployments(s.ns).Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	w, err := s.e.kube.AppsV1().Deployments(s.ns).Watch(wctx, metav1.ListOptions{
		FieldSelector: "metadata.name=app", ResourceVersion: d.ResourceVersion})
	if err != nil {
		cancel()
		return nil, err
	}
	c := &rolloutClock{stop: func() { cancel(); w.Stop() }, events: make(chan rolloutEvent, 1024)}
	c.events <- rolloutEvent{at: time.Now(), gen: d.Generation, complete: true}
	go func() {
		defer close(c.events)
		for ev := range w.ResultChan() {
			if d, ok := ev.Object.(*appsv1.Deployment); ok {
				c.events <- rolloutEvent{at: time.Now(), gen: d.Generation, complete: rolledOut(d)}
			}
		}
	}()
	return c, nil
}

// rolling stops the watch and returns the time from the first template
// change to the completion of the last one's rollout.
func (c *rolloutClock) rolling() time.Duration {
	// The procedure saw the rollout end; the watch may deliver that
	// event a moment later.
	time.Sleep(200 * time.Millisecond)
	c.stop()
	var gen0, last int64
	var changed, done time.Time
	for ev := range c.events {
		switch {
		case gen0 == 0:
			gen0, last = ev.gen, ev.gen
		case ev.gen > last:
			if changed.IsZero() {
				changed = ev.at
			}
			last, done = ev.gen, time.Time{}
		}
		if ev.gen > gen0 && ev.complete && done.IsZero() {
			done = ev.at
		}
	}
	if changed.IsZero() || done.IsZero() {
		return 0
	}
	return done.Sub(changed)
}

// runbookJWT runs the runbook's "Rotate JWT Secret" with kubectl exactly as
// written, counting kubectl's API requests from its -v=6 log.
func runbookJWT(ctx context.Context, s *jwtScenario) (jwtRun, error) {
	var r jwtRun
	before, err := s.replicaSets(ctx)
	if err != nil {
		return r, err
	}
	b := make([]byte, 64)
	_, _ = rand.Read(b)
	newKey := base64.StdEncoding.EncodeToString(b)
	kubectl := func(stdin []byte, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, s.e.kubectl, append([]string{"-v=6"}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &stdout, &stderr
		err := cmd.Run()
		r.requests += strings.Count(stderr.String(), `"Response" verb=`)
		if err != nil {
			return nil, fmt.Errorf("kubectl %s: %v", args[0], err)
		}
		return stdout.Bytes(), nil
	}
	clock, err := s.watchRollout(ctx)
	if err != nil {
		return r, err
	}
	start := time.Now()
	newName := s.secret + "-new"
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"JWT_SECRET","valueFrom":{"secretKeyRef":{"name":%q,"key":"secret"}}}]}]}}}}`, newName)
	steps := [][]string{
		{"create", "secret", "generic", newName, "--from-literal=secret=" + newKey, "-n", s.ns},
		{"patch", "deployment", "app", "-n", s.ns, "-p", patch},
		{"rollout", "restart", "deployment/app", "-n", s.ns},
		{"rollout", "status", "deployment/app", "-n", s.ns, "--timeout=5m"},
	}
	for _, args := range steps {
		if _, err := kubectl(nil, args...); err != nil {
			clock.stop()
			return r, err
		}
	}
	r.wall = time.Since(start)
	r.rolling = clock.rolling()
	if err := s.measure(ctx, &r, before); err != nil {
		return r, err
	}
	// "After grace period (7 days), delete old secret", then "rename".
	if _, err := kubectl(nil, "delete", "secret", s.secret, "-n", s.ns); err != nil {
		return r, err
	}
	y, err := kubectl(nil, "get", "secret", newName, "-n", s.ns, "-o", "yaml")
	if err != nil {
		return r, err
	}
	renamed := bytes.ReplaceAll(y, []byte(newName), []byte(s.secret))
	if _, err := kubectl(renamed, "apply", "-f", "-"); err != nil {
		return r, err
	}
	return r, s.finalReference(ctx, &r)
}

func (s *jwtScenario) finalReference(ctx context.Context, r *jwtRun) error {
	d, err := s.e.kube.AppsV1().Deployments(s.ns).Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		return err
	}
	r.reference = d.Spec.Template.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name
	_, err = s.e.kube.CoreV1().Secrets(s.ns).Get(ctx, r.reference, metav1.GetOptions{})
	r.exists = err == nil
	return nil
}

// countingTransport counts the requests a client sends.
type countingTransport struct {
	n    *atomic.Int64
	next http.RoundTripper
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	n := t.n.Add(1)
	if trace {
		q := ""
		if req.URL.RawQuery != "" {
			q = "?" + req.URL.RawQuery
		}
		slog.Info("kube request", "n", n, "method", req.Method, "path", req.URL.Path+q)
	}
	return t.next.RoundTrip(req)
}

// rotatorJWT rotates with a dual-key target on an in-process worker whose
// Kubernetes client counts its requests, then approves and waits for the
// end, so the count covers the whole rotation.
func rotatorJWT(ctx context.Context, s *jwtScenario) (jwtRun, error) {
	var r jwtRun
	before, err := s.replicaSets(ctx)
	if err != nil {
		return r, err
	}
	cfg, err := clients.KubeConfig(50, 100)
	if err != nil {
		return r, err
	}
	var n atomic.Int64
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingTransport{n: &n, next: rt} })
	kc, err := clients.KubeFor(cfg)
	if err != nil {
		return r, err
	}
	dir, err := os.MkdirTemp("", "rotator-bench")
	if err != nil {
		return r, err
	}
	s.catalog = filepath.Join(dir, "rotator.yaml")
	cat := fmt.Sprintf("targets:\n  - name: %s\n    kind: jwt\n    namespace: %s\n    secret: %s\n    jwt: {dualKey: true}\n", s.target, s.ns, s.secret)
	if err := os.WriteFile(s.catalog, []byte(cat), 0o600); err != nil {
		return r, err
	}
	parsed, err := catalog.Load(s.catalog)
	if err != nil {
		return r, err
	}
	w := worker.New(s.e.temporal, s.target, worker.Options{})
	workflows.Register(w)
	activities.Register(w, activities.Deps{Kube: kc, Catalog: parsed})
	if err := w.Start(); err != nil {
		return r, err
	}
	defer w.Stop()
	starter := func(args ...string) error {
		out, err := exec.CommandContext(ctx, "bin/starter", append([]string{"--catalog", s.catalog, "--task-queue", s.target}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("starter %s: %v: %s", args[0], err, out)
		}
		return nil
	}
	clock, err := s.watchRollout(ctx)
	if err != nil {
		return r, err
	}
	start := time.Now()
	if err := starter("rotate", s.target, "--by", "bench"); err != nil {
		clock.stop()
		return r, err
	}
	if err := starter("wait", s.target, "--step", "grace"); err != nil {
		clock.stop()
		return r, err
	}
	r.wall = time.Since(start)
	r.rolling = clock.rolling()
	if err := s.measure(ctx, &r, before); err != nil {
		return r, err
	}
	if err := starter("approve", s.target, "--by", "bench", "--reason", "bench"); err != nil {
		return r, err
	}
	id := workflows.WorkflowID(s.target)
	if err := s.e.temporal.GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
		return r, err
	}
	r.requests = int(n.Load())
	it := s.e.temporal.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var first time.Time
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return r, err
		}
		r.events++
		if trace {
			t := ev.GetEventTime().AsTime()
			if first.IsZero() {
				first = t
				slog.Info("history", "start_offset", t.Sub(start).Round(time.Millisecond))
			}
			slog.Info("history", "id", ev.GetEventId(), "at", t.Sub(first).Round(time.Millisecond), "type", ev.GetEventType().String())
		}
	}
	return r, s.finalReference(ctx, &r)
}
