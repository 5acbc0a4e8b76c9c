package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	digest "github.com/opencontainers/go-digest"
)

// offlineImages answers BuildKit's base-image lookups without a registry: a
// linux image of this machine's architecture with one layer and a PATH.
// Only the InvalidBaseImagePlatform check would need the real configs.
type offlineImages struct{}

func (offlineImages) ResolveImageConfig(_ context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	arch := runtime.GOARCH
	if opt.Platform != nil && opt.Platform.Architecture != "" {
		arch = opt.Platform.Architecture
	}
	cfg, err := json.Marshal(map[string]any{
		"architecture": arch,
		"os":           "linux",
		"config":       map[string]any{"Env": []string{"PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + strings.Repeat("0", 64)}},
	})
	return ref, "", cfg, err
}

// lintDockerfile runs BuildKit's build checks, the ones `docker build
// --check` runs, on a Dockerfile's content, and returns "line: Rule: detail"
// for each warning.
func lintDockerfile(t *testing.T, dt []byte) []string {
	t.Helper()
	sm := llb.NewSourceMap(nil, "Dockerfile", "Dockerfile", dt)
	sm.Definition = &llb.Definition{}
	res, err := dockerfile2llb.DockerfileLint(context.Background(), dt, dockerfile2llb.ConvertOpt{
		MetaResolver: offlineImages{},
		SourceMap:    sm,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != nil {
		t.Fatalf("Dockerfile does not parse: %s", res.Error.Message)
	}
	var out []string
	for _, w := range res.Warnings {
		line := int32(0)
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			line = w.Location.Ranges[0].Start.Line
		}
		out = append(out, strings.Join([]string{strconv.Itoa(int(line)), w.RuleName, w.Detail}, ": "))
	}
	return out
}

// TestDockerfileLint fails on any warning of BuildKit's build checks
// (https://docs.docker.com/reference/build-checks/), as `docker build
// --check` with check=error=true would.
func TestDockerfileLint(t *testing.T) {
	for _, w := range lintDockerfile(t, readFile(t, "Dockerfile")) {
		t.Errorf("Dockerfile:%s", w)
	}
}

// TestDockerfileLinterCatches makes sure the linter above is not a no-op: a
// Dockerfile with known faults gets their warnings.
func TestDockerfileLinterCatches(t *testing.T) {
	bad := []byte("FROM alpine:3.20 as Build\nENV API_TOKEN=abc\nWORKDIR app\nCMD echo hi\n")
	got := strings.Join(lintDockerfile(t, bad), "\n")
	for _, rule := range []string{"FromAsCasing", "StageNameCasing", "SecretsUsedInArgOrEnv", "WorkdirRelativePath", "JSONArgsRecommended"} {
		if !strings.Contains(got, ": "+rule+": ") {
			t.Errorf("the linter did not report %s on a Dockerfile that breaks it; it said:\n%s", rule, got)
		}
	}
}

// dockerfileStages parses a Dockerfile into its stages.
func dockerfileStages(t *testing.T, dt []byte) []instructions.Stage {
	t.Helper()
	ast, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		t.Fatal(err)
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	return stages
}

// secretName matches ARG and ENV names that would put a secret in the image
// or its history.
var secretName = regexp.MustCompile(`(?i)(passw|secret|token|api_?key|private_?key|credential|auth)`)

// TestDockerfileRules enforces what rotator's image must be, beyond the
// linter: multi-stage, every base image pinned by tag or digest (never
// latest), the builder on versions.env's Go, a distroless non-root final
// stage whose entrypoint is the worker, static trimmed builds of the worker
// and the starter, no ADD from a URL and no secret-like ARG or ENV.
func TestDockerfileRules(t *testing.T) {
	for _, p := range dockerfileProblems(t, readFile(t, "Dockerfile")) {
		t.Error(p)
	}
}

// dockerfileProblems returns how a Dockerfile breaks TestDockerfileRules.
func dockerfileProblems(t *testing.T, dt []byte) []string {
	t.Helper()
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	stages := dockerfileStages(t, dt)
	if len(stages) < 2 {
		fail("the Dockerfile has %d stage(s): build in one stage and copy the binaries into a minimal one", len(stages))
		return problems
	}
	var names []string
	for _, st := range stages {
		if slices.Contains(names, st.BaseName) {
			names = append(names, st.Name)
			continue // FROM an earlier stage
		}
		names = append(names, st.Name)
		ref, err := reference.ParseNormalizedNamed(st.BaseName)
		if err != nil {
			fail("FROM %s: %v", st.BaseName, err)
			continue
		}
		_, digested := ref.(reference.Digested)
		tagged, isTagged := ref.(reference.Tagged)
		switch {
		case digested:
		case !isTagged:
			fail("FROM %s: pin the base image with a tag (or a digest)", st.BaseName)
		case tagged.Tag() == "latest":
			fail("FROM %s: latest is not a pin: name the version", st.BaseName)
		}
		for _, cmd := range st.Commands {
			switch c := cmd.(type) {
			case *instructions.AddCommand:
				for _, src := range c.SourcePaths {
					if strings.Contains(src, "://") || strings.HasPrefix(src, "git@") {
						fail("stage %s: ADD %s: fetch nothing from the network into the image; COPY from the context", st.Name, src)
					}
				}
			case *instructions.ArgCommand:
				for _, a := range c.Args {
					if secretName.MatchString(a.Key) {
						fail("stage %s: ARG %s looks like a secret: build args stay in the image history; use RUN --mount=type=secret", st.Name, a.Key)
					}
				}
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					if secretName.MatchString(kv.Key) {
						fail("stage %s: ENV %s looks like a secret: give it at run time (a Kubernetes Secret), not in the image", st.Name, kv.Key)
					}
				}
			}
		}
	}

	build, final := stages[0], stages[len(stages)-1]
	if want := "golang:" + version(t, "GO_VERSION") + "-bookworm"; build.BaseName != want {
		fail("the build stage is FROM %s, want %s (deploy/versions.env GO_VERSION)", build.BaseName, want)
	}
	if want := "gcr.io/distroless/static-debian12:nonroot"; final.BaseName != want {
		fail("the final stage is FROM %s, want %s", final.BaseName, want)
	}

	var runs, env []string
	for _, cmd := range build.Commands {
		switch c := cmd.(type) {
		case *instructions.RunCommand:
			runs = append(runs, strings.Join(c.CmdLine, " "))
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				env = append(env, kv.Key+"="+kv.Value)
			}
		}
	}
	if !slices.Contains(env, "CGO_ENABLED=0") {
		fail("the build stage must set ENV CGO_ENABLED=0 (a static binary for distroless/static); it sets %v", env)
	}
	allRuns := strings.Join(runs, "\n")
	for _, pkg := range []string{"worker", "starter"} {
		re := regexp.MustCompile(`go build -trimpath -ldflags="-s -w" -o /out/` + pkg + ` \./` + pkg + `\b`)
		if !re.MatchString(allRuns) {
			fail("the build stage does not build ./%s with `go build -trimpath -ldflags=\"-s -w\" -o /out/%s ./%s`; its RUNs:\n%s", pkg, pkg, pkg, allRuns)
		}
	}

	var user string
	var entrypoint []string
	finalEnv := map[string]string{}
	copied := map[string]bool{}
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			entrypoint = c.CmdLine
			if c.PrependShell {
				fail("ENTRYPOINT must be in exec form: distroless has no shell")
			}
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				finalEnv[kv.Key] = kv.Value
			}
		case *instructions.CopyCommand:
			for _, src := range c.SourcePaths {
				copied[c.From+":"+src+"->"+c.DestPath] = true
			}
		}
	}
	if user == "" || user == "0" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0:") {
		fail("the final stage runs as %q: end it with USER nonroot:nonroot (65532)", user)
	} else if user != "nonroot:nonroot" && user != "65532:65532" {
		fail("the final stage runs as %q; want nonroot:nonroot (65532, what the Deployment's runAsUser says)", user)
	}
	if !slices.Equal(entrypoint, []string{"/usr/local/bin/worker"}) {
		fail("ENTRYPOINT is %q, want [\"/usr/local/bin/worker\"]", entrypoint)
	}
	if got := finalEnv["ROTATOR_CATALOG"]; got != "/etc/rotator/rotator.yaml" {
		fail("ENV ROTATOR_CATALOG is %q, want /etc/rotator/rotator.yaml (where the Deployment mounts the catalog)", got)
	}
	for _, want := range []string{
		build.Name + ":/out/worker->/usr/local/bin/",
		build.Name + ":/out/starter->/usr/local/bin/",
		":rotator.yaml->/etc/rotator/rotator.yaml",
	} {
		if !copied[want] {
			fail("the final stage lacks the COPY %s; it copies %v", want, copied)
		}
	}
	return problems
}

