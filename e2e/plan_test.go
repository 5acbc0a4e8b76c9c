package e2e

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"rotator/workflows"
)

// TestPlanShowsWhatARotationWouldDoAndChangesNothing: `starter plan` names
// the new version and its keys, the patch of each consumer and its
// rollout, the grace, and leaves the namespace as it was; --output json
// gives the same as data; a target whose rotation would fail fails the
// plan with the rotation's own error.
func TestPlanShowsWhatARotationWouldDoAndChangesNothing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	spec := jwtSpec("", nil)
	spec.secretData["issuer"] = "https://issuer.example"
	f := newFixtureWith(t, ctx, spec, deployment("api", 1, envRef("app-jwt")), deployment("web", 1, envFromAndVolume("app-jwt")))
	before := f.state(ctx, "api", "web")
	rs := f.replicaSets(ctx, "api")

	out, err := f.starter(ctx, "plan", f.target)
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	assertEach(t, "the plan", out,
		"A rotation of "+f.target+" (jwt, namespace "+f.ns+") would run as rotate/"+f.target+" (RotateJWTSecret)",
		"app-jwt-2, replacing app-jwt; keys: issuer, secret",
		"deployment/api: /containers/0/env/0/valueFrom/secretKeyRef/name: app-jwt -> app-jwt-2; rollout: one rollout",
		"deployment/web: ", "/volumes/0/secret/secretName",
		"none: the worker generates", "grace", "7d",
		"stage", "creates Secret "+f.ns+"/app-jwt-2", "Nothing was changed")

	js, err := f.starter(ctx, "plan", f.target, "--output", "json")
	if err != nil {
		t.Fatalf("plan --output json: %v\n%s", err, js)
	}
	var p workflows.RotationPlan
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		t.Fatalf("plan --output json is not a plan: %v\n%s", err, js)
	}
	if p.New != "app-jwt-2" || p.Current != "app-jwt" || len(p.Changes) != 2 || p.Kind != "jwt" || !reflect.DeepEqual(p.Keys, []string{"issuer", "secret"}) {
		t.Errorf("json plan %+v", p)
	}

	if after := f.state(ctx, "api", "web"); !reflect.DeepEqual(before, after) || f.replicaSets(ctx, "api") != rs {
		t.Error("plan changed the namespace")
	}

	// A consumer reading a key neither version has: the rotation's
	// preflight refuses it, and so does the plan, with the same words.
	g := newFixtureWith(t, ctx, jwtSpec("", nil), deployment("api", 1, envKeys("app-jwt", "secret", "audience")))
	g.refused(ctx, `deployment/api reads key "audience" of Secret app-jwt (container app env AUDIENCE)`, "plan", g.target)
	g.refused(ctx, "a rotation of "+g.target+" would fail: preflight: ", "plan", g.target)
	g.refused(ctx, `--output: "yaml" is not a format: use text or json`, "plan", g.target, "--output", "yaml")
}
