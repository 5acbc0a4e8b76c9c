package chaos

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"rotator/internal/pgtest"
	"rotator/postgres"
	"rotator/vault"
	"rotator/workflows"
)

// kill is one SIGKILL of a worker and what followed it.
type kill struct {
	point     string
	at        time.Time
	victim    string // identity of the killed worker
	successor string // identity of the worker started right after
	inFlight  string
}

// chaosRun drives one rotation of a target through kills at every step
// boundary.
type chaosRun struct {
	t     *testing.T
	tg    *target
	ws    *workers
	id    string
	kills []kill
	// attempts records which worker each activity attempt started on,
	// as DescribeWorkflowExecution showed it.
	attempts *attemptLog
	// gates are told of each killed worker, so that they drop what it
	// sent rather than let it through when they open.
	gates []*gate
}

// kill SIGKILLs the current worker and starts the next one at once, as a
// supervisor (a Deployment's controller) would.
func (c *chaosRun) kill(ctx context.Context, point string) {
	c.t.Helper()
	inFlight := pending(ctx, devstack.temporal, c.id)
	victim := c.ws.current
	at := time.Now()
	for _, g := range c.gates {
		g.forget(victim.proxy.id)
	}
	victim.kill()
	next := c.ws.start()
	c.kills = append(c.kills, kill{point: point, at: at, victim: victim.identity(), successor: next.identity(), inFlight: inFlight})
	c.t.Logf("kill %d, %s: SIGKILL worker %d with %s in flight; worker %d started", len(c.kills), point, victim.pid(), inFlight, next.pid())
}

// killHeld waits until the current worker has a request held at g and
// activity running on it, kills the worker and opens g. An empty activity
// is a local one, which Temporal does not list: the held request alone
// says the worker is in it.
func (c *chaosRun) killHeld(ctx context.Context, g *gate, activity, point string) {
	c.t.Helper()
	c.must(g.waitHeld(ctx, c.ws.current.proxy.id))
	if activity != "" {
		c.must(waitRunning(ctx, devstack.temporal, c.id, activity, c.ws.current.identity(), false))
	}
	c.kill(ctx, point)
	g.disarm()
}

func (c *chaosRun) must(err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
}

