package deploy_test

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
	"testing"

	"rotator/catalog"
)

// vaultRule is one path rule of an HCL policy.
type vaultRule struct {
	path string
	caps []string
}

var (
	policyComment = regexp.MustCompile(`(?m)^\s*#.*$`)
	policyRule    = regexp.MustCompile(`path\s+"([^"]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}`)
)

// parsePolicy reads the path rules of deploy/vault/rotator-policy.hcl.
func parsePolicy(t *testing.T) []vaultRule {
	t.Helper()
	text := policyComment.ReplaceAllString(string(readFile(t, "deploy/vault/rotator-policy.hcl")), "")
	var rules []vaultRule
	for _, m := range policyRule.FindAllStringSubmatch(text, -1) {
		var caps []string
		for c := range strings.SplitSeq(m[2], ",") {
			if c = strings.Trim(strings.TrimSpace(c), `"`); c != "" {
				caps = append(caps, c)
			}
		}
		slices.Sort(caps)
		rules = append(rules, vaultRule{m[1], caps})
	}
	if len(rules) == 0 {
		t.Fatal("deploy/vault/rotator-policy.hcl: no path rules found")
	}
	return rules
}

// policyCaps returns the capabilities the policy gives on path, with Vault's
// matching (a trailing * is a prefix glob, + one path segment) and its
// priority between matching rules (vaultPriority).
func policyCaps(rules []vaultRule, path string) []string {
	var best *vaultRule
	for i, r := range rules {
		if globMatch(r.path, path) && (best == nil || vaultPriority(r.path, best.path) > 0) {
			best = &rules[i]
		}
	}
	if best == nil {
		return []string{"deny"}
	}
	return best.caps
}

// vaultPriority orders two matching policy paths as Vault documents it: the
// one whose first wildcard comes earlier loses, then the one ending in *,
// then the one with more + segments, then the shorter, then the
// lexicographically smaller.
func vaultPriority(p1, p2 string) int {
	firstWild := func(p string) int {
		if i := strings.IndexAny(p, "+*"); i >= 0 {
			return i
		}
		return len(p) + 1
	}
	boolInt := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	if c := cmp.Compare(firstWild(p1), firstWild(p2)); c != 0 {
		return c
	}
	if c := cmp.Compare(boolInt(!strings.HasSuffix(p1, "*")), boolInt(!strings.HasSuffix(p2, "*"))); c != 0 {
		return c
	}
	if c := cmp.Compare(strings.Count(p2, "+"), strings.Count(p1, "+")); c != 0 {
		return c
	}
	if c := cmp.Compare(len(p1), len(p2)); c != 0 {
		return c
	}
	return strings.Compare(p1, p2)
}

func globMatch(pattern, path string) bool {
	prefix := strings.HasSuffix(pattern, "*")
	pattern = strings.TrimSuffix(pattern, "*")
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(xs) < len(ps) || (!prefix && len(xs) != len(ps)) {
		return false
	}
	for i, p := range ps {
		last := i == len(ps)-1
		switch {
		case p == "+":
		case last && prefix:
			return strings.HasPrefix(xs[i], p)
		case p != xs[i]:
			return false
		}
	}
	return true
}

// vaultNeeds lists the Vault paths the worker calls for a catalog's targets
// and the capability each call needs (vault/store.go, pki/issue.go).
func vaultNeeds(c *catalog.Catalog) map[string][]string {
	needs := map[string][]string{}
	add := func(path string, caps ...string) {
		needs[path] = append(needs[path], caps...)
		slices.Sort(needs[path])
		needs[path] = slices.Compact(needs[path])
	}
	for _, tg := range c.Targets {
		if v := tg.Vault; v != nil {
			m := cmp.Or(v.Mount, "secret")
			add(m+"/data/"+v.Path, "create", "read", "update") // StagePending (CAS put), Read
			add(m+"/metadata/"+v.Path, "read", "patch")        // labels: GetMetadata, PatchMetadata
			add(m+"/delete/"+v.Path, "update")                 // Rollback: DeleteVersions
			add(m+"/data/"+v.Path+"/staged", "read")           // the engineer's staged keys
			add(m+"/metadata/"+v.Path+"/staged", "delete")     // discarded once used
		}
		if tls := tg.TLS; tls != nil {
			add(cmp.Or(tls.Mount, "pki")+"/issue/"+tls.Role, "update")
		}
	}
	return needs
}

// TestVaultPolicyCoversCatalog: deploy/vault/rotator-policy.hcl gives every
// capability the worker needs on each Vault path of the cluster catalog,
// and no more there; nothing elsewhere.
func TestVaultPolicyCoversCatalog(t *testing.T) {
	rules := parsePolicy(t)
	needs := vaultNeeds(loadCatalog(t, "deploy/base/rotator.yaml"))
	if len(needs) == 0 {
		t.Fatal("the cluster catalog uses no Vault path: nothing to check")
	}
	for path, caps := range needs {
		if got := policyCaps(rules, path); !slices.Equal(got, caps) {
			t.Errorf("rotator-policy.hcl gives %v on %s; the worker needs exactly %v there", got, path, caps)
		}
	}
	for _, outside := range []string{"secret/data/kube-system/x", "secret/metadata/other", "sys/policies/acl/rotator", "auth/token/create"} {
		if got := policyCaps(rules, outside); !slices.Equal(got, []string{"deny"}) {
			t.Errorf("rotator-policy.hcl gives %v on %s, outside the catalog's paths", got, outside)
		}
	}
}
