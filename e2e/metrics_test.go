package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"rotator/workflows"
)

// TestWorkerMetricsEndToEnd runs the real worker binary against the
// devstack, on a task queue of its own: it must become ready, show a
// rotation's grace on /metrics while it is in grace, alongside the SDK's
// own metrics, and stop cleanly on SIGTERM; a second worker started
// during grace must show that grace too (read back from Temporal), and
// the success once approved.
func TestWorkerMetricsEndToEnd(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := newFixture(t, ctx, "    grace: 2h\n", deployment("api", 1, envRef("app-jwt")))
	queue := f.taskQueue + "-bin"
	oldData, _ := f.secretData(ctx, f.secret)
	devstack.remember(oldData["secret"])
	bin := buildWorker(t, ctx)
	w := startWorkerBinary(t, bin, f.catalog, queue)
	target := map[string]string{"target": f.target, "kind": "jwt"}

	w.waitReady(t, ctx)
	m := w.scrape(t, ctx)
	if v, ok := sample(m, "rotator_target_rotation_interval_seconds", target); !ok || v != (90*24*time.Hour).Seconds() {
		t.Errorf("interval of %s = %v (present %t), want the jwt default of 90 days", f.target, v, ok)
	}
	if v, ok := sample(m, "rotator_target_grace_seconds", target); !ok || v != (2*time.Hour).Seconds() {
		t.Errorf("grace of %s = %v (present %t), want the catalog's 2h", f.target, v, ok)
	}

	if out, err := devstack.runStarter(ctx, f.catalog, queue, "rotate", f.target, "--by", "e2e"); err != nil {
		t.Fatalf("starter rotate: %v\n%s", err, out)
	}
	waitForStep(t, ctx, f, workflows.StepGrace)
	st := status(t, ctx, f)
	// The worker's logs join the leak scan: neither key may be in them.
	newData, ok := f.secretData(ctx, st.New.Name)
	if !ok {
		t.Fatalf("new Secret %s not found", st.New.Name)
	}
	devstack.remember(newData["secret"])

	m = w.scrape(t, ctx)
	// The workflow's own series carry the SDK's labels, the task queue
	// among them; the grace watcher's carry target and kind only.
	recorded := map[string]string{"target": f.target, "kind": "jwt", "task_queue": queue}
	deadline := float64(st.GraceDeadline.UnixMilli()) / 1000
	if v, ok := sample(m, "rotator_rotation_grace_deadline_timestamp_seconds", recorded); !ok || v != deadline {
		t.Errorf("grace deadline gauge = %v (present %t), want the status' %s", v, ok, st.GraceDeadline)
	}
	if started, ok := sample(m, "rotator_rotation_grace_started_timestamp_seconds", recorded); !ok || started <= 0 || deadline-started != (2*time.Hour).Seconds() {
		t.Errorf("grace started gauge = %v (present %t), want 2h before the deadline %v", started, ok, deadline)
	}
	if v, ok := sample(m, "rotator_rotation_last_success_timestamp_seconds", target); ok && v > 0 {
		t.Errorf("last success is %v while the first rotation is in grace", v)
	}
	// The SDK's own metrics, through the same handler: this worker's
	// pollers and the workflow tasks it completed on its queue.
	if v, ok := sample(m, "temporal_num_pollers", map[string]string{"task_queue": queue, "poller_type": "workflow_task"}); !ok || v < 1 {
		t.Errorf("temporal_num_pollers for %s = %v (present %t), want at least 1", queue, v, ok)
	}
	if v, ok := sample(m, "temporal_workflow_task_execution_latency_seconds", map[string]string{"task_queue": queue, "workflow_type": workflows.TypeRotateJWTSecret}); !ok || v < 1 {
		t.Errorf("temporal_workflow_task_execution_latency_seconds count = %v (present %t), want workflow tasks of %s", v, ok, workflows.TypeRotateJWTSecret)
	}

	// A restart in grace: the new worker has not run the grace step, and
	// must still show it, from visibility and the status query.
	w.stop(t)
	w = startWorkerBinary(t, bin, f.catalog, queue)
	w.waitReady(t, ctx)
	w.waitFor(t, ctx, "the grace deadline after a restart", func(m map[string]*dto.MetricFamily) bool {
		return slices.Contains(samples(m, "rotator_rotation_grace_deadline_timestamp_seconds", target), deadline)
	})

	if out, err := f.starter(ctx, "approve", f.target, "--by", "e2e", "--reason", "e2e"); err != nil {
		t.Fatalf("starter approve: %v\n%s", err, out)
	}
	waitForStep(t, ctx, f, workflows.StepDone)
	st = status(t, ctx, f)
	m = w.scrape(t, ctx)
	if v, ok := sample(m, "rotator_rotation_last_success_timestamp_seconds", target); !ok || v != float64(st.FinishedAt.UnixMilli())/1000 {
		t.Errorf("last success = %v (present %t), want the finish time %s", v, ok, st.FinishedAt)
	}
	// The workflow clears its series at once, the watcher at its next pass.
	w.waitFor(t, ctx, "every grace deadline series back to 0", func(m map[string]*dto.MetricFamily) bool {
		vs := samples(m, "rotator_rotation_grace_deadline_timestamp_seconds", target)
		return len(vs) > 0 && !slices.ContainsFunc(vs, func(v float64) bool { return v != 0 })
	})
	if v, ok := sample(m, "rotator_rotations_completed_total", map[string]string{"kind": "jwt", "task_queue": queue}); !ok || v != 1 {
		t.Errorf("rotator_rotations_completed_total on %s = %v (present %t), want 1", queue, v, ok)
	}

	w.stop(t)
}

