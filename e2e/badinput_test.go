package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/serviceerror"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"rotator/internal/pgtest"
	"rotator/workflows"
)

// The online half of the bad-input table (issue 7, part 5): commands that
// are well formed but meet no rotation, or one in the wrong step. Each
// exits 1 with an error naming the target and what to do instead, and
// changes nothing: no workflow, no Secret, no workload touched.

// clusterState is what a refused command must leave as it was.
type clusterState struct {
	secrets map[string]map[string][]byte
	specs   map[string]string
}

func (f *fixture) state(ctx context.Context, deployments ...string) clusterState {
	f.t.Helper()
	list, err := devstack.kube.CoreV1().Secrets(f.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	s := clusterState{secrets: map[string]map[string][]byte{}, specs: map[string]string{}}
	for _, sec := range list.Items {
		s.secrets[sec.Name] = sec.Data
	}
	for _, d := range deployments {
		s.specs[d] = f.deploymentSpec(ctx, d).String()
	}
	return s
}

// refused runs the CLI and wants exit status 1 and an error containing want.
func (f *fixture) refused(ctx context.Context, want string, args ...string) {
	f.t.Helper()
	out, err := f.starter(ctx, args...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		f.t.Errorf("%s: want exit status 1, got %v\n%s", strings.Join(args, " "), err, out)
	}
	if !strings.Contains(out, "error: ") || !strings.Contains(out, want) {
		f.t.Errorf("%s: want an error containing %q, got:\n%s", strings.Join(args, " "), want, out)
	}
}

// TestBadInputWithoutRotation: approve, abort, status and wait of a target
// in the catalog that has no rotation say so and start none.
func TestBadInputWithoutRotation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := newFixture(t, ctx, "", deployment("api", 1, envRef("app-jwt")))
	before := f.state(ctx, "api")

	noRotation := "no running rotation of " + f.target + ": start one with 'starter rotate " + f.target + "'"
	f.refused(ctx, noRotation, "approve", f.target, "--by", "e2e", "--reason", "nothing to approve")
	f.refused(ctx, noRotation, "abort", f.target, "--by", "e2e", "--reason", "nothing to abort")
	f.refused(ctx, noRotation, "status", f.target)
	f.refused(ctx, noRotation, "wait", f.target, "--timeout", "30s")

	if _, err := devstack.temporal.DescribeWorkflow(ctx, workflows.WorkflowID(f.target), ""); !isNotFound(err) {
		t.Errorf("a refused command started a workflow: %v", err)
	}
	if after := f.state(ctx, "api"); !reflect.DeepEqual(before, after) {
		t.Errorf("a refused command changed the namespace: %d Secrets before, %d after", len(before.secrets), len(after.secrets))
	}
}