// crashRotation rotates the target, killing the worker with SIGKILL
// during stage (a local activity, so inside a workflow task), after
// stage, after apply (for a kind with one), during promote, after promote (only
// where promote and the rollout wait are two activities, with a Vault
// record), during the rollout wait, during verify, in grace and during
// retire. Gates on the worker's way to the API server make each
// kill land where it says; the consumer is paused once preflight passed,
// so that the rollout wait lasts until the test resumes it.
func crashRotation(t *testing.T, ctx context.Context, tg *target, ws *workers, g *crashGates, workflowType string, steps backendSteps) workflows.Status {
	t.Helper()
	c := &chaosRun{t: t, tg: tg, ws: ws, id: workflows.WorkflowID(tg.name), gates: g.all()}
	ctx, cancel := ws.guard(ctx)
	defer cancel()
	c.attempts = watchAttempts(ctx, devstack.temporal, c.id)
	if ws.current == nil {
		ws.start()
	}
	g.stage.arm()
	g.patch.arm()
	run, err := devstack.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: c.id, TaskQueue: tg.taskQueue},
		workflowType, workflows.RotateInput{Target: tg.name, RequestedBy: "chaos"})
	c.must(err)
	t.Cleanup(func() {
		// A failed test must not leave a rotation retrying with no worker.
		_ = devstack.temporal.TerminateWorkflow(context.Background(), c.id, run.GetRunID(), "chaos test ended")
	})

	// During stage: the new Secret was created, the worker dies before it
	// hears so. Stage is a local activity, in a workflow task the dead
	// worker never completes: once that task times out, the next worker
	// runs preflight and stage again, and they must find that Secret
	// rather than stage another.
	c.killHeld(ctx, g.stage, "", "during stage")

	// After stage: the new Secret exists and the next step is published
	// (a local stage is not); apply's or promote's first request is held.
	_, err = waitEvent(ctx, devstack.temporal, c.id, "stage", func(ev *historypb.HistoryEvent, types map[int64]string) bool {
		return stepReached(workflows.StepApply)(ev, types) || stepReached(workflows.StepPromote)(ev, types)
	})
	c.must(err)
	c.kill(ctx, "after stage")
	if steps.apply != "" {
		_, err = waitEvent(ctx, devstack.temporal, c.id, "apply", activityCompleted(steps.apply))
		c.must(err)
		c.must(g.patch.waitHeld(ctx, ws.current.proxy.id))
		c.kill(ctx, "after apply")
	}
	// During promote: the consumer's patch landed, the worker dies before
	// it hears so; the retry must not patch or roll out again.
	// Without a Vault record promote and the rollout wait are one
	// activity, so "after promote" is inside it: the rollout wait.
	g.promote.arm()
	// Preflight is behind us (it refuses a paused Deployment): pause the
	// consumer before promote's patch, held so far, goes through.
	tg.setPaused(ctx, true)
	g.patch.disarm()
	ev, err := waitEvent(ctx, devstack.temporal, c.id, "promote", activityScheduled("Promote", "PromoteAndAwait"))
	c.must(err)
	promote, await := "Promote", "AwaitRollout"
	if ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == "PromoteAndAwait" {
		promote, await = "PromoteAndAwait", "PromoteAndAwait"
	}
	c.killHeld(ctx, g.promote, promote, "during promote")

	// After promote: the consumer is repointed, its rollout cannot finish.
	if promote == "Promote" {
		_, err = waitEvent(ctx, devstack.temporal, c.id, "promote", activityCompleted("Promote"))
		c.must(err)
		c.kill(ctx, "after promote")
	}
	c.must(waitRunning(ctx, devstack.temporal, c.id, await, ws.current.identity(), true))
	c.kill(ctx, "during the rollout wait")

	// During verify: the rollout finishes; verify's first call, the
	// database login or the look at the workloads, is held.
	if g.db != nil {
		g.db.arm()
		tg.setPaused(ctx, false)
		c.must(g.db.waitHeld(ctx))
		c.must(waitRunning(ctx, devstack.temporal, c.id, steps.verify, ws.current.identity(), false))
		c.kill(ctx, "during verify")
		g.db.disarm()
	} else {
		g.verify.arm()
		tg.setPaused(ctx, false)
		which, err := first(ctx,
			func(ctx context.Context) error { return g.verify.waitHeld(ctx, ws.current.proxy.id) },
			func(ctx context.Context) error {
				_, err := waitEvent(ctx, devstack.temporal, c.id, "grace", stepReached(workflows.StepGrace))
				return err
			})
		c.must(err)
		if which == 0 {
			// The namespace is listed again once the rollout is done:
			// verify's check of what is still on the old version, which
			// ends the rollout wait (or, before, its own activity).
			which, err := first(ctx,
				func(ctx context.Context) error {
					return waitRunning(ctx, devstack.temporal, c.id, "VerifyConsumers", ws.current.identity(), false)
				},
				func(ctx context.Context) error {
					return waitRunning(ctx, devstack.temporal, c.id, await, ws.current.identity(), false)
				})
			c.must(err)
			c.kill(ctx, map[int]string{0: "during verify", 1: "during verify (the rollout wait's namespace check)"}[which])
		} else {
			// The rollout wait checked every consumer's template, so the
			// workflow runs no verify activity: there is nothing to kill.
			t.Log("verify: no activity of its own for this kind (the rollout wait checked the consumers): no kill")
		}
		g.verify.disarm()
	}

	_, err = waitEvent(ctx, devstack.temporal, c.id, "grace", stepReached(workflows.StepGrace))
	c.must(err)
	c.kill(ctx, "in grace")

	// During retire: the old Secret's deletion reached the API server,
	// the worker dies before it hears back.
	g.retire.arm()
	c.must(devstack.temporal.SignalWorkflow(ctx, c.id, "", workflows.SignalApprove, workflows.Decision{By: "chaos", Reason: "crash test"}))
	c.killHeld(ctx, g.retire, "RetireSecret", "during retire")

	var st workflows.Status
	if err := run.Get(ctx, &st); err != nil {
		t.Fatalf("the rotation failed after %d kills: %v", len(c.kills), err)
	}
	ws.stopAll()
	if st.Step != workflows.StepDone || st.New == nil || st.Old == nil {
		t.Fatalf("rotation result: step %s, new %v", st.Step, st.New)
	}
	c.report(ctx)
	return st
}

