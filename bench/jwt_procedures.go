package main

import (
	"bytes"
	"context"
	"crypto/rand"
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

	"rotator/activities"
	"rotator/catalog"
	"rotator/clients"
	"rotator/workflows"
)

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
