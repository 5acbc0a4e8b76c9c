package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"rotator/activities"
	"rotator/catalog"
)

// Summary is a rotation's one-line summary in the Temporal UI's list and
// header (its static summary, set when it is started).
func Summary(target string, kind catalog.Kind, requestedBy string) string {
	s := fmt.Sprintf("rotate %s (%s)", target, kind)
	if requestedBy != "" {
		s += ", requested by " + requestedBy
	}
	return s
}

// PlanID is the workflow ID of a target's plan.
func PlanID(target string) string { return "plan/" + target }

// PlanInput asks what a rotation of a target would do.
type PlanInput struct {
	Target string `json:"target"`
	// Emergency plans an emergency rotation: no grace, no window.
	Emergency bool `json:"emergency,omitempty"`
}

// RotationPlan is what a rotation of a target would do, as preflight
// finds the target now; it names objects and calls, never a value.
type RotationPlan struct {
	Target    string       `json:"target"`
	Kind      catalog.Kind `json:"kind"`
	Namespace string       `json:"namespace"`
	Workflow  string       `json:"workflow"`
	// Current is the version in use; New the one a rotation would
	// create, with the data keys it carries.
	Current string   `json:"current"`
	New     string   `json:"new"`
	Keys    []string `json:"keys"`
	// Steps are the rotation's steps in order, with what each does here.
	Steps []PlannedStep `json:"steps"`
	// Changes are the objects a rotation would repoint, each in one patch.
	Changes []PlannedChange `json:"changes"`
	// NotRepointed are the live objects that keep the current version:
	// retire waits for them to go.
	NotRepointed []string `json:"notRepointed,omitempty"`
	// Lingering are the target's other versions that objects still use.
	Lingering []string `json:"lingering,omitempty"`
	// Calls are what the rotation would ask of a database, a provider or
	// Vault, in order.
	Calls []string `json:"calls,omitempty"`
	Grace string   `json:"grace"`
	// Window is the rotation window, and WindowOpensAt when it next opens
	// if it is closed now.
	Window        string    `json:"window,omitempty"`
	WindowOpensAt time.Time `json:"windowOpensAt,omitzero"`
	// Approval is why grace would end only with a person's approval.
	Approval string   `json:"approval,omitempty"`
	Notify   []string `json:"notify,omitempty"`
}

// PlannedStep is one step of the plan.
type PlannedStep struct {
	Step Step   `json:"step"`
	Does string `json:"does"`
}

// PlannedChange is one object a rotation would repoint.
type PlannedChange struct {
	Object string `json:"object"`
	// Patch says which fields of its pod template would name the new
	// version.
	Patch string `json:"patch"`
	// Rollout says what Kubernetes would do with the patch.
	Rollout string `json:"rollout"`
}

// PlanRotation runs a rotation's preflight, which changes nothing, and
// returns what the rotation would do. It fails with the errors the
// rotation's preflight would fail with. The Temporal UI can start it:
// workflow type PlanRotation, input {"target": "<name>"}.
func PlanRotation(ctx workflow.Context, in PlanInput) (RotationPlan, error) {
	if in.Target == "" {
		return RotationPlan{}, temporal.NewNonRetryableApplicationError(
			`target: is required: start the plan with {"target": "<name from rotator.yaml>"}`, activities.ErrBadInput, nil)
	}
	// A workflow type of its own, so no earlier histories to keep: the
	// rules of the newest rotations.
	r := &rotation{in: RotateInput{Target: in.Target, Emergency: in.Emergency}, local: true, safe: true, accountable: true}
	r.st = Status{Target: in.Target, Step: StepPreflight}
	// Unknown until preflight has read the catalog: the kind's own checks
	// run after it.
	if err := r.preflight(ctx); err != nil {
		return RotationPlan{}, r.explain(StepPreflight, err)
	}
	steps, ok := stepsFor(r.plan.Kind)
	if !ok {
		return RotationPlan{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"target %s: kind %s has no rotation workflow in this build", in.Target, r.plan.Kind), activities.ErrBadInput, nil)
	}
	r.steps = steps
	if steps.preflight != nil {
		if err := steps.preflight(ctx, r); err != nil {
			return RotationPlan{}, r.explain(StepPreflight, err)
		}
	}
	p := r.describe()
	if w := r.plan.Window; w != nil && !in.Emergency {
		now := workflow.Now(ctx)
		var opens time.Time
		if err := workflow.SideEffect(ctx, func(workflow.Context) any {
			t, _ := w.Next(now)
			return t
		}).Get(&opens); err != nil {
			return RotationPlan{}, err
		}
		if opens.After(now) {
			p.WindowOpensAt = opens
		}
	}
	return p, nil
}

