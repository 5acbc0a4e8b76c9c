package workflows

import (
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
)

// StepSet returns the step a history event published: the RotationStep
// search attribute of an UpsertWorkflowSearchAttributes event. ok is false
// for any other event.
func StepSet(ev *historypb.HistoryEvent) (step Step, ok bool) {
	p := ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()[SearchStep.GetName()]
	if p == nil {
		return "", false
	}
	var s string
	if converter.GetDefaultDataConverter().FromPayload(p, &s) != nil {
		return "", false
	}
	return Step(s), true
}
