package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

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
	// peakAnon is the largest anonymous resident memory (RssAnon)
	// sampled: VmHWM also counts the pages of the worker's binary that
	// were read, which the kernel can drop and reread.
	peakAnon int64
	// peakLive is the largest live heap a garbage collection left, from
	// the worker's GC trace.
	peakLive int64
	// eventsToGrace is the history length of one rotation once in grace.
	eventsToGrace int
	// err is why the run failed, if it did.
	err string
	// inGrace is how many reached grace when the run gave up (timedOut).
	inGrace  int
	timedOut bool
	// cpu is what each process of the stack used until all were in grace.
	cpu []cpuShare
	// steal is the CPU time the hypervisor withheld meanwhile.
	steal time.Duration
	// cluster is how long the same N rollouts take without rotator: each
	// Deployment patched directly, until all are rolled out (zero: not
	// measured). It is the floor the cluster sets.
	cluster time.Duration
}

// scaleOptions are what a scale run varies.
type scaleOptions struct {
	// workerFlags are passed to bin/worker (its options: pollers,
	// concurrency).
	workerFlags []string
	// clusterUpTo is the largest N for which the cluster's own rollout
	// time is measured too.
	clusterUpTo int
}

// benchScale rotates N JWT targets, each its own Secret and 1-replica
// Deployment, concurrently on one worker process (bin/worker).
func (e *env) benchScale(ctx context.Context, sizes []int, o scaleOptions) ([]scaleRun, error) {
	var out []scaleRun
	for _, n := range sizes {
		r, err := e.scaleRun(ctx, n, o)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("scale %d: %w", n, err)
			}
			// One size failing (the cluster's capacity, say) still
			// leaves the other figures worth reporting.
			e.log.Error("scale benchmark run failed", "n", n, "error", err)
			out = append(out, scaleRun{n: n, err: err.Error()})
			continue
		}
		var cpu strings.Builder
		for _, c := range r.cpu {
			fmt.Fprintf(&cpu, " %s=%.1fs", c.name, c.cpu.Seconds())
		}
		e.log.Info("scale benchmark run", "cpu", cpu.String(), "steal", r.steal.Round(100*time.Millisecond), "n", n, "to_grace", r.toGrace.Round(time.Millisecond), "peak_rss_mib", r.peakRSS>>20, "peak_anon_mib", r.peakAnon>>20, "peak_live_heap_mib", r.peakLive>>20,
			"events_to_grace", r.eventsToGrace, "cluster_alone", r.cluster.Round(time.Millisecond))
		out = append(out, r)
	}
	return out, nil
}

func (e *env) scaleRun(ctx context.Context, n int, o scaleOptions) (scaleRun, error) {
	r := scaleRun{n: n}
	x := suffix()
	ns, queue := "bench-scale-"+x, "bench-scale-"+x
	k := e.kube
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return r, err
	}
	// The next run waits until this namespace is gone: deleting N
	// Deployments, ReplicaSets and pods keeps the cluster busy for
	// minutes, which would count against that run.
	defer e.deleteNamespace(ns)
	// The devstack's two kwok nodes hold 110 pods each, too few for N
	// Deployments and their rollouts' surge pods: the run brings its own
	// fake node, tainted so that only its pods land there, and deletes it
	// afterwards (after the namespace, since the node deletion takes the
	// pods with it).
	node, err := e.benchNode(ctx, ns, 2*n+10)
	if err != nil {
		return r, err
	}
	defer func() { _ = k.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{}) }()
	var cat strings.Builder
	cat.WriteString("targets:\n")
	err = parallel(n, 16, func(i int) error {
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
		d.Spec.Template.Spec.NodeSelector = map[string]string{benchNodeLabel: ns}
		d.Spec.Template.Spec.Tolerations = append(d.Spec.Template.Spec.Tolerations,
			corev1.Toleration{Key: benchNodeLabel, Operator: corev1.TolerationOpEqual, Value: ns, Effect: corev1.TaintEffectNoSchedule})
		d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "JWT_SECRET", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name + "-jwt"}, Key: "secret"}}}}
		_, err := k.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return r, err
	}
	// Each target names its consumer, as a catalog for a fleet would:
	// discovery would list every Deployment of this one shared namespace
	// for each rotation, N² objects in all, which is this benchmark's
	// layout, not a rotation's cost.
	for i := range n {
		fmt.Fprintf(&cat, "  - {name: %s-%d, kind: jwt, namespace: %s, secret: app-%d-jwt, consumers: [{kind: Deployment, name: app-%d}]}\n", ns, i, ns, i, i)
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
	// Port 0: the worker's probes and metrics must not collide with a
	// worker already running on this machine.
	w := exec.CommandContext(ctx, "bin/worker", append([]string{"--catalog", catalogPath, "--task-queue", queue, "--http-address", "127.0.0.1:0"},
		o.workerFlags...)...)
	w.Stdout, w.Stderr = logFile, logFile
	// The worker runs as deploy/base runs it: GOMEMLIMIT from its memory
	// limit, 256Mi, and GOGC 50. The GC trace gives the live heap, the
	// margin to it.
	w.Env = append(os.Environ(), "GOMEMLIMIT="+workerMemoryLimit, "GOGC="+workerGOGC, "GODEBUG=gctrace=1")
	if err := w.Start(); err != nil {
		return r, err
	}
	defer func() { _ = w.Process.Kill(); _ = w.Wait() }()

	anon := sampleAnon(ctx, w.Process.Pid)
	procs := processes(map[string]int{"worker": w.Process.Pid})
	cpuBefore, stealBefore := cpuTimes(procs), stolen()
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
	if trace {
		tctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go e.traceSteps(tctx, queue, start)
	}
	// The count only says when to stop waiting: it is a scan of the
	// visibility table, which the server updates after the fact, so it is
	// asked seldom (at one count a second it took 8 % of the server's CPU
	// at N=1000) and the time is read from the histories afterwards.
	for {
		c, err := e.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: clients.TemporalFromEnv().NamespaceName(), Query: query})
		if err != nil {
			return r, err
		}
		if int(c.GetCount()) >= n {
			break
		}
		if time.Since(start) > 15*time.Minute {
			// Reported as such rather than failing the whole benchmark.
			r.inGrace, r.timedOut = int(c.GetCount()), true
			break
		}
		time.Sleep(3 * time.Second)
	}
	r.cpu, r.steal = cpuUsed(cpuBefore, cpuTimes(procs)), stolen()-stealBefore
	r.peakRSS = procStatus(w.Process.Pid, "VmHWM")
	r.peakAnon = anon()
	if r.peakLive, err = peakLiveHeap(logFile.Name()); err != nil {
		return r, err
	}
	r.toGrace = time.Since(start)
	if !r.timedOut {
		// Each history records when its rotation entered grace, as the
		// server saw the workflow task complete.
		var mu sync.Mutex
		var last time.Time
		err = parallel(n, 16, func(i int) error {
			at, events, err := e.graceAt(ctx, workflows.WorkflowID(fmt.Sprintf("%s-%d", ns, i)))
			mu.Lock()
			defer mu.Unlock()
			if at.After(last) {
				last = at
			}
			if i == 0 {
				r.eventsToGrace = events
			}
			return err
		})
		if err != nil {
			return r, err
		}
		r.toGrace = last.Sub(start)
	}
	_ = parallel(n, 32, func(i int) error {
		return e.temporal.TerminateWorkflow(ctx, workflows.WorkflowID(fmt.Sprintf("%s-%d", ns, i)), "", "benchmark done")
	})
	if n <= o.clusterUpTo {
		if err := e.waitAvailable(ctx, ns, n); err != nil {
			return r, err
		}
		if r.cluster, err = e.clusterAlone(ctx, ns, n); err != nil {
			return r, err
		}
	}
	return r, nil
}