// describe turns the rotation's plan into what it would do.
func (r *rotation) describe() RotationPlan {
	pl := r.plan
	typeName, _ := TypeFor(pl.Kind)
	p := RotationPlan{
		Target: pl.Target, Kind: pl.Kind, Namespace: pl.Namespace,
		Workflow: WorkflowID(pl.Target) + " (" + typeName + ")",
		Current:  pl.Current.Name, New: fmt.Sprintf("%s-%d", pl.Base, pl.NextVersion), Keys: pl.Keys,
		NotRepointed: r.st.NotRepointed, Approval: r.approvalRequired,
	}
	if p.Keys == nil {
		p.Keys = []string{}
	}
	for _, l := range pl.Lingering {
		p.Lingering = append(p.Lingering, fmt.Sprintf("%s, used by %s", l.Name, strings.Join(l.UsedBy, ", ")))
	}
	for _, n := range pl.Notify {
		p.Notify = append(p.Notify, n.Sink)
	}
	p.Changes = []PlannedChange{}
	for _, c := range pl.Consumers {
		ch := PlannedChange{Object: c.String(), Patch: "the references to " + pl.Current.Name, Rollout: rolloutOf(c.Kind)}
		for _, s := range pl.Seen {
			if s.Workload == c && len(s.Paths) > 0 {
				ch.Patch = fmt.Sprintf("%s: %s -> %s", strings.Join(s.Paths, ", "), pl.Current.Name, p.New)
			}
		}
		p.Changes = append(p.Changes, ch)
	}
	for _, ing := range pl.Ingresses {
		p.Changes = append(p.Changes, PlannedChange{Object: "ingress/" + ing,
			Patch: fmt.Sprintf("spec.tls[].secretName: %s -> %s", pl.Current.Name, p.New), Rollout: "none: the controller serves the new certificate"})
	}
	p.Grace = catalog.FormatDuration(r.grace)
	if day := 24 * time.Hour; r.grace >= day && r.grace%day == 0 {
		p.Grace = fmt.Sprintf("%dd", r.grace/day)
	}
	if r.in.Emergency {
		p.Grace = "none (emergency): the old version is retired once the new one is live"
	}
	if pl.Window != nil {
		p.Window = pl.Window.String()
		if r.in.Emergency {
			p.Window += " (an emergency does not wait for it)"
		}
	}
	p.Calls = r.calls()
	p.Steps = r.plannedSteps(p)
	return p
}

// rolloutOf says what a patch of a workload's pod template makes
// Kubernetes do.
func rolloutOf(kind string) string {
	switch kind {
	case "CronJob":
		return "none: the next Job runs with the new version"
	case "StatefulSet":
		return "one rolling update of its pods"
	case "DaemonSet":
		return "one rolling update, node by node"
	default:
		return "one rollout: a new ReplicaSet, old pods replaced as new ones are ready"
	}
}