// report logs, for each kill, how long until the next worker resumed the
// rotation, and counts the kills survived.
func (c *chaosRun) report(ctx context.Context) {
	c.t.Helper()
	survived := 0
	var worst, total time.Duration
	attempts := c.attempts.list()
	for i, k := range c.kills {
		// The successor resumed the rotation when it first completed a
		// task of it, or started an activity attempt (which the next
		// kill may cut short).
		d, ok, err := takeover(ctx, devstack.temporal, c.id, k.successor, k.at)
		c.must(err)
		for _, a := range attempts {
			if a.identity == k.successor && a.started.After(k.at) && (!ok || a.started.Sub(k.at) < d) {
				d, ok = a.started.Sub(k.at), true
			}
		}
		if !ok {
			c.t.Errorf("kill %d (%s): worker %s never resumed the rotation", i+1, k.point, k.successor)
			continue
		}
		survived++
		worst, total = max(worst, d), total+d
		c.t.Logf("kill %d, %s: resumed after %s", i+1, k.point, d.Round(100*time.Millisecond))
	}
	dead := map[string]time.Time{}
	for _, k := range c.kills {
		dead[k.victim] = k.at
	}
	for _, a := range attempts {
		if at, ok := dead[a.identity]; ok && a.started.After(at) {
			// The server handed the task to a poll of the killed worker:
			// it is lost until its timeout, then retried.
			c.t.Logf("%s attempt %d went to worker %s after that worker was killed", a.activity, a.attempt, a.identity)
		}
	}
	countKills(len(c.kills), survived)
	mean := time.Duration(0)
	if survived > 0 {
		mean = total / time.Duration(survived)
	}
	c.t.Logf("%s: kills survived %d/%d; time to recover mean %s, max %s", c.tg.name, survived, len(c.kills),
		mean.Round(100*time.Millisecond), worst.Round(100*time.Millisecond))
}

// backendSteps names the activities of a kind's backing system that the
// kill points wait for: its apply and its login check; zero for a kind
// without one.
type backendSteps struct{ apply, verify string }

// crashGates are the holds the kill points use; db is the proxy of the
// target's backing system (PostgreSQL, Redis), nil for other kinds.
type crashGates struct {
	stage, patch, promote, verify, retire *gate
	db                                    *dbProxy
}

func newCrashGates(ns, old string) *crashGates {
	return &crashGates{
		stage:   newGate("stage's create, answered", true, secretCreate(ns)),
		patch:   newGate("promote's patch", false, deploymentPatch(ns)),
		promote: newGate("promote's patch, answered", true, deploymentPatch(ns)),
		verify:  newGate("verify's list", false, deploymentsList(ns)),
		retire:  newGate("retire's delete, answered", true, secretDelete(ns, old)),
	}
}

func (g *crashGates) all() []*gate { return []*gate{g.stage, g.patch, g.promote, g.verify, g.retire} }

