package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// toolset is one tools module under devstack/tools and the commands devstack
// builds from it into <state>/bin.
type toolset struct {
	name string
	// dir is the tools module directory.
	dir string
	// module is the dependency whose version names the build, e.g.
	// k8s.io/kubernetes; it is read from the tools module's go.mod.
	module string
	pkgs   []string
	bins   []string
	// estimate is the duration of a build on a cold Go build cache.
	estimate string
	// ldflags returns the linker flags for the module version, if any.
	ldflags func(version string) string
}

// kubeToolset builds the Kubernetes control plane and kubectl.
func kubeToolset(src string) toolset {
	return toolset{
		name:   "kube",
		dir:    filepath.Join(src, "tools", "kube"),
		module: "k8s.io/kubernetes",
		pkgs: []string{
			"k8s.io/kubernetes/cmd/kube-apiserver",
			"k8s.io/kubernetes/cmd/kube-controller-manager",
			"k8s.io/kubernetes/cmd/kube-scheduler",
			"k8s.io/kubernetes/cmd/kubectl",
		},
		bins:     []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"},
		estimate: "~7-10 min",
		ldflags:  kubeLDFlags,
	}
}

// kwokToolset builds kwok, which plays the kubelets of the fake nodes.
func kwokToolset(src string) toolset {
	return toolset{
		name:     "kwok",
		dir:      filepath.Join(src, "tools", "kwok"),
		module:   "sigs.k8s.io/kwok",
		pkgs:     []string{"sigs.k8s.io/kwok/cmd/kwok"},
		bins:     []string{"kwok"},
		estimate: "~3 min",
	}
}

// etcdToolset builds the etcd server that stores the cluster.
func etcdToolset(src string) toolset {
	return toolset{
		name:     "etcd",
		dir:      filepath.Join(src, "tools", "etcd"),
		module:   "go.etcd.io/etcd/server/v3",
		pkgs:     []string{"go.etcd.io/etcd/server/v3"},
		bins:     []string{"etcd"},
		estimate: "~1 min",
		ldflags:  func(string) string { return "-s -w" },
	}
}

// kubeLDFlags stamps the version the way Kubernetes' release build does, so
// that /version and `kubectl version` report v1.x.y instead of v0.0.0-master.
func kubeLDFlags(version string) string {
	major, minor := "", ""
	if parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3); len(parts) >= 2 {
		major, minor = parts[0], parts[1]
	}
	var b strings.Builder
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		fmt.Fprintf(&b, " -X %s.gitVersion=%s -X %s.gitMajor=%s -X %s.gitMinor=%s -X %s.gitTreeState=clean",
			pkg, version, pkg, major, pkg, minor, pkg)
	}
	return "-s -w" + b.String()
}

// builder builds toolsets into binDir, logging to logDir.
type builder struct {
	binDir string
	logDir string
	out    io.Writer
}

// ensure builds ts unless binDir holds all its binaries, built from the same
// go.mod and go.sum (a version bump changes them and so rebuilds).
func (b *builder) ensure(ctx context.Context, ts toolset) error {
	stampPath := filepath.Join(b.binDir, "."+ts.name+".stamp")
	haveAll := true
	for _, bin := range ts.bins {
		if _, err := os.Stat(filepath.Join(b.binDir, bin)); err != nil {
			haveAll = false
		}
	}
	version, key, err := toolKey(ts)
	if err != nil {
		if haveAll {
			fmt.Fprintf(b.out, "  %-24s cannot check sources (%v); using the binaries in %s\n", ts.name, err, b.binDir)
			return nil
		}
		return err
	}
	old, _ := os.ReadFile(stampPath)
	if haveAll && string(old) == key {
		return nil
	}

	why := "first time"
	if len(old) > 0 && haveAll {
		why = "sources changed"
	}
	fmt.Fprintf(b.out, "building %s %s (%s; %s on a cold Go cache, much less when cached)...\n",
		strings.Join(ts.bins, ", "), version, why, ts.estimate)
	start := time.Now()
	if err := b.build(ctx, ts, version); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "built %s %s in %s\n", strings.Join(ts.bins, ", "), version, time.Since(start).Round(time.Second))
	return writeFileAtomic(stampPath, []byte(key), 0o644)
}

// build runs go build into a temporary directory, then renames the binaries
// into place, so that running processes keep their executable intact.
func (b *builder) build(ctx context.Context, ts toolset, version string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building %s: the go command is required: %w", ts.name, err)
	}
	for _, dir := range []string{b.binDir, b.logDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("building %s: %w", ts.name, err)
		}
	}
	tmp, err := os.MkdirTemp(b.binDir, ".build-"+ts.name+"-")
	if err != nil {
		return fmt.Errorf("building %s: %w", ts.name, err)
	}
	defer os.RemoveAll(tmp)

	logPath := filepath.Join(b.logDir, "build-"+ts.name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("building %s: %w", ts.name, err)
	}
	defer logf.Close()

	out := tmp + string(os.PathSeparator)
	if len(ts.pkgs) == 1 {
		// One package is named by bins, not by its import path, whose last
		// element may be a major version or a directory such as "server".
		out = filepath.Join(tmp, ts.bins[0])
	}
	args := []string{"build", "-buildvcs=false", "-o", out}
	if ts.ldflags != nil {
		args = append(args, "-ldflags="+ts.ldflags(version))
	}
	args = append(args, ts.pkgs...)
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = ts.dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Stdout, cmd.Stderr = logf, logf
	fmt.Fprintf(logf, "$ (cd %s && go %s)\n", ts.dir, strings.Join(args, " "))

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("building %s: %w", ts.name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ticker := time.NewTicker(30 * time.Second)
	defer ticker.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("building %s: %w; last lines of %s:\n%s", ts.name, err, logPath, tail(logPath, 30))
			}
			for _, bin := range ts.bins {
				if err := os.Rename(filepath.Join(tmp, bin), filepath.Join(b.binDir, bin)); err != nil {
					return fmt.Errorf("building %s: %w", ts.name, err)
				}
			}
			return nil
		case <-ticker.C:
			fmt.Fprintf(b.out, "  still building %s… %s (log %s)\n", ts.name, fmtDuration(time.Since(start)), logPath)
		}
	}
}

