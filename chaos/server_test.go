package chaos

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"rotator/clients"
	"rotator/workflows"
)

// temporalServer is a Temporal server of the test's own, run by devstack
// on a SQLite file, so that the test can stop it without touching the
// devstack's.
type temporalServer struct {
	t       *testing.T
	db      string
	port    int
	dir     string
	starts  int
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
}

// freePorts finds a frontend port whose next three (history, matching,
// worker) are free too.
func freePorts(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := ln.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{ln}
		ok := base+3 < 65536
		for p := base + 1; ok && p <= base+3; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, l)
		}
		for _, l := range lns {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no four consecutive free ports")
	return 0
}

// start runs the server and waits until its ready file says it serves.
func (s *temporalServer) start(ctx context.Context) time.Duration {
	s.t.Helper()
	s.starts++
	ready := filepath.Join(s.dir, fmt.Sprintf("ready-%d", s.starts))
	log, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer log.Close()
	began := time.Now()
	s.cmd = exec.Command(filepath.Join(os.Getenv("ROTATOR_DEVSTACK"), "bin", "devstack"), "temporal",
		"--db", s.db, "--frontend-port", strconv.Itoa(s.port), "--http-port", "0", "--ui-port", "0",
		"--ready-file", ready, "--log-level", "warn")
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start Temporal: %v", err)
	}
	done := make(chan struct{})
	s.done = done
	go func() {
		_ = s.cmd.Wait()
		close(done)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(ready); err == nil {
			return time.Since(began)
		}
		select {
		case <-done:
			s.t.Fatalf("Temporal exited before it was ready; its log: %s", s.logPath)
		case <-ctx.Done():
			s.t.Fatalf("Temporal not ready: %v; its log: %s", ctx.Err(), s.logPath)
		case <-tick.C:
		}
	}
}

// signal sends sig to the server and waits for it to exit.
func (s *temporalServer) signal(sig syscall.Signal) time.Duration {
	s.t.Helper()
	began := time.Now()
	_ = syscall.Kill(-s.cmd.Process.Pid, sig)
	select {
	case <-s.done:
	case <-time.After(2 * time.Minute):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
		s.t.Errorf("Temporal did not stop within 2 minutes of %s", sig)
	}
	return time.Since(began)
}

// TestTemporalServerRestart stops the Temporal server while a JWT rotation
// is in grace, with SIGTERM and then, for a second rotation, SIGKILL;
// restarts it on the same database file; approves; and checks that each
// rotation completes with the old Secret gone and the consumer on the new
// one. The worker keeps running through the outage.
func TestTemporalServerRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()
	srv := &temporalServer{t: t, db: filepath.Join(dir, "temporal.db"), port: freePorts(t), dir: dir, logPath: filepath.Join(dir, "temporal.log")}
	t.Cleanup(func() {
		if srv.cmd != nil {
			_ = syscall.Kill(-srv.cmd.Process.Pid, syscall.SIGKILL)
			<-srv.done
		}
	})
	took := srv.start(ctx)
	t.Logf("own Temporal server on 127.0.0.1:%d ready in %s", srv.port, took.Round(100*time.Millisecond))
	address := "127.0.0.1:" + strconv.Itoa(srv.port)
	tc, err := clients.Temporal{Address: address, Namespace: "default"}.Dial(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()

	key0 := randomKey(t)
	tg := newTarget(t, ctx, map[string]string{"secret": key0}, "    kind: jwt\n    key: secret\n", nil)
	ws := newWorkers(t, tg.catalog, tg.taskQueue, false, nil, "TEMPORAL_ADDRESS="+address)
	ws.start()
	wctx, stop := ws.guard(ctx)
	defer stop()
	id := workflows.WorkflowID(tg.name)

	old := tg.secret
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		name := map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL"}[sig]
		rolls := tg.replicaSets(ctx)
		run, err := tc.ExecuteWorkflow(wctx, client.StartWorkflowOptions{ID: id, TaskQueue: tg.taskQueue},
			workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: tg.name, RequestedBy: "chaos"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := waitEvent(wctx, tc, id, "grace", stepReached(workflows.StepGrace)); err != nil {
			t.Fatal(err)
		}
		stopped := srv.signal(sig)
		if _, err := os.Stat(srv.db); err != nil {
			t.Fatalf("the database file is gone after %s: %v", name, err)
		}
		ready := srv.start(ctx)
		began := time.Now()
		if err := tc.SignalWorkflow(wctx, id, "", workflows.SignalApprove, workflows.Decision{By: "chaos", Reason: "after a server restart"}); err != nil {
			t.Fatalf("approve after the restart: %v", err)
		}
		var st workflows.Status
		if err := run.Get(wctx, &st); err != nil {
			t.Fatalf("%s: the rotation did not complete after the restart: %v", name, err)
		}
		if st.Step != workflows.StepDone || st.Approved == nil || st.New == nil {
			t.Fatalf("%s: result %+v", name, st)
		}
		t.Logf("%s in grace: server stopped in %s, ready again in %s; approved, the rotation completed %s later",
			name, stopped.Round(100*time.Millisecond), ready.Round(100*time.Millisecond), time.Since(began).Round(100*time.Millisecond))
		if _, err := devstack.kube.CoreV1().Secrets(tg.ns).Get(ctx, old, metav1.GetOptions{}); err == nil {
			t.Errorf("%s: the old Secret %s survived retire", name, old)
		}
		tg.assertOneLiveVersion(ctx, st.New.Name, rolls)
		old = st.New.Name
	}
	// The worker went through both outages without a restart of its own.
	if ws.started != 1 {
		t.Errorf("%d workers were started, want 1", ws.started)
	}
	select {
	case <-ws.current.done:
		t.Error("the worker exited")
	default:
	}
	live, _ := tg.secretData(ctx, old)
	ws.stopAll()
	ws.assertNoLeaks([]byte(key0), live["secret"])
}
