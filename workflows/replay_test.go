package workflows_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"rotator/workflows"
)

// minEvents is how many events a whole run of each workflow type has at
// least; a rotation passes through every step.
var minEvents = map[string]int{
	workflows.TypeScheduledRotation: 8,  // start, child started or refused, complete
	workflows.TypeCertificateScan:   10, // start, scan activity, complete
}

// TestReplayRecordedHistories replays histories recorded from real runs on
// the devstack (make replay-record). A change to a workflow that would break
// runs in flight fails here; guard it with workflow.GetVersion.
//
// Replay must run under the recorded workflow ID (a rotation checks its
// own), which a history does not hold: <name>.id beside <name>.json gives
// it. Without one the history must be a rotation, whose ID follows from its
// input's target (the files recorded before the .id files).
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
			started := h.Events[0].GetWorkflowExecutionStartedEventAttributes()
			wfType := started.GetWorkflowType().GetName()
			least, ok := minEvents[wfType]
			if !ok {
				least = 20
			}
			if len(h.Events) < least {
				t.Fatalf("%s (%s) has %d events: not a whole run", f, wfType, len(h.Events))
			}
			if !closed(h.Events[len(h.Events)-1]) {
				t.Fatalf("%s (%s) ends with %s: record a run that has ended", f, wfType, h.Events[len(h.Events)-1].GetEventType())
			}
			id := recordedID(t, f, started)
			err = r.ReplayWorkflowHistoryWithOptions(nil, h, worker.ReplayWorkflowHistoryOptions{
				OriginalExecution: workflow.Execution{ID: id, RunID: started.GetOriginalExecutionRunId()},
			})
			if err != nil {
				t.Fatalf("replay %s (%s as %s): %v", f, wfType, id, err)
			}
		})
	}
}

// recordedID is the workflow ID in <name>.id, or for a rotation recorded
// without one, rotate/<target>.
func recordedID(t *testing.T, f string, started *historypb.WorkflowExecutionStartedEventAttributes) string {
	t.Helper()
	b, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".id")
	if err == nil {
		id := strings.TrimSpace(string(b))
		if id == "" {
			t.Fatalf("%s.id is empty", strings.TrimSuffix(f, ".json"))
		}
		return id
	}
	if !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var in workflows.RotateInput
	if err := converter.GetDefaultDataConverter().FromPayloads(started.GetInput(), &in); err != nil || in.Target == "" {
		t.Fatalf("%s: no %s.id beside it and its input is not a rotation's (%v): record it with make replay-record",
			f, strings.TrimSuffix(filepath.Base(f), ".json"), err)
	}
	return workflows.WorkflowID(in.Target)
}

func closed(ev *historypb.HistoryEvent) bool {
	switch ev.GetEventType() {
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
		return true
	}
	return false
}
