package deploy_test

import (
	"cmp"
	"encoding/json"
	"maps"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"rotator/catalog"
)

// The worker's identity, as deploy/base names it.
const (
	workerNamespace      = "rotator"
	workerServiceAccount = "rotator"
	// targetRole is the Role in each namespace that holds targets.
	targetRole = "rotator"
	// credentialsRole is the Role in each other namespace that holds admin
	// Secrets named by the catalog.
	credentialsRole = "rotator-credentials"
)

// targetRules are the calls activities/*.go make in a target's namespace, and
// nothing else: no watch or update on Secrets, no delete on workloads.
var targetRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "create", "patch", "delete"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets"}, Verbs: []string{"get", "list", "watch", "patch"}},
	{APIGroups: []string{"batch"}, Resources: []string{"cronjobs"}, Verbs: []string{"get", "list", "patch"}},
	{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"list"}},
	{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"list"}},
	{APIGroups: []string{""}, Resources: []string{"pods", "replicationcontrollers"}, Verbs: []string{"list"}},
	{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses"}, Verbs: []string{"get", "list", "patch"}},
}

// object is one manifest: its kind and name, and its JSON to decode.
type object struct {
	Kind, Namespace, Name string
	raw                   []byte
}

func (o object) decode(t *testing.T, into any) {
	t.Helper()
	if err := json.Unmarshal(o.raw, into); err != nil {
		t.Fatalf("%s %s/%s: %v", o.Kind, o.Namespace, o.Name, err)
	}
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// parseManifests splits multi-document YAML into objects.
func parseManifests(t *testing.T, what string, data []byte) []object {
	t.Helper()
	var out []object
	for _, doc := range docSeparator.Split(string(data), -1) {
		raw, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if string(raw) == "null" {
			continue
		}
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(raw, &meta); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		out = append(out, object{Kind: meta.Kind, Namespace: meta.Metadata.Namespace, Name: meta.Metadata.Name, raw: raw})
	}
	return out
}

// baseManifests reads the resources deploy/base/kustomization.yaml lists
// (kustomize adds only labels and the catalog's ConfigMap to them).
func baseManifests(t *testing.T) []object {
	t.Helper()
	var k struct {
		Namespace string   `json:"namespace"`
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/base/kustomization.yaml"), &k); err != nil {
		t.Fatal(err)
	}
	if k.Namespace != "" {
		t.Fatalf("deploy/base/kustomization.yaml sets namespace: %s, which would move the Roles out of the target namespaces", k.Namespace)
	}
	var out []object
	for _, r := range k.Resources {
		out = append(out, parseManifests(t, r, readFile(t, filepath.Join("deploy/base", r)))...)
	}
	return out
}

// secretRefs returns every catalog.SecretRef a target holds, wherever in
// the target it is (postgres.adminSecret, apiKeys.providers[].admin.secret,
// and any added later).
func secretRefs(t catalog.Target) []catalog.SecretRef {
	var out []catalog.SecretRef
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Struct:
			if r, ok := v.Interface().(catalog.SecretRef); ok {
				out = append(out, r)
				return
			}
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		}
	}
	walk(reflect.ValueOf(t))
	return out
}

// access is what a catalog needs of the cluster: the namespaces of its
// targets, and the admin Secrets (by namespace) it reads.
type access struct {
	targets map[string]bool
	secrets map[string][]string
}

func catalogAccess(t *testing.T, c *catalog.Catalog) access {
	t.Helper()
	a := access{targets: map[string]bool{}, secrets: map[string][]string{}}
	for _, tg := range c.Targets {
		a.targets[tg.Namespace] = true
		for _, r := range secretRefs(tg) {
			if !slices.Contains(a.secrets[r.Namespace], r.Name) {
				a.secrets[r.Namespace] = append(a.secrets[r.Namespace], r.Name)
			}
		}
	}
	for ns := range a.secrets {
		slices.Sort(a.secrets[ns])
	}
	return a
}

func loadCatalog(t *testing.T, rel string) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Load(filepath.Join(root, rel))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return c
}