// toolKey returns the version of ts.module and the stamp that identifies a
// build: that version plus a hash of the module's go.mod and go.sum.
func toolKey(ts toolset) (version, key string, err error) {
	gomod, err := os.ReadFile(filepath.Join(ts.dir, "go.mod"))
	if err != nil {
		return "", "", fmt.Errorf("tools module %s: %w", ts.name, err)
	}
	gosum, err := os.ReadFile(filepath.Join(ts.dir, "go.sum"))
	if err != nil {
		return "", "", fmt.Errorf("tools module %s: %w", ts.name, err)
	}
	version = requiredVersion(gomod, ts.module)
	if version == "" {
		return "", "", fmt.Errorf("tools module %s: go.mod does not require %s", ts.name, ts.module)
	}
	h := sha256.New()
	h.Write(gomod)
	h.Write([]byte{0})
	h.Write(gosum)
	return version, fmt.Sprintf("%s@%s %s\n", ts.module, version, hex.EncodeToString(h.Sum(nil))[:16]), nil
}

// requiredVersion returns the version go.mod requires of module, or "".
func requiredVersion(gomod []byte, module string) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	inRequire := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 0:
			continue
		case f[0] == "require" && len(f) > 1 && f[1] == "(":
			inRequire = true
			continue
		case f[0] == ")":
			inRequire = false
			continue
		case f[0] == "require":
			f = f[1:]
		case !inRequire:
			continue
		}
		if len(f) >= 2 && f[0] == module {
			return f[1]
		}
	}
	return ""
}

// moduleDir returns the directory of a dependency of the module in dir,
// downloading it into the module cache if needed.
func moduleDir(ctx context.Context, dir, module string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w: %s", module, err, strings.TrimSpace(stderr.String()))
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("go mod download %s: %w", module, err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s", module, info.Error)
	}
	return info.Dir, nil
}

// installKwokStages concatenates the stage files shipped in the kwok module
// required by the tools module in toolsDir into dst: they make fake nodes
// Ready and keep them so, and take pods through their lifecycle quickly. If
// the module cannot be located but dst exists, dst is kept.
func installKwokStages(ctx context.Context, toolsDir, dst string) error {
	stageDirs := []string{
		"kustomize/stage/node/fast",
		"kustomize/stage/node/heartbeat",
		"kustomize/stage/pod/fast",
	}
	modDir, err := moduleDir(ctx, toolsDir, "sigs.k8s.io/kwok")
	if err != nil {
		if _, statErr := os.Stat(dst); statErr == nil {
			return nil
		}
		return fmt.Errorf("kwok stages: %w", err)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# kwok stages copied by devstack from %s\n", modDir)
	n := 0
	for _, stageDir := range stageDirs {
		files, err := filepath.Glob(filepath.Join(modDir, stageDir, "*.yaml"))
		if err != nil {
			return fmt.Errorf("kwok stages: %w", err)
		}
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			data, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("kwok stages: %w", err)
			}
			if stageDir == "kustomize/stage/pod/fast" && filepath.Base(f) == "pod-ready.yaml" {
				if data, err = withReadyDelay(data); err != nil {
					return fmt.Errorf("kwok stages: %s: %w", f, err)
				}
			}
			fmt.Fprintf(&buf, "---\n# %s/%s\n%s\n", stageDir, filepath.Base(f), bytes.TrimSpace(data))
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("kwok stages: no stage files in %s", modDir)
	}
	if err := writeIfChanged(dst, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("kwok stages: %w", err)
	}
	return nil
}

// readyDelayAnnotation on a pod delays its Ready condition by a duration
// such as "2s", as kwok's general (slow) stages read it: the fast stages
// make every pod Ready at once, which no real application is, and make
// bench needs both.
const readyDelayAnnotation = "pod-ready.stage.kwok.x-k8s.io/delay"

// withReadyDelay adds to kwok's fast pod-ready stage a delay read from
// readyDelayAnnotation, zero for pods without it.
func withReadyDelay(stage []byte) ([]byte, error) {
	const at = "\nspec:\n"
	i := bytes.Index(stage, []byte(at))
	if i < 0 {
		return nil, fmt.Errorf("no top-level spec to add the ready delay to")
	}
	delay := "  delay:\n    durationMilliseconds: 0\n    durationFrom:\n      expressionFrom: '.metadata.annotations[\"" + readyDelayAnnotation + "\"]'\n"
	out := append([]byte{}, stage[:i+len(at)]...)
	out = append(out, delay...)
	return append(out, stage[i+len(at):]...), nil
}

// fmtDuration prints 2m30s style durations.
func fmtDuration(d time.Duration) string {
	return d.Round(time.Second).String()
}
