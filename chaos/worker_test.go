package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"rotator/internal/leakscan"
)

// workerProc is one bin/worker process.
type workerProc struct {
	cmd   *exec.Cmd
	proxy *kubeProxy // nil when the worker talks to the API server directly
	done  chan struct{}
	// ended is set before the test kills or stops the worker: any other
	// exit is a failure.
	ended atomic.Bool
}

// identity is how the worker names itself to Temporal: the SDK's default
// identity starts with the process ID.
func (w *workerProc) identity() string { return fmt.Sprintf("%d@", w.cmd.Process.Pid) }

func (w *workerProc) pid() int { return w.cmd.Process.Pid }

// workers starts and kills one target's worker processes, one at a time,
// all on the same catalog and task queue, all logging into one file.
type workers struct {
	t         *testing.T
	catalog   string
	taskQueue string
	env       []string
	// proxied workers reach the API server through a kubeProxy of their
	// own, which consults gates.
	proxied bool
	gates   []*gate
	logPath string
	started int
	current *workerProc
	// died is closed when a worker exits without being killed or stopped.
	died     chan struct{}
	diedOnce sync.Once
}

func newWorkers(t *testing.T, catalog, taskQueue string, proxied bool, gates []*gate, env ...string) *workers {
	ws := &workers{t: t, catalog: catalog, taskQueue: taskQueue, env: env, proxied: proxied, gates: gates,
		logPath: filepath.Join(t.TempDir(), "worker.log"), died: make(chan struct{})}
	t.Cleanup(func() {
		if ws.current != nil {
			ws.current.kill()
		}
	})
	return ws
}

// start runs a new worker; the previous one must be gone.
func (ws *workers) start() *workerProc {
	ws.t.Helper()
	ws.started++
	log, err := os.OpenFile(ws.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		ws.t.Fatal(err)
	}
	defer log.Close()
	w := &workerProc{done: make(chan struct{})}
	env := append(os.Environ(), "ROTATOR_TASK_QUEUE="+ws.taskQueue, "ROTATOR_CATALOG="+ws.catalog,
		"ROTATOR_HTTP_ADDRESS=127.0.0.1:0")
	env = append(env, ws.env...)
	if ws.proxied {
		w.proxy, err = startKubeProxy(ws.started, devstack.kubeCfg, ws.t.TempDir(), ws.gates)
		if err != nil {
			ws.t.Fatal(err)
		}
		env = append(env, "KUBECONFIG="+w.proxy.kubeconfig) // the last value of a key wins
	}
	w.cmd = exec.Command(devstack.worker)
	w.cmd.Env = env
	w.cmd.Stdout, w.cmd.Stderr = log, log
	// Its own process group, so the kill reaches everything it started.
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := w.cmd.Start(); err != nil {
		ws.t.Fatalf("start worker: %v", err)
	}
	go func() {
		err := w.cmd.Wait()
		close(w.done)
		if !w.ended.Load() {
			ws.t.Errorf("worker %d exited by itself (%v); its log: %s", w.pid(), err, ws.logPath)
			ws.diedOnce.Do(func() { close(ws.died) })
		}
	}()
	ws.current = w
	return w
}

// kill SIGKILLs the worker's process group and cuts its connections.
func (w *workerProc) kill() {
	w.ended.Store(true)
	_ = syscall.Kill(-w.pid(), syscall.SIGKILL)
	<-w.done
	if w.proxy != nil {
		w.proxy.close()
	}
}

// stop ends the worker as an operator would, with SIGTERM.
func (w *workerProc) stop() {
	w.ended.Store(true)
	_ = syscall.Kill(-w.pid(), syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-w.pid(), syscall.SIGKILL)
		<-w.done
	}
	if w.proxy != nil {
		w.proxy.close()
	}
}

// guard returns a context that ends when a worker dies on its own, so
// that a wait for the rotation fails at once instead of at its deadline.
func (ws *workers) guard(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-ws.died:
			cancel(errors.New("a worker exited by itself"))
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}

// stopAll stops the current worker, leaving the log complete.
func (ws *workers) stopAll() {
	if ws.current != nil {
		ws.current.stop()
		ws.current = nil
	}
}

// assertNoLeaks searches every worker's log for each value in raw, hex
// and base64 form, and fails if the logs are empty (nothing was searched).
func (ws *workers) assertNoLeaks(values ...[]byte) {
	ws.t.Helper()
	logs, err := os.ReadFile(ws.logPath)
	if err != nil {
		ws.t.Fatal(err)
	}
	if len(logs) == 0 || len(values) == 0 {
		ws.t.Fatalf("leak scan: %d bytes of logs, %d values: it would search nothing", len(logs), len(values))
	}
	leaked := 0
	for i, v := range values {
		if len(v) < 16 {
			ws.t.Fatalf("value %d is %d bytes: too short to search for", i, len(v))
		}
		for _, form := range leakscan.Forms(v) {
			if bytes.Contains(logs, form) {
				ws.t.Errorf("the workers' logs contain secret value %d", i)
				leaked++
				break
			}
		}
	}
	ws.t.Logf("leak scan: %d secret values searched in %d bytes of logs of %d workers: %d found", len(values), len(logs), ws.started, leaked)
}
