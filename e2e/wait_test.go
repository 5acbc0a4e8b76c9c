package e2e

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"rotator/workflows"
)

// waitProbeFail fails with a message that, with payload encryption on,
// travels encrypted: the history event only says "Encoded failure".
func waitProbeFail(_ workflow.Context, marker string) error {
	return temporal.NewNonRetryableApplicationError("probe failure "+marker, "WaitProbe", nil)
}

// TestWaitDecodesFailures: `starter wait` on a rotation that failed, with the
// codec on, reports the decoded failure message, not "Encoded failure".
func TestWaitDecodesFailures(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	key, _, cfg, tc := codecWorker(t, "e2e-wait-", slog.LevelInfo, func(w worker.Worker) {
		w.RegisterWorkflowWithOptions(waitProbeFail, workflow.RegisterOptions{Name: "WaitProbeFail"})
	})

	target := "e2e-wait-" + randomSuffix()
	marker := "marker-" + randomSuffix()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WorkflowID(target), TaskQueue: cfg.TaskQueue}, "WaitProbeFail", marker)
	if err != nil {
		t.Fatal(err)
	}
	var wee *temporal.WorkflowExecutionError
	if err := run.Get(ctx, nil); !errors.As(err, &wee) {
		t.Fatalf("the probe should fail, got %v", err)
	}

	keys := filepath.Join(t.TempDir(), "codec-keys")
	if err := os.WriteFile(keys, []byte(key.Line()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Any catalog will do: wait reads only the history.
	cat := filepath.Join(t.TempDir(), "rotator.yaml")
	if err := os.WriteFile(cat, []byte("targets: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, devstack.starter, "--catalog", cat, "--task-queue", cfg.TaskQueue, "wait", target, "--timeout", "30s")
	cmd.Env = append(withoutCodecEnv(devstack.env), "ROTATOR_CODEC_KEYS_FILE="+keys)
	raw, err := cmd.CombinedOutput()
	out := string(raw)
	if err == nil {
		t.Fatalf("wait on a failed rotation must fail; output:\n%s", out)
	}
	if !strings.Contains(out, "probe failure "+marker) || strings.Contains(out, "Encoded failure") {
		t.Fatalf("wait should print the decoded failure %q; output:\n%s", "probe failure "+marker, out)
	}
}

// withoutCodecEnv drops the codec variables, so that the test's keyring is
// the only one.
func withoutCodecEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "ROTATOR_CODEC_KEYS") {
			out = append(out, kv)
		}
	}
	return out
}