// graceAt reads a rotation's history up to the step grace: when the server
// recorded it, and how many events came until then.
func (e *env) graceAt(ctx context.Context, id string) (time.Time, int, error) {
	it := e.temporal.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	events := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return time.Time{}, 0, fmt.Errorf("history of %s: %w", id, err)
		}
		events++
		if step, ok := workflows.StepSet(ev); ok && step == workflows.StepGrace {
			// The events of the same workflow task (the grace timer) count too.
			for it.HasNext() {
				next, err := it.Next()
				if err != nil || next.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED {
					break
				}
				events++
			}
			return ev.GetEventTime().AsTime(), events, nil
		}
	}
	return time.Time{}, 0, fmt.Errorf("history of %s has no step grace", id)
}

// deleteNamespace deletes a run's namespace and waits, for up to ten
// minutes, until the cluster has removed everything in it.
func (e *env) deleteNamespace(ns string) {
	ctx := context.Background()
	if err := e.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		e.log.Warn("delete scale namespace", "namespace", ns, "error", err)
		return
	}
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		if _, err := e.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return
		}
	}
	e.log.Warn("scale namespace still terminating after 10 min; the next run may be slower", "namespace", ns)
}

// clusterAlone patches the N Deployments directly, as fast as rotator's
// client may (same parallelism), and times until all have rolled out:
// what the cluster needs for N rollouts, with no rotation around them.
func (e *env) clusterAlone(ctx context.Context, ns string, n int) (time.Duration, error) {
	start := time.Now()
	patch := []byte(`{"spec":{"template":{"metadata":{"annotations":{"bench/cluster-alone":"` + suffix() + `"}}}}}`)
	err := parallel(n, 32, func(i int) error {
		_, err := e.kube.AppsV1().Deployments(ns).Patch(ctx, fmt.Sprintf("app-%d", i), types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
	if err != nil {
		return 0, err
	}
	if err := e.waitRolledOut(ctx, ns, n); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// traceSteps logs every two seconds how many rotations of the queue are in
// each step, to see where a scale run spends its time.
func (e *env) traceSteps(ctx context.Context, queue string, start time.Time) {
	ns := clients.TemporalFromEnv().NamespaceName()
	for ctx.Err() == nil {
		var b strings.Builder
		for _, step := range []workflows.Step{workflows.StepPreflight, workflows.StepStage, workflows.StepPromote, workflows.StepVerify, workflows.StepGrace} {
			c, err := e.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: ns,
				Query: fmt.Sprintf("RotationStep = '%s' AND TaskQueue = '%s'", step, queue)})
			if err != nil {
				return
			}
			fmt.Fprintf(&b, " %s=%d", step, c.GetCount())
		}
		e.log.Info("scale progress", "at", time.Since(start).Round(time.Second), "steps", b.String())
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}
