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
// stage whose entrypoint is the worker, both base images carrying the
// digests versions.env records for them (if any), static trimmed builds of
// the worker and the starter, no ADD from a URL and no secret-like ARG or
// ENV.
func TestDockerfileRules(t *testing.T) {
	for _, p := range dockerfileProblems(t, readFile(t, "Dockerfile"), versions(t)) {
		t.Error(p)
	}
}

// The Dockerfile's base images, and the deploy/versions.env entries that
// hold their digests.
const (
	distrolessImage = "gcr.io/distroless/static-debian12:nonroot"
	goDigestKey     = "GO_IMAGE_DIGEST"
	distrolessKey   = "DISTROLESS_IMAGE_DIGEST"
)

// imageDigest matches what a pin by digest must be: sha256 and 64 lowercase
// hex digits, the form registries and `docker buildx imagetools inspect`
// print.
var imageDigest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// imagePinProblem checks an image reference against the name:tag it must
// have, optionally followed by @<digest>. recorded is the digest
// versions.env holds under key ("" for none): when set, the reference must
// carry exactly it; when the reference carries a digest, versions.env must
// record it, so that a version and its digest change together. key ""
// skips that record (images whose digest versions.env does not track).
func imagePinProblem(ref, want, key, recorded string) string {
	nameTag, dig, digested := strings.Cut(ref, "@")
	switch {
	case nameTag != want:
		return fmt.Sprintf("want %s or %s@sha256:<digest>", want, want)
	case digested && !imageDigest.MatchString(dig):
		return fmt.Sprintf("the digest %q must be sha256: and 64 lowercase hex digits", dig)
	case key == "":
		return ""
	case recorded != "" && !imageDigest.MatchString(recorded):
		return fmt.Sprintf("deploy/versions.env %s=%q must be sha256: and 64 lowercase hex digits", key, recorded)
	case recorded != "" && dig != recorded:
		return fmt.Sprintf("deploy/versions.env %s pins it to %s: write %s@%s", key, recorded, want, recorded)
	case digested && recorded == "":
		return fmt.Sprintf("deploy/versions.env %s is empty: record %s there too, so that the version and its digest change together", key, dig)
	}
	return ""
}

// dockerfileProblems returns how a Dockerfile breaks TestDockerfileRules,
// given deploy/versions.env's entries.
func dockerfileProblems(t *testing.T, dt []byte, v map[string]string) []string {
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
	for _, key := range []string{"GO_VERSION", goDigestKey, distrolessKey} {
		if _, ok := v[key]; !ok {
			t.Fatalf("deploy/versions.env has no %s= line (a digest may be empty)", key)
		}
	}
	if p := imagePinProblem(build.BaseName, "golang:"+v["GO_VERSION"]+"-bookworm", goDigestKey, v[goDigestKey]); p != "" {
		fail("the build stage is FROM %s: %s (deploy/versions.env GO_VERSION)", build.BaseName, p)
	}
	if p := imagePinProblem(final.BaseName, distrolessImage, distrolessKey, v[distrolessKey]); p != "" {
		fail("the final stage is FROM %s: %s", final.BaseName, p)
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
			got := strings.Join(dockerfileProblems(t, []byte(strings.Replace(good, c.old, c.new, 1)), versions(t)), "\n")
			if !strings.Contains(got, c.want) {
				t.Errorf("want a problem containing %q, got:\n%s", c.want, got)
			}
		})
	}
}

// TestDockerfileDigests: the base images may be pinned by digest,
// image:tag@sha256:<64 hex>, with the digest recorded in
// deploy/versions.env; a digest that is malformed, differs from the record
// or is not recorded is a problem, and so is a record the FROM line lacks.
func TestDockerfileDigests(t *testing.T) {
	good := string(readFile(t, "Dockerfile"))
	goFrom := "FROM golang:" + version(t, "GO_VERSION") + "-bookworm"
	distrolessFrom := "FROM " + distrolessImage
	for _, from := range []string{goFrom + " ", distrolessFrom + "\n"} {
		if !strings.Contains(good, from) {
			t.Fatalf("the Dockerfile has no %q: update this test with it", from)
		}
	}
	d1, d2 := digest.FromString("golang").String(), digest.FromString("distroless").String()
	pinned := strings.Replace(strings.Replace(good, goFrom+" ", goFrom+"@"+d1+" ", 1), distrolessFrom+"\n", distrolessFrom+"@"+d2+"\n", 1)
	upper := "sha256:" + strings.ToUpper(strings.TrimPrefix(d1, "sha256:"))
	for _, c := range []struct {
		name, dockerfile           string
		goDigest, distrolessDigest string
		want                       string // "" for no problem
	}{
		{"tags, nothing recorded", good, "", "", ""},
		{"digests, recorded", pinned, d1, d2, ""},
		{"digests, not recorded", pinned, "", d2, "GO_IMAGE_DIGEST is empty: record " + d1},
		{"recorded, not pinned", good, d1, "", "GO_IMAGE_DIGEST pins it to " + d1},
		{"recorded distroless, not pinned", good, "", d2, "DISTROLESS_IMAGE_DIGEST pins it to " + d2},
		{"another digest", pinned, d2, d2, "GO_IMAGE_DIGEST pins it to " + d2},
		{"malformed record", good, "sha256:abc", "", `GO_IMAGE_DIGEST="sha256:abc" must be sha256: and 64`},
		{"upper-case digest", strings.Replace(pinned, d1, upper, 1), d1, d2, "must be sha256: and 64 lowercase hex digits"},
		{"another tag, digested", strings.Replace(pinned, "-bookworm@", "-alpine@", 1), d1, d2, "want golang:" + version(t, "GO_VERSION") + "-bookworm or"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := versions(t)
			v[goDigestKey], v[distrolessKey] = c.goDigest, c.distrolessDigest
			got := strings.Join(dockerfileProblems(t, []byte(c.dockerfile), v), "\n")
			switch {
			case c.want == "" && got != "":
				t.Errorf("want no problem, got:\n%s", got)
			case c.want != "" && !strings.Contains(got, c.want):
				t.Errorf("want a problem containing %q, got:\n%s", c.want, got)
			}
		})
	}
	if lint := lintDockerfile(t, []byte(pinned)); len(lint) > 0 {
		t.Errorf("BuildKit's checks refuse the Dockerfile pinned by digest: %v", lint)
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
