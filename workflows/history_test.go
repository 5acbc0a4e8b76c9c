package workflows_test

import (
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"

	"rotator/workflows"
)

func TestStepSet(t *testing.T) {
	upsert := func(fields map[string]string) *historypb.HistoryEvent {
		indexed := map[string]*commonpb.Payload{}
		for k, v := range fields {
			p, err := converter.GetDefaultDataConverter().ToPayload(v)
			if err != nil {
				t.Fatal(err)
			}
			indexed[k] = p
		}
		return &historypb.HistoryEvent{Attributes: &historypb.HistoryEvent_UpsertWorkflowSearchAttributesEventAttributes{
			UpsertWorkflowSearchAttributesEventAttributes: &historypb.UpsertWorkflowSearchAttributesEventAttributes{
				SearchAttributes: &commonpb.SearchAttributes{IndexedFields: indexed}}}}
	}
	for _, c := range []struct {
		name string
		ev   *historypb.HistoryEvent
		want workflows.Step
		ok   bool
	}{
		{"the step", upsert(map[string]string{"RotationStep": "grace", "RotationTarget": "t"}), workflows.StepGrace, true},
		{"other attributes only", upsert(map[string]string{"RotationTarget": "t"}), "", false},
		{"another event", &historypb.HistoryEvent{}, "", false},
	} {
		if got, ok := workflows.StepSet(c.ev); got != c.want || ok != c.ok {
			t.Errorf("%s: StepSet = %q, %v; want %q, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