// TestCrashAtEveryStep kills the worker with SIGKILL at every step
// boundary of a JWT rotation (with Vault) and of PostgreSQL rotations of
// both strategies, and checks that each ends with exactly one live
// version that every consumer uses, no orphaned Secret, the right
// credential valid in PostgreSQL and consistent Vault labels.
func TestCrashAtEveryStep(t *testing.T) {
	t.Run("jwt", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		path := "chaos/jwt-" + randomSuffix()
		key0 := randomKey(t)
		hooks := newHookReceiver(t)
		tg := newTarget(t, ctx, map[string]string{"secret": key0}, "    kind: jwt\n    key: secret\n    vault: {path: "+path+"}\n"+hooks.sinkYAML(), nil)
		g := newCrashGates(tg.ns, tg.secret)
		ws := newWorkers(t, tg.catalog, tg.taskQueue, true, g.all())
		rolls := tg.replicaSets(ctx)

		st := crashRotation(t, ctx, tg, ws, g, workflows.TypeRotateJWTSecret, backendSteps{})
		tg.assertOneLiveVersion(ctx, st.New.Name, rolls)
		live, ok := tg.secretData(ctx, st.New.Name)
		if !ok || len(live["secret"]) == 0 || string(live["secret"]) == key0 {
			t.Fatalf("live Secret %s holds no new key", st.New.Name)
		}
		store := vault.NewStore(devstack.vault, vault.DefaultMount)
		labels, _, err := store.Labels(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if labels.Current != st.New.VaultVersion || labels.Current == 0 || labels.Pending != 0 || labels.PendingRun != "" {
			t.Errorf("Vault labels of %s: CURRENT=%d PENDING=%d (run %q), want CURRENT=%d, the live Secret's version, and no PENDING",
				path, labels.Current, labels.Pending, labels.PendingRun, st.New.VaultVersion)
		}
		rec, err := store.Read(ctx, path, labels.Current)
		if err != nil || rec["secret"] != string(live["secret"]) {
			t.Errorf("Vault's CURRENT version of %s does not hold the live key (%v)", path, err)
		}
		ws.assertNoLeaks([]byte(key0), live["secret"])
		// The worker that ran finish waited for the last notification.
		hooks.assertOncePerStep([]string{"started", "grace", "done"}, []byte(key0), live["secret"])
	})

	t.Run("postgres-single-user", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		su := pgtest.Superuser(t, ctx)
		role := "chaos_single_" + randomSuffix()
		pw0 := pgtest.CreateLoginRole(t, ctx, su, role, true)
		db, yaml := pgTarget(t)
		tg := newTarget(t, ctx, map[string]string{"username": role, "password": pw0},
			yaml+"      role: "+role+"\n      strategy: single-user\n", nil)
		g := newCrashGates(tg.ns, tg.secret)
		g.db = db
		ws := newWorkers(t, tg.catalog, tg.taskQueue, true, g.all())
		rolls := tg.replicaSets(ctx)

		st := crashRotation(t, ctx, tg, ws, g, workflows.TypeRotateDatabasePassword, backendSteps{apply: "ApplyPassword", verify: "VerifyLogin"})
		tg.assertOneLiveVersion(ctx, st.New.Name, rolls)
		user, pw1 := credentials(t, ctx, tg, st.New.Name)
		if user != role || pw1 == pw0 {
			t.Fatalf("live Secret: user %q, password changed %v", user, pw1 != pw0)
		}
		if err := pgtest.CanLogin(ctx, role, pw1); err != nil {
			t.Errorf("the live Secret's password does not log in: %v", err)
		}
		if err := pgtest.CanLogin(ctx, role, pw0); !postgres.IsAuthFailure(err) {
			t.Errorf("single-user: the retired password must be refused, got %v", err)
		}
		ws.assertNoLeaks([]byte(pw0), []byte(pw1))
	})

	t.Run("postgres-alternating", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		su := pgtest.Superuser(t, ctx)
		owner := "chaos_alt_" + randomSuffix()
		pw0 := pgtest.CreateLoginRole(t, ctx, su, owner, true)
		users := [2]string{owner + "_a", owner + "_b"}
		t.Cleanup(func() {
			if !t.Failed() {
				for _, u := range users {
					_, _ = su.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{u}.Sanitize())
				}
			}
		})
		if _, err := postgres.SetupAlternating(ctx, su, owner, users); err != nil {
			t.Fatal(err)
		}
		db, yaml := pgTarget(t)
		tg := newTarget(t, ctx, map[string]string{"username": owner, "password": pw0},
			yaml+"      role: "+owner+"\n      strategy: alternating-users\n      adminSecret: {namespace: %NS%, name: pg-admin}\n",
			func(ns string) { pgtest.CopyAdminSecret(t, ctx, devstack.kube, ns) })
		// The first rotation moves the consumer off the owner's own login,
		// which is never locked; the second, under kills, must lock _a.
		g := newCrashGates(tg.ns, tg.secret+"-2")
		g.db = db
		ws := newWorkers(t, tg.catalog, tg.taskQueue, true, g.all())
		ws.start()
		plainRotation(t, ctx, tg, workflows.TypeRotateDatabasePassword)
		userA, pwA := credentials(t, ctx, tg, tg.secret+"-2")
		if userA != users[0] {
			t.Fatalf("the first rotation logs in as %s, want %s", userA, users[0])
		}
		rolls := tg.replicaSets(ctx)

		st := crashRotation(t, ctx, tg, ws, g, workflows.TypeRotateDatabasePassword, backendSteps{apply: "ApplyPassword", verify: "VerifyLogin"})
		tg.assertOneLiveVersion(ctx, st.New.Name, rolls)
		userB, pwB := credentials(t, ctx, tg, st.New.Name)
		if userB != users[1] {
			t.Fatalf("the live Secret logs in as %s, want %s", userB, users[1])
		}
		if err := pgtest.CanLogin(ctx, userB, pwB); err != nil {
			t.Errorf("the live Secret's role %s does not log in: %v", userB, err)
		}
		if err := pgtest.CanLogin(ctx, userA, pwA); !postgres.IsAuthFailure(err) {
			t.Errorf("alternating-users: the retired role %s must be locked, got %v", userA, err)
		}
		ws.assertNoLeaks([]byte(pw0), []byte(pwA), []byte(pwB))
	})
}

