package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"rotator/clients"
	"rotator/workflows"
)

// scaleRun is N concurrent rotations on one worker process.
type scaleRun struct {
	n int
	// toGrace is from the first start until every rotation is in grace.
	toGrace time.Duration
	// peakRSS is the worker process's VmHWM.
	peakRSS int64
	// eventsToGrace is the history length of one rotation once in grace.
	eventsToGrace int
}

// benchScale rotates N JWT targets, each its own Secret and 1-replica
// Deployment, concurrently on one worker process (bin/worker).
func (e *env) benchScale(ctx context.Context, sizes []int) ([]scaleRun, error) {
	var out []scaleRun
	for _, n := range sizes {
		r, err := e.scaleRun(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("scale %d: %w", n, err)
		}
		e.log.Info("scale benchmark run", "n", n, "to_grace", r.toGrace.Round(time.Millisecond), "peak_rss_mib", r.peakRSS>>20, "events_to_grace", r.eventsToGrace)
		out = append(out, r)
	}
	return out, nil
}

func (e *env) scaleRun(ctx context.Context, n int) (scaleRun, error) {
	r := scaleRun{n: n}
	x := suffix()
	ns, queue := "bench-scale-"+x, "bench-scale-"+x
	k := e.kube
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return r, err
	}
	defer func() { _ = k.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) }()
	var cat strings.Builder
	cat.WriteString("targets:\n")
	err := parallel(n, 16, func(i int) error {
		name := fmt.Sprintf("app-%d", i)
		if _, err := k.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-jwt"},
			StringData: map[string]string{"secret": "initial-" + suffix() + suffix() + suffix()}}, metav1.CreateOptions{}); err != nil {
			return err
		}
		d := consumer(name + "-jwt")
		one := int32(1)
		d.Name, d.Spec.Replicas = name, &one
		d.Spec.Selector.MatchLabels = map[string]string{"app": name}
		d.Spec.Template.Labels = map[string]string{"app": name}
		d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "JWT_SECRET", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name + "-jwt"}, Key: "secret"}}}}
		_, err := k.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return r, err
	}
	for i := range n {
		fmt.Fprintf(&cat, "  - {name: %s-%d, kind: jwt, namespace: %s, secret: app-%d-jwt}\n", ns, i, ns, i)
	}
	if err := e.waitAvailable(ctx, ns, n); err != nil {
		return r, err
	}
	dir, err := os.MkdirTemp("", "rotator-bench")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	catalogPath := filepath.Join(dir, "rotator.yaml")
	if err := os.WriteFile(catalogPath, []byte(cat.String()), 0o600); err != nil {
		return r, err
	}
	logFile, err := os.Create(filepath.Join(dir, "worker.log"))
	if err != nil {
		return r, err
	}
	defer logFile.Close()
	w := exec.CommandContext(ctx, "bin/worker", "--catalog", catalogPath, "--task-queue", queue)
	w.Stdout, w.Stderr = logFile, logFile
	if err := w.Start(); err != nil {
		return r, err
	}
	defer func() { _ = w.Process.Kill(); _ = w.Wait() }()

	start := time.Now()
	err = parallel(n, 32, func(i int) error {
		target := fmt.Sprintf("%s-%d", ns, i)
		_, err := e.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WorkflowID(target), TaskQueue: queue},
			workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, RequestedBy: "bench"})
		return err
	})
	if err != nil {
		return r, err
	}
	query := fmt.Sprintf("RotationStep = 'grace' AND TaskQueue = '%s'", queue)
	for {
		c, err := e.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: clients.TemporalFromEnv().Namespace, Query: query})
		if err != nil {
			return r, err
		}
		if int(c.GetCount()) >= n {
			break
		}
		if time.Since(start) > 15*time.Minute {
			return r, fmt.Errorf("only %d of %d rotations in grace after 15 min", c.GetCount(), n)
		}
		time.Sleep(250 * time.Millisecond)
	}
	r.toGrace = time.Since(start)
	r.peakRSS = peakRSS(w.Process.Pid)
	it := e.temporal.GetWorkflowHistory(ctx, workflows.WorkflowID(ns+"-0"), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		if _, err := it.Next(); err != nil {
			return r, err
		}
		r.eventsToGrace++
	}
	_ = parallel(n, 32, func(i int) error {
		return e.temporal.TerminateWorkflow(ctx, workflows.WorkflowID(fmt.Sprintf("%s-%d", ns, i)), "", "benchmark done")
	})
	return r, nil
}

// waitAvailable waits until n Deployments in the namespace are available.
func (e *env) waitAvailable(ctx context.Context, ns string, n int) error {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		list, err := e.kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		ready := 0
		for _, d := range list.Items {
			if d.Status.AvailableReplicas == 1 && d.Status.ObservedGeneration == d.Generation {
				ready++
			}
		}
		if ready >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d Deployments available after 10 min", ready, n)
		}
		time.Sleep(time.Second)
	}
}

// parallel runs f(0..n-1) with at most width at once.
func parallel(n, width int, f func(i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, width)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				first = cmp.Or(first, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// peakRSS reads a process's peak resident set size (VmHWM) in bytes.
func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
