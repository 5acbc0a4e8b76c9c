package observe_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"rotator/catalog"
	"rotator/observe"
	"rotator/workflows"
)

// rotations answers the list with two pages and the status query from a
// map of workflow ID to status.
type rotations struct {
	statuses map[string]workflows.Status
	queries  []string
	listErr  error
}

func (r *rotations) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	if r.listErr != nil {
		return nil, r.listErr
	}
	r.queries = append(r.queries, req.GetQuery())
	var page []*workflowpb.WorkflowExecutionInfo
	for _, id := range slices.Sorted(maps.Keys(r.statuses)) {
		page = append(page, &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: "run-" + id}})
	}
	// Each execution on a page of its own: paging must be followed.
	i := 0
	if len(req.GetNextPageToken()) > 0 {
		i = int(req.GetNextPageToken()[0])
	}
	if i >= len(page) {
		return &workflowservice.ListWorkflowExecutionsResponse{}, nil
	}
	return &workflowservice.ListWorkflowExecutionsResponse{Executions: page[i : i+1], NextPageToken: []byte{byte(i + 1)}}, nil
}

func (r *rotations) QueryWorkflow(_ context.Context, id, runID, queryType string, _ ...any) (converter.EncodedValue, error) {
	st, ok := r.statuses[id]
	if !ok || runID != "run-"+id || queryType != workflows.QueryStatus {
		return nil, errors.New("unexpected query")
	}
	b, err := json.Marshal(st)
	return jsonValue(b), err
}

type jsonValue []byte

func (v jsonValue) HasValue() bool    { return len(v) > 0 }
func (v jsonValue) Get(ptr any) error { return json.Unmarshal(v, ptr) }

func TestSyncGrace(t *testing.T) {
	m, err := observe.NewMetrics(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cat := &catalog.Catalog{Targets: []catalog.Target{
		{Name: "in-grace", Kind: catalog.KindJWT},
		{Name: "a-left-grace", Kind: catalog.KindPostgres},
		{Name: "idle", Kind: catalog.KindAPIKeys},
	}}
	started := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	src := &rotations{statuses: map[string]workflows.Status{
		workflows.WorkflowID("in-grace"): {Target: "in-grace", Kind: catalog.KindJWT, Step: workflows.StepGrace,
			StepStartedAt: started, GraceDeadline: started.Add(7 * 24 * time.Hour)},
		// Listed by visibility, which lags, but already retiring.
		workflows.WorkflowID("a-left-grace"): {Target: "a-left-grace", Kind: catalog.KindPostgres, Step: workflows.StepRetire,
			StepStartedAt: started, GraceDeadline: started.Add(time.Hour), Reminder: "Secret db-1 is still used by pod/backup"},
	}}
	if err := m.SyncGrace(context.Background(), src, cat, "rotator"); err != nil {
		t.Fatal(err)
	}
	if len(src.queries) == 0 || !strings.Contains(src.queries[0], "TaskQueue = 'rotator'") ||
		!strings.Contains(src.queries[0], "RotationStep IN ('grace', 'awaiting-keys', 'retire', 'compensation-failed')") || !strings.Contains(src.queries[0], "ExecutionStatus = 'Running'") {
		t.Errorf("visibility query %q, want running rotations in grace on the task queue", src.queries)
	}
	want := map[string][2]float64{
		"in-grace":     {float64(started.Unix()), float64(started.Add(7 * 24 * time.Hour).Unix())},
		"a-left-grace": {0, 0},
		"idle":         {0, 0},
	}
	check := func(want map[string][2]float64) {
		t.Helper()
		for target, w := range want {
			for i, name := range []string{workflows.MetricGraceStarted, workflows.MetricGraceDeadline} {
				v, ok, err := observe.Value(m.Gatherer(), name, map[string]string{"target": target})
				if err != nil || !ok || v != w[i] {
					t.Errorf("%s{target=%q} = %v (present %t, %v), want %v", name, target, v, ok, err, w[i])
				}
			}
		}
	}
	check(want)
	// The retire that waits for an object waits for a person; grace
	// without a reminder does not.
	for target, w := range map[string]float64{"a-left-grace": float64(started.Unix()), "in-grace": 0, "idle": 0} {
		if v, ok, err := observe.Value(m.Gatherer(), observe.MetricWaitingForPerson, map[string]string{"target": target}); err != nil || !ok || v != w {
			t.Errorf("%s{target=%q} = %v (present %t, %v), want %v", observe.MetricWaitingForPerson, target, v, ok, err, w)
		}
	}

	// The rotation ends: the next pass clears its gauges.
	delete(src.statuses, workflows.WorkflowID("in-grace"))
	if err := m.SyncGrace(context.Background(), src, cat, "rotator"); err != nil {
		t.Fatal(err)
	}
	want["in-grace"] = [2]float64{0, 0}
	check(want)

	src.listErr = errors.New("visibility unavailable")
	if err := m.SyncGrace(context.Background(), src, cat, "rotator"); err == nil || !strings.Contains(err.Error(), "visibility unavailable") {
		t.Errorf("SyncGrace with visibility down = %v, want its error", err)
	}
}

// A rotation in grace whose status names a target the catalog does not
// have (a workflow anyone started on the task queue, its status whatever
// that workflow says) adds no series: the labels come from the catalog.
func TestSyncGraceLabelsOnlyCatalogTargets(t *testing.T) {
	m, err := observe.NewMetrics(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cat := &catalog.Catalog{Targets: []catalog.Target{{Name: "known", Kind: catalog.KindJWT}}}
	started := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	src := &rotations{statuses: map[string]workflows.Status{}}
	for i := range 20 {
		rogue := "rogue-" + strings.Repeat("x", i)
		src.statuses[workflows.WorkflowID(rogue)] = workflows.Status{Target: rogue, Kind: "made-up", Step: workflows.StepGrace,
			StepStartedAt: started, GraceDeadline: started.Add(time.Hour)}
	}
	if err := m.SyncGrace(context.Background(), src, cat, "rotator"); err != nil {
		t.Fatal(err)
	}
	families, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := 0
	for _, f := range families {
		if f.GetName() != workflows.MetricGraceStarted && f.GetName() != workflows.MetricGraceDeadline {
			continue
		}
		for _, s := range f.GetMetric() {
			series++
			for _, l := range s.GetLabel() {
				if strings.Contains(l.GetValue(), "rogue") || l.GetValue() == "made-up" {
					t.Errorf("%s has label %s=%q from a workflow's status", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	if series != 2 {
		t.Errorf("%d grace series, want 2: one gauge each for the catalog's one target", series)
	}
}
