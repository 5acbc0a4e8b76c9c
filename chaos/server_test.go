package chaos

import (
	"context"
	"io"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"rotator/clients"
	"rotator/internal/devtemporal"
	"rotator/workflows"
)

// TestTemporalServerRestart stops the Temporal server while a JWT rotation
// is in grace, with SIGTERM and then, for a second rotation, SIGKILL;
// restarts it on the same database file; approves; and checks that each
// rotation completes with the old Secret gone and the consumer on the new
// one. The worker keeps running through the outage.
func TestTemporalServerRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv := devtemporal.StartForTest(t, ctx)
	address := srv.Address()
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
		stopped, err := srv.Signal(sig)
		if err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(srv.DB); err != nil {
			t.Fatalf("the database file is gone after %s: %v", name, err)
		}
		ready, err := srv.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
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
