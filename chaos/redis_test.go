package chaos

import (
	"context"
	"testing"
	"time"

	"rotator/internal/redistest"
	"rotator/redisacl"
	"rotator/workflows"
)

// TestCrashAtEveryStepRedis kills the worker at every step of a Redis
// password rotation, the worker reaching the server through a proxy that
// holds verify's login, and checks that it ends with one live version, the
// ACL user holding only its password, and no password in the logs.
func TestCrashAtEveryStepRedis(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	admin := redistest.Admin(t, ctx)
	user := "chaos_" + randomSuffix()
	pw0 := redistest.CreateUser(t, ctx, admin, user)
	db, err := startDBProxy(redistest.Server().Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.close)
	tg := newTarget(t, ctx, map[string]string{"username": user, "password": pw0},
		redistest.Target(db.addr(), user, "%NS%", ""), func(ns string) {
			if err := redistest.AdminSecret(ctx, devstack.kube, ns); err != nil {
				t.Fatal(err)
			}
		})
	g := newCrashGates(tg.ns, tg.secret)
	g.db = db
	ws := newWorkers(t, tg.catalog, tg.taskQueue, true, g.all())
	rolls := tg.replicaSets(ctx)

	st := crashRotation(t, ctx, tg, ws, g, workflows.TypeRotateRedisPassword, backendSteps{apply: "ApplyRedisPassword", verify: "VerifyRedisLogin"})
	tg.assertOneLiveVersion(ctx, st.New.Name, rolls)
	got, pw1 := credentials(t, ctx, tg, st.New.Name)
	if got != user || pw1 == pw0 {
		t.Fatalf("live Secret: user %q, password changed %v", got, pw1 != pw0)
	}
	hashes, err := redisacl.PasswordHashes(ctx, admin, user)
	if err != nil {
		t.Fatal(err)
	}
	if len(hashes) != 1 || hashes[0] != redisacl.Hash(pw1) {
		t.Errorf("the user has %d passwords after the rotation, want only the live Secret's", len(hashes))
	}
	if err := redistest.CanLogin(ctx, user, pw0); !redisacl.IsAuthFailure(err) {
		t.Errorf("the retired password must be refused, got %v", err)
	}
	ws.assertNoLeaks([]byte(pw0), []byte(pw1))
}