// TestRolesMatchCatalog keeps deploy/base/rbac.yaml in step with the
// catalogs (the cluster's deploy/base/rotator.yaml and the sample
// rotator.yaml): the Role "rotator" with exactly targetRules in each
// namespace that holds a target, and no other; the Role
// "rotator-credentials" with get on exactly the admin Secrets the catalog
// names in each other namespace, and no other; each bound to the worker's
// ServiceAccount alone; and no ClusterRole or ClusterRoleBinding.
func TestRolesMatchCatalog(t *testing.T) {
	objs := baseManifests(t)
	roles := map[string]map[string]rbacv1.Role{}           // name -> namespace -> Role
	bindings := map[string]map[string]rbacv1.RoleBinding{} // likewise
	for _, o := range objs {
		switch o.Kind {
		case "ClusterRole", "ClusterRoleBinding":
			t.Errorf("deploy/base has a %s %s: the worker needs no cluster-wide access; use a Role in each namespace of the catalog", o.Kind, o.Name)
		case "Role":
			var r rbacv1.Role
			o.decode(t, &r)
			if roles[r.Name] == nil {
				roles[r.Name] = map[string]rbacv1.Role{}
			}
			roles[r.Name][r.Namespace] = r
		case "RoleBinding":
			var b rbacv1.RoleBinding
			o.decode(t, &b)
			if bindings[b.Name] == nil {
				bindings[b.Name] = map[string]rbacv1.RoleBinding{}
			}
			bindings[b.Name][b.Namespace] = b
		}
	}
	if extra := slices.DeleteFunc(slices.Sorted(maps.Keys(roles)), func(n string) bool { return n == targetRole || n == credentialsRole }); len(extra) > 0 {
		t.Errorf("deploy/base/rbac.yaml has Roles %v besides %s and %s", extra, targetRole, credentialsRole)
	}

	for _, rel := range []string{"deploy/base/rotator.yaml", "rotator.yaml"} {
		t.Run(rel, func(t *testing.T) {
			a := catalogAccess(t, loadCatalog(t, rel))
			fix := "deploy/base/rbac.yaml must follow " + rel + " (a namespace added or removed there needs its Role and RoleBinding here)"

			wantTargets := slices.Sorted(maps.Keys(a.targets))
			if got := slices.Sorted(maps.Keys(roles[targetRole])); !slices.Equal(got, wantTargets) {
				t.Errorf("Role %s is in namespaces %v; the targets are in %v: %s", targetRole, got, wantTargets, fix)
			}
			for _, ns := range wantTargets {
				if r, ok := roles[targetRole][ns]; ok && !reflect.DeepEqual(normalized(r.Rules), normalized(targetRules)) {
					t.Errorf("Role %s/%s rules = %+v, want exactly %+v", ns, targetRole, r.Rules, targetRules)
				}
			}

			wantCreds := map[string][]string{}
			for ns, names := range a.secrets {
				if !a.targets[ns] {
					wantCreds[ns] = names
				}
			}
			if got, want := slices.Sorted(maps.Keys(roles[credentialsRole])), slices.Sorted(maps.Keys(wantCreds)); !slices.Equal(got, want) {
				t.Errorf("Role %s is in namespaces %v; the catalog's admin Secrets are in %v: %s", credentialsRole, got, want, fix)
			}
			for ns, names := range wantCreds {
				r, ok := roles[credentialsRole][ns]
				if !ok {
					continue
				}
				want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: names, Verbs: []string{"get"}}}
				if !reflect.DeepEqual(normalized(r.Rules), normalized(want)) {
					t.Errorf("Role %s/%s rules = %+v, want exactly %+v (get, by name, the Secrets %s names)", ns, credentialsRole, r.Rules, want, rel)
				}
			}
		})
	}

	for name, byNS := range roles {
		for ns := range byNS {
			b, ok := bindings[name][ns]
			if !ok {
				t.Errorf("Role %s/%s has no RoleBinding %s/%s", ns, name, ns, name)
				continue
			}
			wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: workerServiceAccount, Namespace: workerNamespace}}
			if b.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}) || !reflect.DeepEqual(b.Subjects, wantSubjects) {
				t.Errorf("RoleBinding %s/%s: roleRef %+v subjects %+v; want Role %s bound to %+v only", ns, name, b.RoleRef, b.Subjects, name, wantSubjects)
			}
		}
	}
	for name, byNS := range bindings {
		for ns := range byNS {
			if _, ok := roles[name][ns]; !ok {
				t.Errorf("RoleBinding %s/%s binds no Role of deploy/base", ns, name)
			}
		}
	}
}

// normalized sorts a rule set so that order does not matter.
func normalized(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	out := make([]rbacv1.PolicyRule, len(rules))
	for i, r := range rules {
		r = *r.DeepCopy()
		for _, s := range [][]string{r.APIGroups, r.Resources, r.ResourceNames, r.Verbs} {
			slices.Sort(s)
		}
		out[i] = r
	}
	slices.SortFunc(out, func(a, b rbacv1.PolicyRule) int {
		return cmp.Compare(strings.Join(a.APIGroups, ",")+strings.Join(a.Resources, ","), strings.Join(b.APIGroups, ",")+strings.Join(b.Resources, ","))
	})
	return out
}

