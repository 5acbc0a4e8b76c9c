package deploy_test

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

// mkenv runs deploy/compose/mkenv, as the README says, into a file and
// returns its path and values.
func mkenv(t *testing.T) (string, map[string]string) {
	t.Helper()
	out, err := exec.Command("sh", filepath.Join(root, "deploy/compose/mkenv")).Output()
	if err != nil {
		t.Fatalf("deploy/compose/mkenv: %v", err)
	}
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{}
	for line := range strings.SplitSeq(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			vals[k] = v
		}
	}
	return path, vals
}

// loadCompose loads docker-compose.yaml with compose-go, as `docker compose`
// would from the repository root with envFile as its .env (and nothing from
// this process's environment).
func loadCompose(t *testing.T, envFile string, profiles ...string) (*types.Project, error) {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(abs, "docker-compose.yaml")},
		cli.WithWorkingDirectory(abs),
		cli.WithEnv([]string{"HOME=" + t.TempDir()}),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatal(err)
	}
	return cli.ProjectFromOptions(context.Background(), opts)
}

// TestComposeNeedsEnvFile: without the .env from mkenv, compose refuses to
// start and says how to make it; so no secret has a default in the file.
func TestComposeNeedsEnvFile(t *testing.T) {
	empty := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadCompose(t, empty)
	if err == nil || !strings.Contains(err.Error(), "run deploy/compose/mkenv > .env first") {
		t.Fatalf("loading docker-compose.yaml without .env: got %v, want the required-variable error naming deploy/compose/mkenv", err)
	}
}

