package deploy_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"rotator/activities"
	"rotator/catalog"
	"rotator/observe"
	"rotator/workflows"
)

// ruleFile is the part of a Prometheus rule file the test reads.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// TestAlertRulesUseExportedMetrics parses every rule of
// deploy/prometheus/alerts.yaml with Prometheus' own parser and checks
// that each metric it selects is on the worker's /metrics after the
// rotations that emit them ran.
func TestAlertRulesUseExportedMetrics(t *testing.T) {
	var rf ruleFile
	if err := yaml.UnmarshalStrict(readFile(t, "deploy/prometheus/alerts.yaml"), &rf); err != nil {
		t.Fatalf("deploy/prometheus/alerts.yaml: %v", err)
	}
	exported := scrapedNames(t)

	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without alert name", g.Name)
				continue
			}
			alerts[r.Alert] = true
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: needs a severity label and a summary annotation", r.Alert)
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for: %v", r.Alert, err)
				}
			}
			expr, err := parser.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: expr does not parse: %v", r.Alert, err)
				continue
			}
			selected := 0
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				selected++
				if !exported[vs.Name] {
					t.Errorf("%s: selects %q, which the worker does not export", r.Alert, vs.Name)
				}
				return nil
			})
			if selected == 0 {
				t.Errorf("%s: selects no metric", r.Alert)
			}
		}
	}
	for _, want := range []string{"RotationOverdue", "RotationStuckInGrace", "RotationFailed", "RotationTargetOverdue", "RotationWaitsForPerson"} {
		if !alerts[want] {
			t.Errorf("alert %s is missing", want)
		}
	}
}

// scrapedNames runs a rotation that completes after grace and one that
// fails and cannot roll back, with the worker's metrics and the deployed
// catalog, then scrapes /metrics and returns every series name on it.
func scrapedNames(t *testing.T) map[string]bool {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	m, err := observe.NewMetrics(log)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Load(filepath.Join(root, "deploy/base/rotator.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ExportCatalog(cat); err != nil {
		t.Fatal(err)
	}
	var target string
	for _, tg := range cat.Targets {
		if tg.Kind == catalog.KindJWT {
			target = tg.Name
			break
		}
	}
	if target == "" {
		t.Fatal("deploy/base/rotator.yaml has no jwt target")
	}
	rotate(t, m, target, nil)
	rotate(t, m, target, temporal.NewNonRetryableApplicationError("rollout exceeded its progress deadline", "RolloutFailed", nil))
	// The gauges the worker reads back from the cluster and from Temporal.
	tg, _ := cat.Target(target)
	kube := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tg.Secret, Namespace: tg.Namespace}})
	m.SyncVersions(context.Background(), kube, cat, time.Now(), log)
	if err := m.SyncGrace(context.Background(), waitingRotation{target: target}, cat, "rotator"); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(observe.Mux(m, observe.NewReadiness(nil), log))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return seriesNames(t, resp.Body)
}

// waitingRotation is visibility and the status query with one rotation
// that waits for a person.
type waitingRotation struct{ target string }

func (w waitingRotation) ListWorkflow(context.Context, *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	return &workflowservice.ListWorkflowExecutionsResponse{Executions: []*workflowpb.WorkflowExecutionInfo{
		{Execution: &commonpb.WorkflowExecution{WorkflowId: workflows.WorkflowID(w.target), RunId: "r"}}}}, nil
}

func (w waitingRotation) QueryWorkflow(context.Context, string, string, string, ...any) (converter.EncodedValue, error) {
	st := workflows.Status{Target: w.target, Step: workflows.StepAwaitKeys, StepStartedAt: time.Now(), Reminder: "stage the keys"}
	p, err := converter.GetDefaultDataConverter().ToPayloads(st)
	if err != nil {
		return nil, err
	}
	return encodedValue{p}, nil
}

type encodedValue struct{ p *commonpb.Payloads }

func (v encodedValue) HasValue() bool { return true }
func (v encodedValue) Get(ptr any) error {
	return converter.GetDefaultDataConverter().FromPayloads(v.p, ptr)
}

// seriesNames reads the names of the series in a Prometheus text scrape.
func seriesNames(t *testing.T, r io.Reader) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		names[name] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// rotate runs a jwt rotation of target against mocked steps; with
// rolloutErr, the rollout wait fails and re-pointing the consumers back
// fails too.
func rotate(t *testing.T, m *observe.Metrics, target string, rolloutErr error) {
	t.Helper()
	var kube *activities.Kube
	var ts testsuite.WorkflowTestSuite
	ts.SetMetricsHandler(m.Temporal())
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(kube)
	workflows.Register(env)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.WorkflowID(target)})

	old := activities.SecretRef{Namespace: "ns", Name: target + "-1", Version: 1}
	next := activities.SecretRef{Namespace: "ns", Name: target + "-2", Version: 2}
	plan := activities.Plan{Target: target, Kind: catalog.KindJWT, Namespace: "ns", Base: target, Key: "secret",
		Current: old, NextVersion: 2, Grace: time.Hour, KindPlans: activities.KindPlans{JWTBytes: 64}}
	env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(plan, nil)
	env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(next, nil)
	// Without a Vault record promote and the rollout wait are one activity.
	env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool { return in.To == next })).
		Return(activities.PromoteResult{}, rolloutErr)
	env.OnActivity(kube.Promote, mock.Anything, mock.MatchedBy(func(in activities.PromoteInput) bool { return in.To == old })).
		Return(activities.PromoteResult{}, temporal.NewNonRetryableApplicationError("forbidden", "Forbidden", nil))
	env.OnActivity(kube.VerifyConsumers, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(kube.RetireSecret, mock.Anything, mock.Anything).Return(activities.RetireResult{Deleted: true}, nil)

	env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	if err := env.GetWorkflowError(); (err != nil) != (rolloutErr != nil) {
		t.Fatalf("rotation of %s: error %v, want one: %t", target, err, rolloutErr != nil)
	}
}
