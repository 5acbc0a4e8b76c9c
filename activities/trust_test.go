package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"rotator/catalog"
	"rotator/postgres"
	"rotator/providers/providertest"
)

// These tests play a rogue workflow on the worker's task queue: it can
// schedule any activity with any input. Each forged field must be refused,
// non-retryable, naming the field, before a request changes anything.

// trustCatalog has one target of each kind the guard re-derives fields of.
func trustCatalog(t *testing.T, openaiURL string) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Parse(fmt.Appendf(nil, `targets:
  - name: t
    kind: jwt
    namespace: %[1]s
    secret: jwt
    jwt: {bytes: 32}
  - name: db
    kind: postgres
    namespace: %[1]s
    secret: db
    postgres: {host: db.%[1]s.svc, port: 5432, database: app, sslMode: verify-full, role: app, strategy: alternating-users,
      users: [app_a, app_b], adminSecret: {namespace: %[1]s, name: db-admin}}
  - name: llm
    kind: apikeys
    namespace: %[1]s
    secret: keys
    consumers: [{kind: Deployment, name: app}]
    apiKeys:
      providers: [{name: openai, baseURL: %[2]q, admin: {secret: {namespace: %[1]s, name: admin}, projectID: proj_1}}]
  - name: cert
    kind: tls
    namespace: %[1]s
    secret: cert
    vault: {path: certs/cert}
    tls: {role: web, commonName: web.example, dnsNames: [www.example], handshake: {address: "127.0.0.1:8443"}}
`, testNS, openaiURL))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// planOf is the plan preflight makes of a target, every step done.
func planOf(t *testing.T, c *catalog.Catalog, name string) Plan {
	t.Helper()
	tg, err := c.Target(name)
	if err != nil {
		t.Fatal(err)
	}
	p := Plan{Target: tg.Name, Kind: tg.Kind, Namespace: tg.Namespace, Base: tg.Secret, Key: tg.Key, NextVersion: 2,
		Current: SecretRef{Namespace: tg.Namespace, Name: tg.Secret, Version: 1}, Vault: vaultPlanOf(tg), KindPlans: KindPlans{TLS: tlsPlanOf(tg)}}
	if tg.JWT != nil {
		p.JWTBytes, p.DualKey = tg.JWT.Bytes, tg.JWT.DualKey
	}
	if pg := tg.Postgres; pg != nil {
		p.Postgres = &PostgresPlan{Server: postgres.Server{Host: pg.Host, Port: pg.Port, Database: pg.Database, SSLMode: pg.SSLMode},
			Strategy: pg.Strategy, Role: pg.Role, Users: pg.Users, Username: pg.Users[1]}
	}
	if k := tg.APIKeys; k != nil {
		p.APIKeys = &APIKeysPlan{StagingSecret: StagingSecretName(tg.Secret)}
		for _, pr := range k.Providers {
			p.APIKeys.Providers = append(p.APIKeys.Providers, ProviderPlan{Name: pr.Name, Key: pr.Key, BaseURL: pr.BaseURL, Admin: pr.Admin != nil,
				OldKeyID: map[bool]string{true: "key_old"}[pr.Admin != nil]})
		}
		p.Consumers = []Workload{{Kind: "Deployment", Name: "app"}}
	}
	return p
}

// wantRefused fails unless err is a non-retryable bad input that names the
// field and says the input was refused.
func wantRefused(t *testing.T, err error, field string) {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || app.Type() != ErrBadInput {
		t.Fatalf("err = %v, want a non-retryable %s", err, ErrBadInput)
	}
	if !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("err = %v, want it to name %q and say the input was refused", err, field)
	}
}

