package deploy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// devstackEnv is what the integration tests take from `source .devstack/env`.
type devstackEnv struct {
	dir     string // ROTATOR_DEVSTACK
	kubectl string
	cfg     *rest.Config
	kube    kubernetes.Interface
}

// needDevstack skips under -short and fails, saying what to do, when the
// devstack's environment is missing.
func needDevstack(t *testing.T) devstackEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the devstack; runs without -short (make test-e2e)")
	}
	dir := os.Getenv("ROTATOR_DEVSTACK")
	if dir == "" {
		t.Fatal("ROTATOR_DEVSTACK is unset: start the devstack (make devstack), then `source .devstack/env`; or run go test -short")
	}
	kubectl := os.Getenv("KUBECTL")
	if kubectl == "" {
		kubectl = filepath.Join(dir, "bin", "kubectl")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		t.Fatalf("KUBECONFIG (from .devstack/env): %v", err)
	}
	cfg.QPS, cfg.Burst = 100, 200 // many access reviews, one after another
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return devstackEnv{dir: dir, kubectl: kubectl, cfg: cfg, kube: kube}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func randomID(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// run runs a command, failing the test with its output if it fails.
func run(t *testing.T, stdin []byte, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = root
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}

// TestPostgresMajorMatchesDevstack: compose runs the PostgreSQL major
// version the devstack's data directory was made by.
func TestPostgresMajorMatchesDevstack(t *testing.T) {
	ds := needDevstack(t)
	raw, err := os.ReadFile(filepath.Join(ds.dir, "postgres", "data", "PG_VERSION"))
	if err != nil {
		t.Fatalf("the devstack's PostgreSQL: %v", err)
	}
	if got, want := strings.TrimSpace(string(raw)), version(t, "POSTGRES_MAJOR"); got != want {
		t.Errorf("the devstack runs PostgreSQL %s, deploy/versions.env POSTGRES_MAJOR=%s: change versions.env and docker-compose.yaml", got, want)
	}
}

// rendered is the output of kustomize as objects we can edit.
type rendered []map[string]any

func (r rendered) yaml(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, o := range r {
		y, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.Bytes()
}

// relocate moves every namespaced object, the Namespaces and the
// RoleBindings' subjects into test-unique namespaces (ns -> ns-dt-<id>), so
// the test neither touches the demo's rotator and llm-orchestrator nor
// collides with another run. It returns the mapping.
func relocate(t *testing.T, objs rendered, id string) map[string]string {
	t.Helper()
	to := map[string]string{}
	rename := func(ns string) string {
		if ns == "" {
			return ""
		}
		if _, ok := to[ns]; !ok {
			to[ns] = ns + "-dt-" + id
		}
		return to[ns]
	}
	for _, o := range objs {
		meta := o["metadata"].(map[string]any)
		if o["kind"] == "Namespace" {
			meta["name"] = rename(meta["name"].(string))
			continue
		}
		ns, _ := meta["namespace"].(string)
		if ns == "" {
			t.Fatalf("%s %s is cluster-scoped: deploy/base must hold namespaced objects only (and its Namespace)", o["kind"], meta["name"])
		}
		meta["namespace"] = rename(ns)
		if o["kind"] == "RoleBinding" {
			for _, s := range o["subjects"].([]any) {
				sub := s.(map[string]any)
				if n, ok := sub["namespace"].(string); ok {
					sub["namespace"] = rename(n)
				}
			}
		}
	}
	return to
}

// onKwok lets the Deployment's pods onto the devstack's kwok nodes, which
// carry a taint that keeps ordinary pods off (test only).
func onKwok(objs rendered) {
	for _, o := range objs {
		if o["kind"] != "Deployment" {
			continue
		}
		spec := o["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
		spec["tolerations"] = []any{map[string]any{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}}
		spec["nodeSelector"] = map[string]any{"type": "kwok"}
	}
}

// TestApplyToDevstack renders deploy/base with the devstack's kubectl,
// applies it (server-side) to the devstack's real kube-apiserver in fresh
// namespaces, waits for the worker's Deployment to roll out under the
// restricted Pod Security Standard, and asks the API server
// (SubjectAccessReview) what the worker's ServiceAccount may do: exactly
// what the activities need, in the catalog's namespaces, and nothing more.
// Then it runs deploy/vault/setup.sh against the devstack's Vault and logs
// in with the ServiceAccount.
func TestApplyToDevstack(t *testing.T) {
	ds := needDevstack(t)
	ctx := ctxFor(t)
	id := randomID(t)

	out := run(t, nil, nil, ds.kubectl, "kustomize", "deploy/base")
	var objs rendered
	for _, o := range parseManifests(t, "kubectl kustomize deploy/base", out) {
		var m map[string]any
		o.decode(t, &m)
		objs = append(objs, m)
	}
	to := relocate(t, objs, id)
	onKwok(objs)
	worker, target := to[workerNamespace], to["llm-orchestrator"]
	if worker == "" || target == "" {
		t.Fatalf("the rendered manifests name namespaces %v; want %s and llm-orchestrator", to, workerNamespace)
	}
	t.Cleanup(func() {
		for _, ns := range to {
			_ = ds.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		}
	})
	// The targets' namespaces are the application's, not deploy/base's: the
	// Roles go into namespaces that exist.
	for orig, ns := range to {
		if slices.ContainsFunc(objs, func(o map[string]any) bool {
			return o["kind"] == "Namespace" && o["metadata"].(map[string]any)["name"] == ns
		}) {
			continue
		}
		if _, err := ds.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: ns, Labels: map[string]string{"rotator.test/stands-for": orig}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	run(t, objs.yaml(t), nil, ds.kubectl, "apply", "--server-side", "--field-manager=rotator-deploy-test", "-f", "-")
	// Applying again changes nothing and fails nothing.
	run(t, objs.yaml(t), nil, ds.kubectl, "apply", "--server-side", "--field-manager=rotator-deploy-test", "-f", "-")

	t.Run("restricted pod security", func(t *testing.T) {
		d, err := ds.kube.AppsV1().Deployments(worker).Get(ctx, "rotator", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// A dry-run pod goes through Pod Security admission, which names
		// any violation, unlike a ReplicaSet that just stays empty.
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "rotator-psa-", Namespace: worker}, Spec: d.Spec.Template.Spec}
		if _, err := ds.kube.CoreV1().Pods(worker).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Fatalf("the worker's pod is refused in a namespace enforcing the restricted Pod Security Standard: %v", err)
		}
		run(t, nil, nil, ds.kubectl, "-n", worker, "rollout", "status", "deployment/rotator", "--timeout=120s")
		d, err = ds.kube.AppsV1().Deployments(worker).Get(ctx, "rotator", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Status.AvailableReplicas != *d.Spec.Replicas {
			t.Errorf("after rollout status, %d of %d replicas are available", d.Status.AvailableReplicas, *d.Spec.Replicas)
		}
	})

	sa := "system:serviceaccount:" + worker + ":" + workerServiceAccount
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + worker, "system:authenticated"}
	type check struct {
		ns, verb, group, resource, sub, name string
	}
	can := func(c check) (bool, string) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: sa, Groups: groups,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: c.ns, Verb: c.verb, Group: c.group, Resource: c.resource, Subresource: c.sub, Name: c.name},
		}}
		res, err := ds.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return res.Status.Allowed, res.Status.Reason
	}
	describe := func(c check) string {
		s := c.verb + " " + c.resource
		if c.sub != "" {
			s += "/" + c.sub
		}
		if c.group != "" {
			s += "." + c.group
		}
		if c.name != "" {
			s += " " + c.name
		}
		if c.ns == "" {
			return s + " cluster-wide"
		}
		return s + " in " + c.ns
	}

	t.Run("may", func(t *testing.T) {
		var checks []check
		for _, v := range []string{"get", "list", "create", "patch", "delete"} {
			checks = append(checks, check{ns: target, verb: v, resource: "secrets"})
		}
		for _, r := range []string{"deployments", "statefulsets", "daemonsets"} {
			for _, v := range []string{"get", "list", "watch", "patch"} {
				checks = append(checks, check{ns: target, verb: v, group: "apps", resource: r})
			}
		}
		for _, v := range []string{"get", "list", "patch"} {
			checks = append(checks, check{ns: target, verb: v, group: "networking.k8s.io", resource: "ingresses"})
		}
		for _, name := range []string{"rotator-postgres-admin", "rotator-redis-admin", "openai-admin", "anthropic-admin"} {
			checks = append(checks, check{ns: worker, verb: "get", resource: "secrets", name: name})
		}
		for _, c := range checks {
			if ok, reason := can(c); !ok {
				t.Errorf("the worker cannot %s, which the activities need (%s)", describe(c), reason)
			}
		}
	})

	t.Run("may not", func(t *testing.T) {
		var checks []check
		for _, ns := range []string{"kube-system", "default", "llm-orchestrator", "rotator", ""} {
			checks = append(checks, check{ns: ns, verb: "get", resource: "secrets", name: "rotator-postgres-admin"},
				check{ns: ns, verb: "list", resource: "secrets"})
		}
		for _, v := range []string{"watch", "update", "deletecollection"} {
			checks = append(checks, check{ns: target, verb: v, resource: "secrets"})
		}
		checks = append(checks,
			check{ns: worker, verb: "list", resource: "secrets"},
			check{ns: worker, verb: "get", resource: "secrets", name: "some-other-secret"},
			check{ns: worker, verb: "create", resource: "secrets"},
			check{ns: worker, verb: "delete", resource: "secrets", name: "rotator-postgres-admin"},
			check{ns: worker, verb: "get", resource: "configmaps"},
			check{ns: worker, verb: "create", resource: "serviceaccounts", sub: "token", name: workerServiceAccount},
			check{ns: target, verb: "delete", group: "apps", resource: "deployments"},
			check{ns: target, verb: "create", group: "apps", resource: "deployments"},
			check{ns: target, verb: "update", group: "apps", resource: "deployments"},
			check{ns: target, verb: "delete", group: "networking.k8s.io", resource: "ingresses"},
			check{ns: "", verb: "list", group: "apps", resource: "deployments"},
			check{ns: "", verb: "get", resource: "namespaces", name: target},
			check{ns: "", verb: "list", resource: "namespaces"},
			check{ns: "", verb: "create", group: "rbac.authorization.k8s.io", resource: "clusterrolebindings"},
			check{ns: "", verb: "bind", group: "rbac.authorization.k8s.io", resource: "clusterroles"},
			check{ns: "", verb: "escalate", group: "rbac.authorization.k8s.io", resource: "clusterroles"},
			check{ns: "", verb: "impersonate", resource: "serviceaccounts"},
		)
		for _, ns := range []string{target, worker} {
			checks = append(checks,
				check{ns: ns, verb: "create", resource: "pods"},
				check{ns: ns, verb: "create", resource: "pods", sub: "exec"},
				check{ns: ns, verb: "get", resource: "pods", sub: "log"},
			)
			for _, r := range []string{"roles", "rolebindings"} {
				for _, v := range []string{"create", "update", "patch", "delete", "bind", "escalate"} {
					checks = append(checks, check{ns: ns, verb: v, group: "rbac.authorization.k8s.io", resource: r})
				}
			}
		}
		for _, c := range checks {
			if ok, _ := can(c); ok {
				t.Errorf("the worker can %s: it must not", describe(c))
			}
		}
	})

	// The same answer from a real request made as the ServiceAccount.
	t.Run("impersonated", func(t *testing.T) {
		cfg := rest.CopyConfig(ds.cfg)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: sa, Groups: groups}
		as, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := as.CoreV1().Secrets(target).List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("list secrets in %s as the worker: %v", target, err)
		}
		if _, err := as.AppsV1().Deployments(target).List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("list deployments in %s as the worker: %v", target, err)
		}
		if _, err := as.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("list secrets in kube-system as the worker: got %v, want Forbidden", err)
		}
		if _, err := as.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("list secrets cluster-wide as the worker: got %v, want Forbidden", err)
		}
	})

	t.Run("vault kubernetes auth", func(t *testing.T) {
		vaultLogin(t, ds, worker, id)
	})
}

