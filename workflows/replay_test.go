package workflows_test

import (
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"rotator/workflows"
)

// TestReplayRecordedHistories replays histories recorded from real runs on
// the devstack (make replay-record). A change to a workflow that would break
// rotations in flight fails here; guard it with workflow.GetVersion.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata: run make replay-record")
	}
	r := worker.NewWorkflowReplayer()
	workflows.Register(r)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			file, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()
			h, err := client.HistoryFromJSON(file, client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Events) < 20 {
				t.Fatalf("%s has %d events: not a whole rotation", f, len(h.Events))
			}
			// The workflow checks its own ID, so replay must run under the
			// recorded one, which follows from the input's target.
			var in workflows.RotateInput
			started := h.Events[0].GetWorkflowExecutionStartedEventAttributes()
			if err := converter.GetDefaultDataConverter().FromPayloads(started.GetInput(), &in); err != nil {
				t.Fatal(err)
			}
			err = r.ReplayWorkflowHistoryWithOptions(nil, h, worker.ReplayWorkflowHistoryOptions{
				OriginalExecution: workflow.Execution{ID: workflows.WorkflowID(in.Target), RunID: started.GetOriginalExecutionRunId()},
			})
			if err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}