// workerProcess is bin/worker running under a test.
type workerProcess struct {
	cmd  *exec.Cmd
	base string
	done chan error
}

// buildWorker builds bin/worker into a temporary folder.
func buildWorker(t *testing.T, ctx context.Context) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "worker")
	if out, err := goBuild(ctx, bin, "rotator/worker").CombinedOutput(); err != nil {
		t.Fatalf("build worker: %v\n%s", err, out)
	}
	return bin
}

// startWorkerBinary starts the worker on queue with the catalog and the
// devstack's environment (env goes over it), and reads from its log where
// it serves HTTP.
// Its logs join the in-process workers' for the leak scan.
func startWorkerBinary(t *testing.T, bin, catalogPath, queue string, env ...string) *workerProcess {
	t.Helper()
	cmd := exec.Command(bin, "--catalog", catalogPath, "--task-queue", queue, "--http-address", "127.0.0.1:0", "--grace-refresh", "2s")
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &workerProcess{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = devstack.logs.Write(append(append([]byte{}, line...), '\n'))
			var entry struct {
				Msg     string `json:"msg"`
				Address string `json:"address"`
			}
			if json.Unmarshal(line, &entry) == nil && entry.Msg == "serving health and metrics" {
				addr <- entry.Address
			}
		}
		w.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	select {
	case a := <-addr:
		w.base = "http://" + a
	case err := <-w.done:
		t.Fatalf("worker exited before serving HTTP: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("worker did not log its HTTP address within a minute")
	}
	return w
}

func (w *workerProcess) get(ctx context.Context, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.base+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitReady polls /readyz until it answers 200; /healthz must answer
// 200 throughout.
func (w *workerProcess) waitReady(t *testing.T, ctx context.Context) {
	t.Helper()
	for {
		if code, body, err := w.get(ctx, "/healthz"); err != nil || code != http.StatusOK {
			t.Fatalf("/healthz = %d %q, %v", code, body, err)
		}
		code, body, err := w.get(ctx, "/readyz")
		if err == nil && code == http.StatusOK {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("worker never became ready: last /readyz %d %q, %v", code, body, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (w *workerProcess) scrape(t *testing.T, ctx context.Context) map[string]*dto.MetricFamily {
	t.Helper()
	code, body, err := w.get(ctx, "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/metrics = %d, %v", code, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	m, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return m
}

// stop sends SIGTERM and wants a clean exit.
func (w *workerProcess) stop(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-w.done:
		if err != nil {
			t.Errorf("worker exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(time.Minute):
		t.Error("worker did not stop within a minute of SIGTERM")
	}
}

// waitFor scrapes until ok holds, or fails the test when ctx ends.
func (w *workerProcess) waitFor(t *testing.T, ctx context.Context, what string, ok func(map[string]*dto.MetricFamily) bool) {
	t.Helper()
	for !ok(w.scrape(t, ctx)) {
		select {
		case <-ctx.Done():
			t.Fatalf("/metrics never showed %s", what)
		case <-time.After(time.Second):
		}
	}
}

// samples are the values of every gauge series of name whose labels
// include labels.
func samples(m map[string]*dto.MetricFamily, name string, labels map[string]string) []float64 {
	var vs []float64
	for _, s := range m[name].GetMetric() {
		match := 0
		for _, l := range s.GetLabel() {
			if v, ok := labels[l.GetName()]; ok && v == l.GetValue() {
				match++
			}
		}
		if match == len(labels) {
			vs = append(vs, s.GetGauge().GetValue())
		}
	}
	return vs
}

// sample is the value of the series of name whose labels include labels:
// a gauge's or counter's value, a histogram's count.
func sample(m map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := m[name]
	if !ok {
		return 0, false
	}
	for _, s := range f.GetMetric() {
		match := 0
		for _, l := range s.GetLabel() {
			if v, ok := labels[l.GetName()]; ok && v == l.GetValue() {
				match++
			}
		}
		if match != len(labels) {
			continue
		}
		switch {
		case s.GetGauge() != nil:
			return s.GetGauge().GetValue(), true
		case s.GetCounter() != nil:
			return s.GetCounter().GetValue(), true
		case s.GetHistogram() != nil:
			return float64(s.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// status reads the rotation's status through the status query.
func status(t *testing.T, ctx context.Context, f *fixture) workflows.Status {
	t.Helper()
	st, err := queryStatus(ctx, workflows.WorkflowID(f.target))
	if err != nil {
		t.Fatal(err)
	}
	return st
}