// TestComposeNoLiteralSecrets: every environment entry of the raw file that
// names a password or token is an interpolation, never a value.
func TestComposeNoLiteralSecrets(t *testing.T) {
	var raw struct {
		Services map[string]struct {
			Environment map[string]any `json:"environment"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal(readFile(t, "docker-compose.yaml"), &raw); err != nil {
		t.Fatal(err)
	}
	n := 0
	for name, svc := range raw.Services {
		for k, v := range svc.Environment {
			if !secretName.MatchString(k) && !strings.HasSuffix(k, "_PWD") {
				continue
			}
			n++
			if s, _ := v.(string); !strings.HasPrefix(s, "${") || !strings.Contains(s, ":?") {
				t.Errorf("services.%s.environment.%s = %v: take it from .env with ${NAME:?...}, never a value in the file", name, k, v)
			}
		}
	}
	if n < 5 {
		t.Errorf("found only %d secret-like variables; the check would prove little", n)
	}
}

// TestCompose loads docker-compose.yaml with the .env mkenv writes and the
// worker's profile, and checks the services, their images and ports against
// deploy/versions.env (the devstack's), and that the worker is built from
// the Dockerfile and runs as non-root with nothing writable.
func TestCompose(t *testing.T) {
	envFile, env := mkenv(t)
	for _, k := range []string{"VAULT_DEV_ROOT_TOKEN", "POSTGRES_PASSWORD", "TEMPORAL_DB_PASSWORD", "ORCHESTRATOR_DB_PASSWORD", "ROTATOR_ADMIN_DB_PASSWORD"} {
		if len(env[k]) < 32 {
			t.Errorf("mkenv wrote %s with %d characters, want a random value of at least 32", k, len(env[k]))
		}
	}
	p, err := loadCompose(t, envFile, "worker")
	if err != nil {
		t.Fatalf("docker-compose.yaml does not load: %v", err)
	}
	v := versions(t)
	images := map[string]string{
		"postgres":           "postgres:" + v["POSTGRES_MAJOR"] + "-bookworm",
		"temporal-schema":    "temporalio/admin-tools:" + v["TEMPORAL_VERSION"],
		"temporal":           "temporalio/server:" + v["TEMPORAL_VERSION"],
		"temporal-namespace": "temporalio/admin-tools:" + v["TEMPORAL_VERSION"],
		"temporal-ui":        "temporalio/ui:" + v["TEMPORAL_UI_VERSION"],
		"vault":              "hashicorp/vault:" + v["VAULT_VERSION"],
		"vault-setup":        "hashicorp/vault:" + v["VAULT_VERSION"],
		"worker":             "rotator:dev",
	}
	if got, want := slices.Sorted(maps.Keys(p.Services)), slices.Sorted(maps.Keys(images)); !slices.Equal(got, want) {
		t.Fatalf("services: got %v, want %v", got, want)
	}
	for name, want := range images {
		if got := p.Services[name].Image; got != want {
			t.Errorf("services.%s.image = %s, want %s (deploy/versions.env)", name, got, want)
		}
	}

	// Published ports: the devstack's, on 127.0.0.1 only.
	ports := map[string][2]string{ // service: host port, container port
		"postgres":    {v["POSTGRES_PORT"], "5432"},
		"temporal":    {v["TEMPORAL_PORT"], "7233"},
		"temporal-ui": {v["TEMPORAL_UI_PORT"], "8080"},
		"vault":       {v["VAULT_PORT"], "8200"},
	}
	for name, svc := range p.Services {
		want, publishes := ports[name]
		if !publishes && len(svc.Ports) > 0 {
			t.Errorf("services.%s publishes %v; only %v publish ports", name, svc.Ports, slices.Sorted(maps.Keys(ports)))
		}
		if !publishes {
			continue
		}
		if len(svc.Ports) != 1 {
			t.Errorf("services.%s.ports = %v, want one", name, svc.Ports)
			continue
		}
		got := svc.Ports[0]
		if got.HostIP != "127.0.0.1" || got.Published != want[0] || strconv.Itoa(int(got.Target)) != want[1] {
			t.Errorf("services.%s.ports = %s:%s:%d, want 127.0.0.1:%s:%s", name, got.HostIP, got.Published, got.Target, want[0], want[1])
		}
	}

	// Secrets arrive through .env.
	if got := p.Services["vault"].Environment["VAULT_DEV_ROOT_TOKEN_ID"]; got == nil || *got != env["VAULT_DEV_ROOT_TOKEN"] {
		t.Error("vault's VAULT_DEV_ROOT_TOKEN_ID is not the VAULT_DEV_ROOT_TOKEN of .env")
	}
	if got := p.Services["postgres"].Environment["POSTGRES_PASSWORD"]; got == nil || *got != env["POSTGRES_PASSWORD"] {
		t.Error("postgres's POSTGRES_PASSWORD is not the one of .env")
	}

	w := p.Services["worker"]
	if w.Build == nil || w.Build.Context != p.WorkingDir || w.Build.Dockerfile != "Dockerfile" {
		t.Errorf("the worker must be built from the repository's Dockerfile; build = %+v", w.Build)
	}
	if !slices.Equal(w.Profiles, []string{"worker"}) {
		t.Errorf("the worker's profiles = %v, want [worker] (it needs a kubeconfig, so `docker compose up` alone leaves it out)", w.Profiles)
	}
	uid, gid, _ := strings.Cut(w.User, ":")
	if uid != "65532" || gid != "65532" {
		t.Errorf("the worker runs as %q, want 65532:65532 (distroless nonroot, as in the Dockerfile)", w.User)
	}
	if !w.ReadOnly || w.Privileged || !slices.Equal(w.CapDrop, []string{"ALL"}) || !slices.Contains(w.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("the worker must run read_only, unprivileged, with cap_drop [ALL] and no-new-privileges; got read_only=%v privileged=%v cap_drop=%v security_opt=%v",
			w.ReadOnly, w.Privileged, w.CapDrop, w.SecurityOpt)
	}
	if got := w.Environment["ROTATOR_CATALOG"]; got == nil || *got != "/etc/rotator/rotator.yaml" {
		t.Error("the worker's ROTATOR_CATALOG is not /etc/rotator/rotator.yaml")
	}
	if got := w.Environment["TEMPORAL_ADDRESS"]; got == nil || *got != "127.0.0.1:"+v["TEMPORAL_PORT"] {
		t.Errorf("the worker's TEMPORAL_ADDRESS is not 127.0.0.1:%s (it runs on the host's network)", v["TEMPORAL_PORT"])
	}

	// Every file the services mount from the repository exists, and the
	// scripts are valid sh.
	for name, svc := range p.Services {
		for _, vol := range svc.Volumes {
			if vol.Type != types.VolumeTypeBind || !strings.HasPrefix(vol.Source, p.WorkingDir) {
				continue
			}
			if !vol.ReadOnly {
				t.Errorf("services.%s mounts %s writable; mount repository files :ro", name, vol.Source)
			}
			if _, err := os.Stat(vol.Source); err != nil {
				t.Errorf("services.%s mounts %s: %v", name, vol.Source, err)
				continue
			}
			if strings.HasSuffix(vol.Source, ".sh") {
				if out, err := exec.Command("sh", "-n", vol.Source).CombinedOutput(); err != nil {
					t.Errorf("%s: sh -n: %v\n%s", vol.Source, err, out)
				}
			}
		}
	}
}

// TestComposeWithoutWorkerProfile: `docker compose up` starts the stack
// alone.
func TestComposeWithoutWorkerProfile(t *testing.T) {
	envFile, _ := mkenv(t)
	p, err := loadCompose(t, envFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Services["worker"]; ok {
		t.Error("the worker starts without --profile worker")
	}
	if _, ok := p.Services["temporal"]; !ok {
		t.Error("temporal does not start by default")
	}
}

// TestComposeEnvFileMode: `deploy/compose/mkenv > .env`, as the README
// says, leaves a file only its owner can read, whatever the umask.
func TestComposeEnvFileMode(t *testing.T) {
	env := filepath.Join(t.TempDir(), ".env")
	script, err := filepath.Abs(filepath.Join(root, "deploy/compose/mkenv"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-c", `umask 022 && sh "$1" > "$2"`, "sh", script, env).CombinedOutput(); err != nil {
		t.Fatalf("mkenv > .env: %v\n%s", err, out)
	}
	st, err := os.Stat(env)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mkenv > .env leaves mode %v; want 0600 (it holds passwords)", st.Mode().Perm())
	}
}
