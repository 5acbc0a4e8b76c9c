package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"rotator/activities"
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
