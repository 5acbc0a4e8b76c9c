package activities

import (
	"fmt"
	"testing"

	"go.temporal.io/sdk/testsuite"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"rotator/catalog"
)

// redisTrustCatalog has one redis target whose server no test reaches:
// a step that got past its checks would fail retryably, not as refused.
func redisTrustCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Parse(fmt.Appendf(nil, `targets:
  - name: cache
    kind: redis
    namespace: %[1]s
    secret: cache
    redis: {address: "127.0.0.1:1", user: app, adminSecret: {namespace: %[1]s, name: redis-admin}, urlKey: REDIS_URL}
`, testNS))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// redisPlanFor is the plan preflight makes of the cache target.
func redisPlanFor(t *testing.T, c *catalog.Catalog) Plan {
	t.Helper()
	tg, err := c.Target("cache")
	if err != nil {
		t.Fatal(err)
	}
	return Plan{Target: tg.Name, Kind: tg.Kind, Namespace: tg.Namespace, Base: tg.Secret, Key: tg.Key, NextVersion: 2,
		Current: SecretRef{Namespace: tg.Namespace, Name: tg.Secret, Version: 1}, KindPlans: KindPlans{Redis: redisPlanOf(tg)}}
}

func TestRedisPlanRefusesEachForgedField(t *testing.T) {
	c := redisTrustCatalog(t)
	if _, err := checkPlan(c, redisPlanFor(t, c)); err != nil {
		t.Fatalf("preflight's plan: %v", err)
	}
	for _, tc := range []struct {
		field string
		forge func(p *Plan)
	}{
		{"redis.address", func(p *Plan) { p.Redis.Server.Addr = "attacker.example:6379" }},
		{"redis.plaintext", func(p *Plan) { p.Redis.Server.TLS = false }},
		{"redis.tls.caFile", func(p *Plan) { p.Redis.Server.CAFile = "/tmp/attacker-ca.pem" }},
		{"redis.tls.serverName", func(p *Plan) { p.Redis.Server.ServerName = "attacker.example" }},
		{"redis.user", func(p *Plan) { p.Redis.User = "default" }},
		{"redis.urlKey", func(p *Plan) { p.Redis.URLKey = "password" }},
		{"redis.persist", func(p *Plan) { p.Redis.Persist = "none" }},
		{"postgres", func(p *Plan) { p.Postgres = &PostgresPlan{} }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			p := redisPlanFor(t, c)
			tc.forge(&p)
			_, err := checkPlan(c, p)
			wantRefused(t, err, tc.field)
		})
	}
}

// TestRedisStepsRefuseForgedInputs: a step given a version that is not the
// target's, or a plan that is not the catalog's, is refused having read
// Secrets at most, before it connects to any server.
func TestRedisStepsRefuseForgedInputs(t *testing.T) {
	c := redisTrustCatalog(t)
	admin := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "redis-admin", Namespace: testNS},
		Data: map[string][]byte{"username": []byte("admin"), "password": []byte("admin-pw")}}
	unlabelled := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cache-7", Namespace: testNS},
		Data: map[string][]byte{"username": []byte("app"), "password": []byte("pw")}}
	otherUser := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cache-2", Namespace: testNS,
		Labels: map[string]string{LabelTarget: "cache", LabelStage: StagePending}},
		Data: map[string][]byte{"username": []byte("default"), "password": []byte("pw")}}
	kube := fake.NewClientset(admin, unlabelled, otherUser)
	r := &Redis{Kube: kube, Catalog: c}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(r)
	for _, tc := range []struct {
		activity any
		field    string
		forge    func(in *RedisInput)
	}{
		// The admin Secret as a version: its password would be added to
		// the user, or sent in AUTH.
		{r.ApplyRedisPassword, "new.name", func(in *RedisInput) { in.New.Name = "redis-admin" }},
		{r.ApplyRedisPassword, "redis.address", func(in *RedisInput) { in.Plan.Redis.Server.Addr = "attacker.example:6379" }},
		{r.ApplyRedisPassword, "labelled rotator.dev/target", func(in *RedisInput) { in.New.Name = "cache-7" }},
		{r.ApplyRedisPassword, "not as redis.user", func(in *RedisInput) {}},
		{r.VerifyRedisLogin, "redis.plaintext", func(in *RedisInput) { in.Plan.Redis.Server.TLS = false }},
		{r.VerifyRedisLogin, "namespace", func(in *RedisInput) { in.Plan.Namespace = "other" }},
		{r.RemoveNewRedisPassword, "redis.user", func(in *RedisInput) { in.Plan.Redis.User = "default" }},
		{r.RemoveOldRedisPassword, "old.name", func(in *RedisInput) { in.Old.Name = "redis-admin" }},
		{r.RemoveOldRedisPassword, "is not the one version labelled current", func(in *RedisInput) {}},
		{r.PreflightRedis, "redis.persist", func(in *RedisInput) { in.Plan.Redis.Persist = "none" }},
	} {
		kube.ClearActions()
		in := RedisInput{Plan: redisPlanFor(t, c), Old: SecretRef{Name: "cache"}, New: SecretRef{Name: "cache-2"}}
		tc.forge(&in)
		var err error
		if tc.field == "redis.persist" {
			_, err = env.ExecuteActivity(tc.activity, in.Plan)
		} else {
			_, err = env.ExecuteActivity(tc.activity, in)
		}
		wantRefused(t, err, tc.field)
		for _, v := range verbs(kube) {
			if v != "get secrets" && v != "list secrets" {
				t.Fatalf("%s: requests %v", tc.field, verbs(kube))
			}
		}
	}
}

// TestRedisRemoveNeverTakesTheCurrentPassword: which version's password a
// rollback removes comes from the input; one that names the version
// labelled current, or another holding its password, is refused before
// the server is reached.
func TestRedisRemoveNeverTakesTheCurrentPassword(t *testing.T) {
	c := redisTrustCatalog(t)
	labels := func(stage string) map[string]string {
		return map[string]string{LabelTarget: "cache", LabelStage: stage}
	}
	current := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cache-3", Namespace: testNS, Labels: labels(StageCurrent)},
		Data: map[string][]byte{"username": []byte("app"), "password": []byte("pw-3")}}
	copyOf := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cache-4", Namespace: testNS, Labels: labels(StagePending)},
		Data: map[string][]byte{"username": []byte("app"), "password": []byte("pw-3")}}
	r := &Redis{Kube: fake.NewClientset(current, copyOf), Catalog: c}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(r)
	plan := redisPlanFor(t, c)
	_, err := env.ExecuteActivity(r.RemoveNewRedisPassword, RedisInput{Plan: plan, Old: SecretRef{Name: "cache-2"}, New: SecretRef{Name: "cache-3"}})
	wantRefused(t, err, "cache-3 is the current version")
	_, err = env.ExecuteActivity(r.RemoveNewRedisPassword, RedisInput{Plan: plan, Old: SecretRef{Name: "cache-3"}, New: SecretRef{Name: "cache-4"}})
	wantRefused(t, err, "is also that of the current version cache-3")
}
