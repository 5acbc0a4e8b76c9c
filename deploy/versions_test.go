package deploy_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestVersionsMatchDevstack keeps deploy/versions.env, which the compose
// file and the Dockerfile are checked against, equal to what the devstack
// builds and where it listens (read from its go.mod files and Go constants;
// devstack/ is its own module, so it is read as text).
func TestVersionsMatchDevstack(t *testing.T) {
	for _, c := range []struct {
		key, file, what, pattern string
	}{
		{"TEMPORAL_VERSION", "devstack/go.mod", "the Temporal server module", `(?m)^\s*(?:require\s+)?go\.temporal\.io/server v(\S+)`},
		{"TEMPORAL_UI_VERSION", "devstack/go.mod", "the Temporal UI server module", `(?m)^\s*(?:require\s+)?github\.com/temporalio/ui-server/v2 v(\S+)`},
		{"VAULT_VERSION", "devstack/tools/vault/go.mod", "the Vault module", `(?m)^\s*(?:require\s+)?github\.com/hashicorp/vault v(\S+)`},
		{"KUBERNETES_VERSION", "devstack/tools/kube/go.mod", "the Kubernetes module", `(?m)^\s*(?:require\s+)?k8s\.io/kubernetes v(\S+)`},
		{"TEMPORAL_PORT", "devstack/stack.go", "temporalFrontendPort", `temporalFrontendPort\s*=\s*(\d+)`},
		{"TEMPORAL_UI_PORT", "devstack/stack.go", "temporalUIPort", `temporalUIPort\s*=\s*(\d+)`},
		{"KUBE_APISERVER_PORT", "devstack/stack.go", "apiserverPort", `apiserverPort\s*=\s*(\d+)`},
		{"POSTGRES_PORT", "devstack/postgres.go", "postgresPort", `postgresPort\s*=\s*(\d+)`},
		{"VAULT_PORT", "devstack/vault.go", "vaultPort", `vaultPort\s*=\s*(\d+)`},
	} {
		t.Run(c.key, func(t *testing.T) {
			got := submatch(t, c.file, c.what, regexp.MustCompile(c.pattern))
			if want := version(t, c.key); got != want {
				t.Errorf("%s: devstack has %s (%s), deploy/versions.env says %s: change versions.env, docker-compose.yaml and the README together",
					c.key, got, c.file, want)
			}
		})
	}
}

// TestGoVersionBuildsModule: the Dockerfile's Go (GO_VERSION) must be at
// least what go.mod asks for, or the image would not build.
func TestGoVersionBuildsModule(t *testing.T) {
	goMod := submatch(t, "go.mod", "the go directive", regexp.MustCompile(`(?m)^go (\S+)`))
	img := version(t, "GO_VERSION")
	if compareVersions(img, goMod) < 0 {
		t.Errorf("deploy/versions.env GO_VERSION=%s is older than go.mod's go %s", img, goMod)
	}
}

// compareVersions orders dotted numeric versions ("1.26.8" > "1.26.0").
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}