// TestClusterCatalogMatchesSample: deploy/base/rotator.yaml rotates what the
// sample rotator.yaml rotates (names, kinds, namespaces, Secrets, cadence,
// the admin Secrets and Vault paths); only the addresses differ.
func TestClusterCatalogMatchesSample(t *testing.T) {
	type shape struct {
		Name, Namespace, Secret, Key string
		Kind                         catalog.Kind
		Every, Grace                 string
		Refs                         []catalog.SecretRef
		Vault                        *catalog.VaultPath
	}
	shapes := func(c *catalog.Catalog) []shape {
		var out []shape
		for _, tg := range c.Targets {
			out = append(out, shape{tg.Name, tg.Namespace, tg.Secret, tg.Key, tg.Kind, tg.Every.String(), tg.Grace.String(), secretRefs(tg), tg.Vault})
		}
		return out
	}
	cluster, sample := loadCatalog(t, "deploy/base/rotator.yaml"), loadCatalog(t, "rotator.yaml")
	if got, want := shapes(cluster), shapes(sample); !reflect.DeepEqual(got, want) {
		t.Errorf("deploy/base/rotator.yaml differs from rotator.yaml beyond addresses:\n cluster: %+v\n sample:  %+v", got, want)
	}
	if cluster.Vault == nil || cluster.Vault.Auth.Method != catalog.VaultAuthKubernetes || cluster.Vault.Auth.Role != "rotator" {
		t.Errorf("deploy/base/rotator.yaml: vault.auth must be {method: kubernetes, role: rotator} (deploy/vault/setup.sh's role); got %+v", cluster.Vault)
	}
	for _, tg := range cluster.Targets {
		if p := tg.Postgres; p != nil && strings.HasPrefix(p.Host, "127.") {
			t.Errorf("deploy/base/rotator.yaml: target %s: postgres.host %s is the devstack's; give the in-cluster Service", tg.Name, p.Host)
		}
		if a := tg.APIKeys; a != nil {
			for _, p := range a.Providers {
				if strings.Contains(p.BaseURL, "127.0.0.1") {
					t.Errorf("deploy/base/rotator.yaml: target %s: provider %s baseURL %s is the devstack's", tg.Name, p.Name, p.BaseURL)
				}
			}
		}
	}
}

// TestDeployment checks the worker's Deployment: the ServiceAccount, a
// restricted security context that matches the image's user, the one http
// port with the probes, resources, and the catalog mounted where
// ROTATOR_CATALOG points.
func TestDeployment(t *testing.T) {
	var d *appsv1.Deployment
	sa := false
	for _, o := range baseManifests(t) {
		switch {
		case o.Kind == "Deployment":
			d = &appsv1.Deployment{}
			o.decode(t, d)
		case o.Kind == "ServiceAccount" && o.Namespace == workerNamespace && o.Name == workerServiceAccount:
			sa = true
		}
	}
	if d == nil || !sa {
		t.Fatalf("deploy/base needs the Deployment and the ServiceAccount %s/%s (found Deployment: %v, ServiceAccount: %v)", workerNamespace, workerServiceAccount, d != nil, sa)
	}
	ps := d.Spec.Template.Spec
	if d.Namespace != workerNamespace || ps.ServiceAccountName != workerServiceAccount {
		t.Errorf("the Deployment is %s/%s with ServiceAccount %q; want namespace %s, ServiceAccount %s", d.Namespace, d.Name, ps.ServiceAccountName, workerNamespace, workerServiceAccount)
	}
	psc := ps.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext must have runAsNonRoot, runAsUser 65532 (the image's nonroot) and seccomp RuntimeDefault; got %+v", psc)
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(ps.Containers))
	}
	c := ps.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 ||
		(sc.Privileged != nil && *sc.Privileged) {
		t.Errorf("container securityContext must have readOnlyRootFilesystem, allowPrivilegeEscalation false, capabilities drop [ALL] and nothing added; got %+v", sc)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("want one port, http 8080 (/healthz, /readyz, /metrics); got %+v", c.Ports)
	}
	for _, p := range []struct {
		what  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}, {"startup", c.StartupProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe: want httpGet %s on port http; got %+v", p.what, p.path, p.probe)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("set cpu and memory requests and a memory limit; got %+v", c.Resources)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	for _, k := range []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "ROTATOR_TASK_QUEUE", "ROTATOR_CATALOG", "VAULT_ADDR"} {
		if env[k] == "" {
			t.Errorf("the container does not set %s", k)
		}
	}
	mountDir := filepath.Dir(env["ROTATOR_CATALOG"])
	found := false
	for _, m := range c.VolumeMounts {
		if m.MountPath != mountDir {
			continue
		}
		for _, v := range ps.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == "rotator-catalog" && m.ReadOnly {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("mount the ConfigMap rotator-catalog read-only at %s, where ROTATOR_CATALOG points", mountDir)
	}
	var k struct {
		ConfigMapGenerator []struct {
			Name, Namespace string
			Files           []string
		} `json:"configMapGenerator"`
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/base/kustomization.yaml"), &k); err != nil {
		t.Fatal(err)
	}
	if len(k.ConfigMapGenerator) != 1 || k.ConfigMapGenerator[0].Name != "rotator-catalog" || k.ConfigMapGenerator[0].Namespace != workerNamespace ||
		!slices.Equal(k.ConfigMapGenerator[0].Files, []string{filepath.Base(env["ROTATOR_CATALOG"])}) {
		t.Errorf("kustomization.yaml must generate the ConfigMap %s/rotator-catalog from %s; got %+v", workerNamespace, filepath.Base(env["ROTATOR_CATALOG"]), k.ConfigMapGenerator)
	}
}