// vaultLogin runs deploy/vault/setup.sh, as the README says, against the
// devstack's Vault (with test-unique names), then logs in with a token of the
// worker's ServiceAccount and checks that the token has exactly the
// policy's capabilities on the catalog's paths.
func vaultLogin(t *testing.T, ds devstackEnv, worker, id string) {
	ctx := ctxFor(t)
	addr := os.Getenv("VAULT_ADDR")
	tokenFile := os.Getenv("VAULT_TOKEN_FILE")
	vaultBin := filepath.Join(ds.dir, "bin", "vault")
	if addr == "" || tokenFile == "" {
		t.Fatal("VAULT_ADDR or VAULT_TOKEN_FILE is unset: `source .devstack/env`")
	}
	if _, err := os.Stat(vaultBin); err != nil {
		t.Fatalf("the devstack's vault binary: %v", err)
	}
	rootToken, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	// Vault outside the cluster reviews logins with a token of its own, of a
	// ServiceAccount bound to system:auth-delegator (test-only binding).
	reviewer := "vault-reviewer"
	if _, err := ds.kube.CoreV1().ServiceAccounts(worker).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: reviewer}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "rotator-deploy-test-" + id},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: reviewer, Namespace: worker}},
	}
	if _, err := ds.kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ds.kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
	})
	// token is a ServiceAccount's token for the audiences (none: the API
	// server's own, as the reviewer's must be).
	token := func(sa string, audiences ...string) string {
		expiry := int64(600)
		tr, err := ds.kube.CoreV1().ServiceAccounts(worker).CreateToken(ctx, sa,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry, Audiences: audiences}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := ds.cfg.CAData
	if len(ca) == 0 {
		if ca, err = os.ReadFile(ds.cfg.CAFile); err != nil {
			t.Fatal(err)
		}
	}

	root, err := vaultapi.NewClient(&vaultapi.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(strings.TrimSpace(string(rootToken)))
	mount, role, policy := "k8s-deploy-test-"+id, "rotator-"+id, "rotator-deploy-test-"+id
	t.Cleanup(func() {
		_ = root.Sys().DisableAuth(mount)
		_ = root.Sys().DeletePolicy(policy)
	})
	env := []string{
		"PATH=" + filepath.Dir(vaultBin) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"VAULT_ADDR=" + addr,
		"VAULT_TOKEN=" + strings.TrimSpace(string(rootToken)),
		"VAULT_K8S_MOUNT=" + mount,
		"KUBERNETES_HOST=" + ds.cfg.Host,
		"KUBERNETES_CA_CERT=" + write("ca.crt", ca),
		"TOKEN_REVIEWER_JWT=" + write("reviewer.jwt", []byte(token(reviewer))),
		"ROTATOR_NAMESPACE=" + worker,
		"ROTATOR_VAULT_ROLE=" + role,
		"ROTATOR_VAULT_POLICY=" + policy,
		// The devstack's Vault, built with a newer Go, needs it (see
		// DESIGN.md); the official binary does not.
		"GODEBUG=x509negativeserial=1",
	}
	run(t, nil, env, "sh", "deploy/vault/setup.sh")
	run(t, nil, env, "sh", "deploy/vault/setup.sh") // idempotent

	login := func(jwt string) (*vaultapi.Secret, error) {
		return root.Logical().WriteWithContext(ctx, "auth/"+mount+"/login", map[string]any{"role": role, "jwt": jwt})
	}
	// What the Deployment's projected volume vault-token holds.
	sec, err := login(token(workerServiceAccount, "vault"))
	if err != nil || sec == nil || sec.Auth == nil {
		t.Fatalf("the worker's ServiceAccount cannot log in to Vault: %v", err)
	}
	// The role takes no token for the API server's audience.
	if _, err := login(token(workerServiceAccount)); err == nil || !strings.Contains(err.Error(), "audience") {
		t.Errorf("the worker's API server token logs in to Vault: %v", err)
	}
	if !slices.Contains(sec.Auth.Policies, policy) {
		t.Errorf("the login's policies are %v, want %s", sec.Auth.Policies, policy)
	}
	// Another ServiceAccount of the same namespace is not the worker.
	if _, err := login(token(reviewer, "vault")); err == nil {
		t.Error("a ServiceAccount other than the worker's logs in with the worker's Vault role")
	}

	c, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(sec.Auth.ClientToken)
	needs := vaultNeeds(loadCatalog(t, "deploy/base/rotator.yaml"))
	paths := []string{"secret/data/kube-system/x", "sys/policies/acl/" + policy}
	for p := range needs {
		paths = append(paths, p)
	}
	capsRes, err := c.Logical().WriteWithContext(ctx, "sys/capabilities-self", map[string]any{"paths": paths})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		var got []string
		raw, _ := json.Marshal(capsRes.Data[p])
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("capabilities of %s: %v", p, err)
		}
		slices.Sort(got)
		want, needed := needs[p]
		if !needed {
			want = []string{"deny"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("Vault gives the worker %v on %s, want %v", got, p, want)
		}
	}
	if _, err := c.Logical().WriteWithContext(ctx, "auth/token/revoke-self", nil); err != nil {
		t.Logf("revoke the test login: %v", err)
	}
}