// TestDockerfileRulesCatch breaks the real Dockerfile one way at a time and
// expects dockerfileProblems to say so.
func TestDockerfileRulesCatch(t *testing.T) {
	good := string(readFile(t, "Dockerfile"))
	for _, c := range []struct{ name, old, new, want string }{
		{"root", "USER nonroot:nonroot", "USER root", "runs as \"root\""},
		{"no user", "USER nonroot:nonroot\n", "", "runs as \"\""},
		{"latest", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM gcr.io/distroless/static-debian12:latest", "latest is not a pin"},
		{"untagged", "FROM golang:1.26.8-bookworm AS build", "FROM golang AS build", "pin the base image"},
		{"add url", "COPY rotator.yaml /etc/rotator/rotator.yaml", "ADD https://example.com/rotator.yaml /etc/rotator/rotator.yaml", "fetch nothing from the network"},
		{"secret env", "ENV ROTATOR_CATALOG=", "ENV VAULT_TOKEN=x ROTATOR_CATALOG=", "ENV VAULT_TOKEN looks like a secret"},
		{"secret arg", "WORKDIR /src", "WORKDIR /src\nARG DB_PASSWORD", "ARG DB_PASSWORD looks like a secret"},
		{"shell entrypoint", `ENTRYPOINT ["/usr/local/bin/worker"]`, "ENTRYPOINT /usr/local/bin/worker", "exec form"},
		{"cgo", "ENV CGO_ENABLED=0 ", "ENV ", "CGO_ENABLED=0"},
		{"no trimpath", `go build -trimpath -ldflags="-s -w" -o /out/starter`, `go build -o /out/starter`, "does not build ./starter"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(good, c.old) {
				t.Fatalf("the Dockerfile no longer contains %q: update this case", c.old)
			}
			got := strings.Join(dockerfileProblems(t, []byte(strings.Replace(good, c.old, c.new, 1))), "\n")
			if !strings.Contains(got, c.want) {
				t.Errorf("want a problem containing %q, got:\n%s", c.want, got)
			}
		})
	}
}