// plannedSteps lists the rotation's steps for this target.
func (r *rotation) plannedSteps(p RotationPlan) []PlannedStep {
	pl := r.plan
	steps := []PlannedStep{{StepPreflight, "checks the target, the Secret and every object that uses it (passed)"}}
	if r.steps.obtain != nil {
		steps = append(steps, PlannedStep{StepAwaitKeys, "waits for new keys: starter stage-keys " + pl.Target + " < keys.env"})
	}
	steps = append(steps, PlannedStep{StepStage, fmt.Sprintf("creates Secret %s/%s with keys %s", pl.Namespace, p.New, strings.Join(p.Keys, ", "))})
	window := func(what string) {
		if p.Window != "" && !r.in.Emergency {
			steps = append(steps, PlannedStep{StepAwaitWindow, what + " waits for the window " + p.Window})
		}
	}
	if r.steps.apply != nil {
		if pl.OldStopsAtApply {
			window("apply")
		}
		steps = append(steps, PlannedStep{StepApply, "makes the backing system take the new version (see calls)"})
	}
	if !pl.OldStopsAtApply {
		window("promote")
	}
	steps = append(steps, PlannedStep{StepPromote, fmt.Sprintf("repoints %d objects in one patch each and waits for their rollouts", len(p.Changes))},
		PlannedStep{StepVerify, "checks that every consumer runs on " + p.New + " and nothing else still uses " + pl.Current.Name})
	if !r.in.Emergency || r.approvalRequired != "" {
		steps = append(steps, PlannedStep{StepGrace, "keeps " + pl.Current.Name + " valid for " + p.Grace + "; approve ends it early, abort rolls back"})
	}
	if r.steps.revoke != nil || (pl.DropPrevious && !r.in.Emergency) {
		window("retire")
	}
	retire := "deletes " + pl.Current.Name + " once nothing uses it"
	if len(p.NotRepointed) > 0 {
		retire += " (it waits for " + strings.Join(p.NotRepointed, ", ") + ")"
	}
	return append(steps, PlannedStep{StepRetire, retire})
}

// calls lists what the rotation would ask of the systems beside
// Kubernetes, from the plan: names, never values.
func (r *rotation) calls() []string {
	pl := r.plan
	var calls []string
	if pg := pl.Postgres; pg != nil {
		server := fmt.Sprintf("%s:%d", pg.Server.Host, pg.Server.Port)
		if pg.Strategy == catalog.StrategySingleUser {
			calls = append(calls, fmt.Sprintf("apply: ALTER ROLE %s PASSWORD '<SCRAM-SHA-256 verifier>' on %s: the old password stops working then", pg.Role, server))
		} else {
			calls = append(calls, fmt.Sprintf("apply: ALTER ROLE %s LOGIN PASSWORD '<SCRAM-SHA-256 verifier>' on %s, then a login as %s; the other user keeps working", pg.Username, server, pg.Username),
				fmt.Sprintf("retire: ALTER ROLE <the previous user of %s> NOLOGIN", strings.Join(pg.Users, ", ")))
		}
		calls = append(calls, fmt.Sprintf("verify: SELECT 1 as %s with the new Secret", pg.Username))
	}
	if rd := pl.Redis; rd != nil {
		calls = append(calls, fmt.Sprintf("apply: ACL SETUSER %s #<SHA-256 of the new password> (beside the old one) on %s", rd.User, rd.Server.Addr),
			fmt.Sprintf("verify: AUTH %s with the new Secret", rd.User),
			fmt.Sprintf("retire: ACL SETUSER %s <#old SHA-256> (the old password removed)", rd.User))
	}
	if ak := pl.APIKeys; ak != nil {
		for _, pp := range ak.Providers {
			calls = append(calls, fmt.Sprintf("awaiting-keys: %s checks the staged %s key (%s)", pp.Name, pp.Key, pp.BaseURL))
			if pp.Admin {
				calls = append(calls, fmt.Sprintf("retire: %s's admin API revokes the old key", pp.Name))
			} else {
				calls = append(calls, fmt.Sprintf("retire: none: without an admin key, a person revokes the old %s key in its console and approves", pp.Name))
			}
		}
	}
	if t := pl.TLS; t != nil {
		calls = append(calls, fmt.Sprintf("stage: Vault PKI %s/issue/%s for %s, valid %s", t.Mount, t.Role, strings.Join(t.Names(), ", "), catalog.FormatDuration(t.TTL)))
	}
	if v := pl.Vault; v != nil {
		calls = append(calls, fmt.Sprintf("stage: Vault KV v2 %s/%s: the new version written, labelled pending", v.Mount, v.Path),
			"promote: the Vault labels move: new current, old previous")
	}
	if len(calls) == 0 && pl.Kind == catalog.KindJWT {
		calls = append(calls, fmt.Sprintf("none: the worker generates %d random bytes", pl.JWTBytes))
	}
	return calls
}