func TestCheckPlanAcceptsWhatPreflightPlans(t *testing.T) {
	c := trustCatalog(t, "http://127.0.0.1:1")
	for _, name := range []string{"t", "db", "llm", "cert"} {
		if _, err := checkPlan(c, planOf(t, c, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Preflight's own plan, read off a cluster, passes too.
	k := &Kube{Client: fake.NewClientset(secret("jwt", "u1", nil), deployment("jwt", "7", nil)), Catalog: c}
	p := execute[Plan](t, activityEnv(t, k), k.Preflight, PreflightInput{Target: "t"})
	if _, err := checkPlan(c, p); err != nil {
		t.Fatalf("preflight's plan: %v", err)
	}
}

func TestCheckPlanRefusesEachForgedField(t *testing.T) {
	c := trustCatalog(t, "http://127.0.0.1:1")
	for _, tc := range []struct {
		target, field string
		forge         func(p *Plan)
	}{
		{"t", "target", func(p *Plan) { p.Target = "nope" }},
		{"t", "kind", func(p *Plan) { p.Kind = catalog.KindPostgres }},
		{"t", "namespace", func(p *Plan) { p.Namespace = "kube-system" }},
		{"t", "secret (base)", func(p *Plan) { p.Base = "db-admin" }},
		{"t", "key", func(p *Plan) { p.Key = "password" }},
		{"t", "nextVersion", func(p *Plan) { p.NextVersion = 0 }},
		{"t", "current.name", func(p *Plan) { p.Current.Name = "db-admin" }},
		{"t", "current.name", func(p *Plan) { p.Current.Name = "jwt-02" }},
		{"t", "current.name", func(p *Plan) { p.Current.Name = "jwt-2x" }},
		{"t", "current.namespace", func(p *Plan) { p.Current.Namespace = "other" }},
		{"t", "ingresses", func(p *Plan) { p.Ingresses = []string{"web"} }},
		{"t", "jwt.bytes", func(p *Plan) { p.JWTBytes = 1 }},
		{"t", "jwt.dualKey", func(p *Plan) { p.DualKey = true }},
		{"t", "vault", func(p *Plan) { p.Vault = &VaultPlan{Mount: "secret", Path: "other/app"} }},
		{"cert", "vault", func(p *Plan) { p.Vault.Path = "certs/other" }},
		{"cert", "tls.commonName", func(p *Plan) { p.TLS.CommonName = "bank.example" }},
		{"cert", "tls.dnsNames", func(p *Plan) { p.TLS.DNSNames = append(p.TLS.DNSNames, "evil.example") }},
		{"cert", "tls.handshake.address", func(p *Plan) { p.TLS.Handshake = "10.0.0.1:443" }},
		{"cert", "tls.role", func(p *Plan) { p.TLS.Role = "any" }},
		{"db", "postgres.host", func(p *Plan) { p.Postgres.Server.Host = "attacker.example" }},
		{"db", "postgres.port", func(p *Plan) { p.Postgres.Server.Port = 6432 }},
		{"db", "postgres.database", func(p *Plan) { p.Postgres.Server.Database = "postgres" }},
		{"db", "postgres.sslMode", func(p *Plan) { p.Postgres.Server.SSLMode = "prefer" }},
		{"db", "postgres.strategy", func(p *Plan) { p.Postgres.Strategy = catalog.StrategySingleUser }},
		{"db", "postgres.role", func(p *Plan) { p.Postgres.Role = "postgres" }},
		{"db", "postgres.users", func(p *Plan) { p.Postgres.Users = []string{"app_a", "postgres"} }},
		{"db", "postgres username", func(p *Plan) { p.Postgres.Username = "postgres" }},
		{"db", "postgres.dsnKey", func(p *Plan) { p.Postgres.DSNKey = "password" }},
		{"db", "apiKeys", func(p *Plan) { p.APIKeys = &APIKeysPlan{} }},
		{"llm", "consumers[0]", func(p *Plan) { p.Consumers = []Workload{{Kind: "Deployment", Name: "other"}} }},
		{"llm", "apiKeys.providers[0].baseURL", func(p *Plan) { p.APIKeys.Providers[0].BaseURL = "https://attacker.example" }},
		{"llm", "apiKeys.providers[0].name", func(p *Plan) { p.APIKeys.Providers[0].Name = "anthropic" }},
		{"llm", "apiKeys.providers[0].key", func(p *Plan) { p.APIKeys.Providers[0].Key = "other" }},
		{"llm", "apiKeys.providers", func(p *Plan) { p.APIKeys.Providers = nil }},
		{"llm", "apiKeys.stagingSecret", func(p *Plan) { p.APIKeys.StagingSecret = "db-admin" }},
		{"llm", "postgres", func(p *Plan) { p.Postgres = &PostgresPlan{} }},
	} {
		t.Run(tc.target+"/"+tc.field, func(t *testing.T) {
			p := planOf(t, c, tc.target)
			tc.forge(&p)
			_, err := checkPlan(c, p)
			if tc.field == "target" {
				// An unknown target says so and lists the known ones.
				if err == nil || !strings.Contains(err.Error(), "is not in the catalog") {
					t.Fatalf("err = %v", err)
				}
				return
			}
			wantRefused(t, err, tc.field)
		})
	}
}

func TestVersionOf(t *testing.T) {
	tg := catalog.Target{Secret: "app-jwt"}
	for name, want := range map[string]int{"app-jwt": 1, "app-jwt-2": 2, "app-jwt-17": 17,
		"app-jwt-": 0, "app-jwt-0": 0, "app-jwt-07": 0, "app-jwt-2-x": 0, "app-jwt-staged": 0, "app": 0, "app-jwtx-2": 0, "db-admin": 0} {
		if got, ok := versionOf(tg, name); got != want || ok != (want > 0) {
			t.Errorf("versionOf(%q) = %d, %v; want %d", name, got, ok, want)
		}
	}
}

func TestStageRefusesForgedInputsBeforeAnyChange(t *testing.T) {
	other := secret("jwt", "u9", nil)
	other.Namespace = "other"
	foreign := secret("jwt", "u1", map[string]string{LabelTarget: "someone-else"})
	for _, tc := range []struct {
		name, field string
		objects     []*corev1.Secret
		forge       func(p *Plan)
		requests    string
	}{
		{"another namespace", "namespace", []*corev1.Secret{other}, func(p *Plan) { p.Namespace = "other" }, ""},
		{"a name outside the pattern", "current.name", []*corev1.Secret{secret("db-admin", "u2", nil)}, func(p *Plan) { p.Current.Name = "db-admin" }, ""},
		{"a version labelled for another target", "labelled", []*corev1.Secret{foreign}, func(*Plan) {}, "get secrets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientset()
			for _, s := range tc.objects {
				if _, err := c.CoreV1().Secrets(s.Namespace).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			c.ClearActions()
			k := &Kube{Client: c, Catalog: jwtCatalog()}
			p := Plan{Target: "t", Kind: catalog.KindJWT, Namespace: testNS, Base: "jwt", Key: "secret", NextVersion: 2, KindPlans: KindPlans{JWTBytes: 32},
				Current: SecretRef{Name: "jwt", Version: 1}}
			tc.forge(&p)
			_, err := activityEnv(t, k).ExecuteActivity(k.StageSecret, StageInput{Plan: p})
			wantRefused(t, err, tc.field)
			if got := strings.Join(verbs(c), ","); got != tc.requests {
				t.Fatalf("requests = %q, want %q: nothing created", got, tc.requests)
			}
		})
	}
}

func TestRetireTouchesOnlyLabelledVersionsOfATarget(t *testing.T) {
	ctx := context.Background()
	inOther := secret("jwt-3", "u3", map[string]string{LabelTarget: "t"})
	inOther.Namespace = "other"
	c := fake.NewClientset(secret("jwt-9", "u9", nil), secret("db-admin", "u1", nil), inOther,
		secret("jwt-4", "u4", map[string]string{LabelTarget: "other-target"}), secret("jwt-5", "u5", map[string]string{LabelTarget: "t"}))
	k := &Kube{Client: c, Catalog: jwtCatalog()}
	env := activityEnv(t, k)
	for _, tc := range []struct {
		ref        SecretRef
		keep       bool
		field      string
		noRequests bool
	}{
		{SecretRef{Namespace: testNS, Name: "db-admin"}, false, "is no version of a target", true},
		{SecretRef{Namespace: "other", Name: "jwt-3"}, false, "is no version of a target", true},
		{SecretRef{Namespace: testNS, Name: "jwt-9"}, false, "labelled rotator.dev/target=\"\"", false},
		{SecretRef{Namespace: testNS, Name: "jwt-4"}, false, "labelled rotator.dev/target=\"other-target\"", false},
		{SecretRef{Namespace: testNS, Name: "jwt-9"}, true, "labelled rotator.dev/target=\"\"", false},
	} {
		c.ClearActions()
		_, err := env.ExecuteActivity(k.RetireSecret, RetireInput{Secret: tc.ref, Keep: tc.keep})
		wantRefused(t, err, tc.field)
		for _, v := range verbs(c) {
			if tc.noRequests || !strings.HasPrefix(v, "list ") && !strings.HasPrefix(v, "get ") {
				t.Fatalf("%s: requests %v after a refused input", tc.ref.Name, verbs(c))
			}
		}
	}
	for _, s := range []struct{ ns, name string }{{testNS, "jwt-9"}, {testNS, "db-admin"}, {"other", "jwt-3"}, {testNS, "jwt-4"}} {
		if got, err := c.CoreV1().Secrets(s.ns).Get(ctx, s.name, metav1.GetOptions{}); err != nil || got.Labels[LabelStage] != "" {
			t.Fatalf("Secret %s/%s after refused retires: %v, labels %v", s.ns, s.name, err, got.Labels)
		}
	}
	// The target's own labelled version is retired as before.
	if _, err := env.ExecuteActivity(k.RetireSecret, RetireInput{Secret: SecretRef{Namespace: testNS, Name: "jwt-5", UID: "u5"}}); err != nil {
		t.Fatal(err)
	}
}

func TestPromoteRefusesForgedInputsWithoutARequest(t *testing.T) {
	for _, tc := range []struct {
		field string
		forge func(in *PromoteInput)
	}{
		{"target", func(in *PromoteInput) { in.Target = "" }},
		{"namespace", func(in *PromoteInput) { in.Namespace = "other" }},
		{"from.name", func(in *PromoteInput) { in.From.Name = "db-admin" }},
		{"to.name", func(in *PromoteInput) { in.To.Name = "tls-wildcard" }},
		{"to.namespace", func(in *PromoteInput) { in.To.Namespace = "other" }},
		{"ingresses", func(in *PromoteInput) { in.Ingresses = []string{"web"} }},
	} {
		d := deployment("jwt", "7", nil)
		c := fake.NewClientset(d, secret("jwt", "u1", nil))
		k := &Kube{Client: c, Catalog: jwtCatalog()}
		in := promoteInput(seenOf(d, "jwt"))
		tc.forge(&in)
		_, err := activityEnv(t, k).ExecuteActivity(k.Promote, in)
		if tc.field == "target" {
			if err == nil || !strings.Contains(err.Error(), "target: is required") {
				t.Fatalf("err = %v", err)
			}
		} else {
			wantRefused(t, err, tc.field)
		}
		if n := len(c.Actions()); n != 0 {
			t.Fatalf("%s: %d requests after a refused input: %v", tc.field, n, verbs(c))
		}
	}
}

func TestDatabaseStepsRefuseForgedInputs(t *testing.T) {
	c := trustCatalog(t, "http://127.0.0.1:1")
	admin := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db-admin", Namespace: testNS},
		Data: map[string][]byte{"username": []byte("postgres"), "password": []byte("admin-pw")}}
	unlabelled := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db-7", Namespace: testNS},
		Data: map[string][]byte{"username": []byte("app_b"), "password": []byte("pw")}}
	kube := fake.NewClientset(admin, unlabelled)
	p := &Postgres{Kube: kube, Catalog: c}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(p)
	for _, tc := range []struct {
		activity any
		field    string
		forge    func(in *DatabaseInput)
	}{
		// The attack of the issue: the admin Secret as "old", a host of
		// the caller's choosing.
		{p.ApplyPassword, "old.name", func(in *DatabaseInput) { in.Old.Name = "db-admin" }},
		{p.ApplyPassword, "postgres.host", func(in *DatabaseInput) { in.Plan.Postgres.Server.Host = "attacker.example" }},
		{p.ApplyPassword, "postgres.sslMode", func(in *DatabaseInput) { in.Plan.Postgres.Server.SSLMode = "disable" }},
		{p.ApplyPassword, "labelled rotator.dev/target", func(in *DatabaseInput) { in.New.Name = "db-7" }},
		{p.RestorePassword, "new.name", func(in *DatabaseInput) { in.New.Name = "db-admin" }},
		{p.VerifyLogin, "namespace", func(in *DatabaseInput) { in.Plan.Namespace = "other" }},
		{p.LockPreviousUser, "postgres.users", func(in *DatabaseInput) { in.Plan.Postgres.Users = []string{"app_a", "postgres"} }},
		{p.LockNewUser, "postgres username", func(in *DatabaseInput) { in.Plan.Postgres.Username = "postgres" }},
	} {
		kube.ClearActions()
		in := DatabaseInput{Plan: planOf(t, c, "db"), Old: SecretRef{Name: "db"}, New: SecretRef{Name: "db-2"}}
		tc.forge(&in)
		_, err := env.ExecuteActivity(tc.activity, in)
		wantRefused(t, err, tc.field)
		for _, v := range verbs(kube) {
			if v != "get secrets" {
				t.Fatalf("%s: requests %v", tc.field, verbs(kube))
			}
		}
	}
}

func TestVaultLabelsMoveOnlyOnACatalogPath(t *testing.T) {
	c := trustCatalog(t, "http://127.0.0.1:1")
	// No Vault client: a call that got past the guard would panic.
	v := &Vault{Catalog: c}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(v)
	for _, in := range []VaultInput{
		{Vault: VaultPlan{Mount: "secret", Path: "certs/other"}, Version: 1},
		{Vault: VaultPlan{Mount: "kv", Path: "certs/cert"}, Version: 1},
	} {
		_, err := env.ExecuteActivity(v.PromoteVersion, in)
		wantRefused(t, err, "vault")
		_, err = env.ExecuteActivity(v.RollbackVersion, in)
		wantRefused(t, err, "vault")
	}
	if _, err := checkVault(c, VaultPlan{Mount: catalog.DefaultVaultMount, Path: "certs/cert"}); err != nil {
		t.Fatalf("the catalog's own path: %v", err)
	}
}

func TestReadOnlyStepsLookOnlyIntoTargetNamespaces(t *testing.T) {
	k := &Kube{Client: fake.NewClientset(), Catalog: jwtCatalog()}
	env := activityEnv(t, k)
	_, err := env.ExecuteActivity(k.VerifyConsumers, VerifyInput{Namespace: "kube-system"})
	wantRefused(t, err, "namespace")
	_, err = env.ExecuteActivity(k.AwaitRollout, AwaitInput{Namespace: "kube-system", Target: "t"})
	wantRefused(t, err, "namespace")
	_, err = env.ExecuteActivity(k.AwaitRollout, AwaitInput{Namespace: "kube-system"})
	wantRefused(t, err, "namespace")
}

// Revoking takes only the key ids the worker recorded: preflight records
// the id on the version that holds the key, stage carries it to the new
// version, and retire revokes that one and refuses any other.
func TestRevokeTakesOnlyRecordedKeyIDs(t *testing.T) {
	ctx := context.Background()
	openai := providertest.NewOpenAI(providertest.WithProjectID("proj_1"))
	defer openai.Close()
	const adminKey = "sk-admin-0123456789abcdefghijklmnopqrstuvwxyz"
	openai.AddAdminKey(adminKey)
	oldKey, victimKey := "sk-proj-old-0123456789abcdefghij", "sk-ant-vic-abcdefghij0123456789wxyz"
	oldID, victimID := openai.AddKey(oldKey), openai.AddKey(victimKey)
	c := trustCatalog(t, openai.URL)
	kube := fake.NewClientset(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "admin", Namespace: testNS}, Data: map[string][]byte{catalog.DefaultAdminKey: []byte(adminKey)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "keys", Namespace: testNS}, Data: map[string][]byte{"openai-api-key": []byte(oldKey)}})
	a := &APIKeys{Kube: kube, Catalog: c}
	k := &Kube{Client: kube, Catalog: c}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	env.RegisterActivity(k)

	plan := planOf(t, c, "llm")
	plan.APIKeys = nil
	plan = execute[Plan](t, env, a.PreflightKeys, plan)
	if plan.APIKeys.Providers[0].OldKeyID != oldID {
		t.Fatalf("preflight found key id %q, want %s", plan.APIKeys.Providers[0].OldKeyID, oldID)
	}
	forged := plan
	forged.APIKeys = &APIKeysPlan{StagingSecret: plan.APIKeys.StagingSecret, Providers: []ProviderPlan{plan.APIKeys.Providers[0]}}
	forged.APIKeys.Providers[0].OldKeyID = victimID
	// Before the rotation staged a version, no id is recorded at all.
	_, err := env.ExecuteActivity(a.RevokeOldKeys, forged)
	wantRefused(t, err, "apiKeys.providers[0].oldKeyID")

	// Stage carries the ids preflight recorded on the current version.
	if _, err := kube.CoreV1().Secrets(testNS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "keys-staged", Namespace: testNS,
		Labels: map[string]string{LabelTarget: "llm", LabelStage: StageStaged}}, Data: map[string][]byte{"openai-api-key": []byte("sk-proj-new-0123456789abcdefghij")}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	staged := execute[SecretRef](t, env, k.StageSecret, StageInput{Plan: plan})
	got, err := kube.CoreV1().Secrets(testNS).Get(ctx, staged.Name, metav1.GetOptions{})
	if err != nil || got.Annotations[AnnotationReplacedKeyIDs] != fmt.Sprintf(`{"openai":%q}`, oldID) {
		t.Fatalf("staged version %v annotations %v: want the replaced key's id recorded", err, got.Annotations)
	}
	_, err = env.ExecuteActivity(a.RevokeOldKeys, forged)
	wantRefused(t, err, "apiKeys.providers[0].oldKeyID")
	if openai.KeyStatus(victimID) != providertest.StatusActive || openai.KeyStatus(oldID) != providertest.StatusActive {
		t.Fatalf("after refused revokes: victim %s, old %s; want both active", openai.KeyStatus(victimID), openai.KeyStatus(oldID))
	}
	// The recorded id is revoked.
	if _, err := env.ExecuteActivity(a.RevokeOldKeys, plan); err != nil {
		t.Fatal(err)
	}
	if openai.KeyStatus(oldID) != providertest.StatusDeleted || openai.KeyStatus(victimID) != providertest.StatusActive {
		t.Fatalf("after the revoke: old %s, victim %s", openai.KeyStatus(oldID), openai.KeyStatus(victimID))
	}
}