// first runs the waits at once and returns the index of the first to
// return, and its error; the others are cancelled.
func first(ctx context.Context, waits ...func(context.Context) error) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		i   int
		err error
	}
	done := make(chan result, len(waits))
	for i, w := range waits {
		go func() { done <- result{i, w(ctx)} }()
	}
	r := <-done
	return r.i, r.err
}

// plainRotation rotates once without kills: rotate, grace, approve.
func plainRotation(t *testing.T, ctx context.Context, tg *target, workflowType string) {
	t.Helper()
	id := workflows.WorkflowID(tg.name)
	run, err := devstack.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tg.taskQueue},
		workflowType, workflows.RotateInput{Target: tg.name, RequestedBy: "chaos"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := waitEvent(ctx, devstack.temporal, id, "grace", stepReached(workflows.StepGrace)); err != nil {
		t.Fatal(err)
	}
	if err := devstack.temporal.SignalWorkflow(ctx, id, "", workflows.SignalApprove, workflows.Decision{By: "chaos", Reason: "crash test"}); err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("rotation without kills: %v", err)
	}
}

func randomKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 48)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// pgTarget starts the target's database proxy and returns the catalog
// lines that point the worker at it.
func pgTarget(t *testing.T) (*dbProxy, string) {
	t.Helper()
	s := pgtest.Server()
	p, err := startDBProxy(net.JoinHostPort(s.Host, strconv.Itoa(s.Port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return p, fmt.Sprintf("    kind: postgres\n    postgres:\n      host: 127.0.0.1\n      port: %d\n      database: %s\n      sslMode: %s\n",
		p.port(), s.Database, s.SSLMode)
}

func credentials(t *testing.T, ctx context.Context, tg *target, secret string) (string, string) {
	t.Helper()
	data, ok := tg.secretData(ctx, secret)
	if !ok {
		t.Fatalf("Secret %s does not exist", secret)
	}
	return string(data["username"]), string(data["password"])
}