// goListPackage is what TestDockerignore reads of `go list -json`.
type goListPackage struct {
	Dir        string
	ImportPath string
	Module     *struct{ Main bool }
	GoFiles    []string
	CgoFiles   []string
	EmbedFiles []string
	OtherFiles []string
	SFiles     []string
	HFiles     []string
}

// TestDockerignore checks that the build context keeps every file `go build`
// reads for ./worker and ./starter, and leaves out the devstack's state (its
// passwords and keys), git, and the tests.
func TestDockerignore(t *testing.T) {
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	excluded := func(rel string) bool {
		ok, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-json", "./worker", "./starter")
	cmd.Dir = abs
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	needed := []string{"go.mod", "go.sum", "rotator.yaml"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p goListPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || !p.Module.Main {
			continue
		}
		for _, group := range [][]string{p.GoFiles, p.CgoFiles, p.EmbedFiles, p.OtherFiles, p.SFiles, p.HFiles} {
			for _, name := range group {
				rel, err := filepath.Rel(abs, filepath.Join(p.Dir, name))
				if err != nil {
					t.Fatal(err)
				}
				needed = append(needed, rel)
			}
		}
	}
	if len(needed) < 10 {
		t.Fatalf("go list found only %v: the check would prove nothing", needed)
	}
	for _, rel := range needed {
		if excluded(rel) {
			t.Errorf(".dockerignore leaves out %s, which `go build ./worker ./starter` needs", rel)
		}
	}
	for _, rel := range []string{".devstack/env", ".devstack/vault/root-token", ".git/config", ".env", "bin/worker", "e2e/jwt_test.go", "activities/refs_test.go", "workflows/testdata/x.json"} {
		if !excluded(rel) {
			t.Errorf(".dockerignore lets %s into the build context", rel)
		}
	}
}