// TestBadInputOutsideGrace: approve of a rotation that waits for keys (not
// in grace) is refused with its step named and changes nothing; once the
// rotation has ended, approve, abort and stage-keys say there is none.
func TestBadInputOutsideGrace(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l := newLLM(t, ctx, false)
	before := l.state(ctx, "orchestrator")
	l.rotate(ctx)
	id := workflows.WorkflowID(l.target)

	l.refused(ctx, "approve refused: rotation of "+l.target+" is in step awaiting-keys, not grace: approve ends a grace period only",
		"approve", l.target, "--by", "e2e", "--reason", "too early")
	st := l.status(ctx)
	if st.Step != workflows.StepAwaitKeys || st.Approved != nil {
		t.Errorf("a refused approve changed the rotation: step %s, approved %+v", st.Step, st.Approved)
	}
	if after := l.state(ctx, "orchestrator"); !reflect.DeepEqual(before, after) {
		t.Error("a refused approve changed the namespace")
	}

	// Abort is allowed before grace; after it the rotation is over.
	if out, err := l.starter(ctx, "abort", l.target, "--by", "e2e", "--reason", "test"); err != nil {
		t.Fatalf("abort while waiting for keys: %v\n%s", err, out)
	}
	rolledBack(t, ctx, id)
	ended := l.state(ctx, "orchestrator")
	if !reflect.DeepEqual(before, ended) {
		t.Error("an abort before anything was staged changed the namespace")
	}
	noRotation := "no running rotation of " + l.target
	l.refused(ctx, noRotation, "approve", l.target, "--by", "e2e", "--reason", "over")
	l.refused(ctx, noRotation, "abort", l.target, "--by", "e2e", "--reason", "over")
	o, a := l.newKeys()
	stdin := "openai-api-key=" + o + "\nanthropic-api-key=" + a + "\n"
	devstack.remember([]byte(o), []byte(a))
	out, err := devstack.runStarterIn(ctx, stdin, l.catalog, l.taskQueue, "stage-keys", l.target, "--by", "e2e")
	if strings.Contains(out, o) || strings.Contains(out, a) {
		t.Error("stage-keys printed a key")
		// Keep the keys out of the output below.
		out = strings.NewReplacer(o, "<openai key>", a, "<anthropic key>").Replace(out)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(out, "not awaiting-keys: nothing was staged") {
		t.Errorf("stage-keys after the rotation ended: %v\n%s", err, out)
	}
	if after := l.state(ctx, "orchestrator"); !reflect.DeepEqual(ended, after) {
		t.Errorf("a refused stage-keys changed the namespace: %v", l.secretNames(ctx))
	}
}

// status reads the rotation's status query.
func (f *fixture) status(ctx context.Context) workflows.Status {
	f.t.Helper()
	st, err := queryStatus(ctx, workflows.WorkflowID(f.target))
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

// TestBadInputIdentifiersOnRealServer: role names a catalog refuses are
// still harmless if they reach the postgres package: quoted as it quotes
// them (pgx's identifier sanitizing), each parses on the real server as one
// identifier that reads back as the name (the fuzz seeds of
// postgres/testdata/fuzz/FuzzIdent, run for real).
func TestBadInputIdentifiersOnRealServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	su := pgtest.Superuser(t, ctx)
	for _, name := range []string{`a";drop role x;--`, `e2e "quoted"; DROP ROLE postgres; -- `, `""""`, `a\"$$b$$`,
		"Grüße", `'; SELECT pg_sleep(10); --`, "line\nbreak", strings.Repeat(`"`, 63)} {
		var one int
		rows, err := su.Query(ctx, "SELECT 1 AS "+pgx.Identifier{name}.Sanitize())
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		got := string(rows.FieldDescriptions()[0].Name)
		for rows.Next() {
			if err := rows.Scan(&one); err != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Err(); err != nil || one != 1 {
			t.Fatalf("%q: %v, row %d", name, err, one)
		}
		if got != name {
			t.Errorf("the server read identifier %q as %q", name, got)
		}
	}
}

// TestBadInputOverlappingTargets: a catalog whose targets share a Secret,
// share a PostgreSQL role, or has a name too long for a label is refused
// by the CLI before it talks to Temporal; no rotation starts.
func TestBadInputOverlappingTargets(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sfx := randomSuffix()
	for _, tc := range []struct{ name, yaml, want string }{
		{"one Secret", "targets:\n  - {name: a-" + sfx + ", kind: jwt, namespace: ns, secret: s}\n  - {name: b-" + sfx + ", kind: jwt, namespace: ns, secret: s}\n",
			"targets[1] (b-" + sfx + "): secret: ns/s is also the Secret of targets[0] (a-" + sfx + "): two targets on one Secret undo each other's rotations"},
		{"one role", "targets:\n  - {name: a-" + sfx + ", kind: postgres, namespace: ns, secret: s, postgres: {host: db, role: app}}\n" +
			"  - {name: b-" + sfx + ", kind: postgres, namespace: other, secret: s, postgres: {host: db, role: app}}\n",
			`postgres.role: role "app" on db:5432 is also rotated by targets[0] (a-` + sfx + ")"},
		{"long name", "targets:\n  - {name: " + strings.Repeat("a", 64) + ", kind: jwt, namespace: ns, secret: s}\n", "is 64 characters: at most 63"},
	} {
		path := filepath.Join(t.TempDir(), "rotator.yaml")
		if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := devstack.runStarter(ctx, path, "e2e-overlap-"+sfx, "rotate", "a-"+sfx, "--by", "e2e")
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: want exit status 1 and %q, got %v:\n%s", tc.name, tc.want, err, out)
		}
	}
	if _, err := devstack.temporal.DescribeWorkflow(ctx, workflows.WorkflowID("a-"+sfx), ""); !isNotFound(err) {
		t.Errorf("a refused catalog started a rotation: %v", err)
	}
}