// TestPlanFromBeforeVerifyFull: a rotation planned when the default
// sslMode was prefer goes on with the catalog's verify-full; a catalog
// that writes its mode, or any other weaker mode, still refuses.
func TestPlanFromBeforeVerifyFull(t *testing.T) {
	c, err := catalog.Parse([]byte(`targets:
  - {name: d, kind: postgres, namespace: ns, secret: db, postgres: {host: db.ns.svc, role: app}}
  - {name: w, kind: postgres, namespace: ns, secret: db2, postgres: {host: db.ns.svc, role: app2, sslMode: verify-full}}
`))
	if err != nil {
		t.Fatal(err)
	}
	plan := func(target, role, mode string) *PostgresPlan {
		tg, _ := c.Target(target)
		p := tg.Postgres
		return &PostgresPlan{Server: postgres.Server{Host: p.Host, Port: p.Port, Database: p.Database, SSLMode: mode},
			Strategy: p.Strategy, Role: p.Role, Users: p.Users, Username: role, DSNSSLMode: p.DSNSSLMode}
	}
	d, _ := c.Target("d")
	old := plan("d", "app", "prefer")
	if err := checkPostgres(d, Plan{KindPlans: KindPlans{Postgres: old}}); err != nil {
		t.Fatalf("a plan from before the default changed: %v", err)
	}
	if old.Server.SSLMode != "verify-full" {
		t.Errorf("the connection would use %s, want the catalog's verify-full", old.Server.SSLMode)
	}
	if err := checkPostgres(d, Plan{KindPlans: KindPlans{Postgres: plan("d", "app", "disable")}}); err == nil || !strings.Contains(err.Error(), "postgres.sslMode") {
		t.Errorf("disable against the default: %v", err)
	}
	w, _ := c.Target("w")
	if err := checkPostgres(w, Plan{KindPlans: KindPlans{Postgres: plan("w", "app2", "prefer")}}); err == nil || !strings.Contains(err.Error(), "postgres.sslMode") {
		t.Errorf("prefer against a written verify-full: %v", err)
	}
}

// TestLockNeverTakesTheCurrentLogin: which role is the previous one comes
// from the input; a forged one that names the login of the version
// labelled current is refused before the database is reached (this
// Postgres has no server to reach).
func TestLockNeverTakesTheCurrentLogin(t *testing.T) {
	c := trustCatalog(t, "http://127.0.0.1:1")
	current := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db-3", Namespace: testNS,
		Labels: map[string]string{LabelTarget: "db", LabelStage: StageCurrent}},
		Data: map[string][]byte{"username": []byte("app_b"), "password": []byte("pw")}}
	p := &Postgres{Kube: fake.NewClientset(current), Catalog: c}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(p)
	plan := planOf(t, c, "db")
	plan.Postgres.Username = "app_a"
	_, err := env.ExecuteActivity(p.LockPreviousUser, DatabaseInput{Plan: plan,
		Old: SecretRef{Name: "db-2", Username: "app_b"}, New: SecretRef{Name: "db-4", Username: "app_a"}})
	wantRefused(t, err, "is the login of the current version db-3")
}
