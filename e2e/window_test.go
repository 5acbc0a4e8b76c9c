package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"rotator/workflows"
)

// TestRotationWaitsForItsWindow: a target whose window opens in two hours
// stages its new version now and waits in awaiting-window, the Deployment
// untouched, `starter status` saying until when; an abort then deletes
// what was staged. kwok would roll out at any hour: the wait is rotator's.
func TestRotationWaitsForItsWindow(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	now := time.Now().UTC()
	start, end := now.Add(2*time.Hour).Format("15:04"), now.Add(3*time.Hour).Format("15:04")
	f := newFixture(t, ctx, fmt.Sprintf("    window: {start: '%s', end: '%s', timeZone: UTC}\n", start, end),
		deployment("api", 1, envRef("app-jwt")))
	f.rotate(ctx)
	waitForStep(t, ctx, f, workflows.StepAwaitWindow)

	st := f.status(ctx)
	if st.WindowOpensAt.Before(now.Add(time.Hour)) || st.WindowOpensAt.After(now.Add(2*time.Hour+time.Minute)) {
		t.Errorf("the window opens at %s, want in about two hours", st.WindowOpensAt)
	}
	if _, ok := f.secretData(ctx, f.secret+"-2"); !ok {
		t.Error("stage, which no consumer sees, should run outside the window")
	}
	if n := referencesTo(f.deploymentSpec(ctx, "api"), f.secret); n != 1 || f.replicaSets(ctx, "api") != 1 {
		t.Errorf("the Deployment changed outside the window: %d references to %s, %d ReplicaSets", n, f.secret, f.replicaSets(ctx, "api"))
	}
	out, err := f.starter(ctx, "status", f.target)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	assertEach(t, "status in awaiting-window", out,
		"awaiting-window", "every day "+start+"-"+end+" UTC; opens "+st.WindowOpensAt.Format(time.RFC3339),
		"promote waits for the rotation window", "starter abort "+f.target)

	if out, err := f.starter(ctx, "abort", f.target, "--by", "e2e", "--reason", "release freeze"); err != nil {
		t.Fatalf("abort: %v\n%s", err, out)
	}
	rolledBack(t, ctx, workflows.WorkflowID(f.target))
	if names := f.secretNames(ctx); strings.Join(names, ",") != f.secret {
		t.Errorf("Secrets after the abort: %v, want only %s", names, f.secret)
	}
}
