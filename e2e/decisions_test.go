package e2e

import (
	"context"
	"testing"
	"time"

	"rotator/workflows"
)

// TestApproveWithNoWorkerSaysSo: with the worker stopped, `starter approve`
// says within seconds that no worker takes the decision, names the task
// queue, gives up at --timeout saying where the decision is, and a worker
// that comes back applies it, as the message promises.
func TestApproveWithNoWorkerSaysSo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	f := newFixture(t, ctx, "", deployment("api", 1, envRef("app-jwt")))
	f.rotate(ctx)
	waitForStep(t, ctx, f, workflows.StepGrace)
	f.worker.Stop()

	// The CLI gets a minute of its own: without --timeout it would wait
	// two, and a hang shows up as a kill, not as the message below.
	cctx, ccancel := context.WithTimeout(ctx, time.Minute)
	defer ccancel()
	out, err := f.starter(cctx, "approve", f.target, "--by", "alice", "--reason", "no worker", "--timeout", "12s")
	if err == nil {
		t.Fatalf("approve with no worker should give up at --timeout, got success:\n%s", out)
	}
	assertEach(t, "approve with no worker", out,
		"no worker has taken the approve in 5s",
		"task queue "+f.taskQueue+":",
		"a worker that starts polling "+f.taskQueue+" applies it",
		"no worker answered within 12s (--timeout)",
		"starter status "+f.target)

	f.startWorker()
	st := f.waitStatus(ctx, "the approve taken by the worker that came back", func(st workflows.Status) bool {
		return st.Approved != nil
	})
	if st.Approved.By != "alice" {
		t.Errorf("approval by %q, want alice", st.Approved.By)
	}
	if err := f.result(ctx); err != nil {
		t.Fatalf("the approved rotation should finish: %v", err)
	}
}
