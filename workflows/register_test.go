package workflows

import (
	"slices"
	"testing"

	"go.temporal.io/sdk/workflow"

	"rotator/catalog"
)

// registry records what Register registers.
type registry struct{ names []string }

func (r *registry) RegisterWorkflow(any) {}

func (r *registry) RegisterWorkflowWithOptions(_ any, o workflow.RegisterOptions) {
	r.names = append(r.names, o.Name)
}

func (r *registry) RegisterDynamicWorkflow(any, workflow.DynamicRegisterOptions) {}

// TestEveryKindHasAWorkflow fails when the catalog accepts a kind that no
// workflow rotates: such a target would load, pass preflight's checks in
// the CLI, and never start.
func TestEveryKindHasAWorkflow(t *testing.T) {
	var r registry
	Register(&r)
	for _, kind := range catalog.Kinds() {
		name, ok := TypeFor(kind)
		if !ok {
			t.Errorf("kind %s: no workflow type (add it to kindWorkflows in register.go)", kind)
			continue
		}
		if !slices.Contains(r.names, name) {
			t.Errorf("kind %s: workflow type %s is not registered", kind, name)
		}
	}
	for _, rot := range kindWorkflows {
		if !slices.Contains(catalog.Kinds(), rot.kind) {
			t.Errorf("kindWorkflows lists kind %s, which the catalog does not accept", rot.kind)
		}
	}
	if _, ok := TypeFor("redis-someday"); ok {
		t.Error("TypeFor knows a kind the catalog does not")
	}
}
