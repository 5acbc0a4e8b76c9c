package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"rotator/workflows"
)

// readmeBlock is one shell code block of README.md or docs/*.md: its
// commands, with continuation lines joined and trailing comments removed.
type readmeBlock struct {
	file     string // README.md or docs/<page>.md, relative to the repository
	line     int    // where the block starts in file
	commands []string
}

// readmeFiles are the pages whose commands TestReadmeCommands runs:
// README.md, then every docs/*.md in name order, so that a command moved
// out of the README, or written in a new page, is still run or accounted
// for.
func readmeFiles(root string) ([]string, error) {
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	slices.Sort(docs)
	files := []string{"README.md"}
	for _, d := range docs {
		rel, err := filepath.Rel(root, d)
		if err != nil {
			return nil, err
		}
		files = append(files, filepath.ToSlash(rel))
	}
	return files, nil
}

// readmeBlocks parses the fenced code blocks of a page (file) that hold
// shell commands (no language, sh, bash or shell). In a block that shows a
// session, only the lines after "$ " are commands; the rest is output.
func readmeBlocks(file, readme string) []readmeBlock {
	var blocks []readmeBlock
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(fence, "```") {
			continue
		}
		lang := strings.TrimPrefix(fence, "```")
		j := i + 1
		for j < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[j]), "```") {
			j++
		}
		body := lines[i+1 : min(j, len(lines))]
		if lang == "" || lang == "sh" || lang == "bash" || lang == "shell" {
			blocks = append(blocks, readmeBlock{file: file, line: i + 1, commands: shellCommands(body)})
		}
		i = j
	}
	return blocks
}

// shellCommands joins continuation lines and strips comments.
func shellCommands(body []string) []string {
	session := false
	for _, l := range body {
		if strings.HasPrefix(strings.TrimSpace(l), "$ ") {
			session = true
		}
	}
	var out []string
	pending := ""
	for _, l := range body {
		l = strings.TrimSpace(l)
		if session && pending == "" {
			if !strings.HasPrefix(l, "$ ") {
				continue
			}
			l = strings.TrimPrefix(l, "$ ")
		}
		l = strings.TrimSpace(stripComment(l))
		if l == "" && pending == "" {
			continue
		}
		if cont, ok := strings.CutSuffix(l, `\`); ok {
			pending += strings.TrimSpace(cont) + " "
			continue
		}
		out = append(out, pending+l)
		pending = ""
	}
	return out
}

// stripComment removes a "# ..." comment that starts after whitespace,
// outside quotes.
func stripComment(l string) string {
	var quote rune
	for i, r := range l {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			return l[:i]
		}
	}
	return l
}

// elsewhere is a README command that something other than this test runs,
// and the evidence for it: a file that must contain every one of needles.
type elsewhere struct {
	command string // exact, as parsed from the README
	by      string
	file    string
	needles []string
}

// ranElsewhere lists the commands of README.md and docs/*.md this test
// does not run itself. Each claim is checked against the file that runs
// the command.
var ranElsewhere = []elsewhere{
	{"bin/starter postgres setup orchestrator-db", "scripts/demo.sh (make demo)", "scripts/demo.sh", []string{"\nbin/starter postgres setup orchestrator-db\n"}},
	{"kubectl apply --server-side -k deploy/base", "TestApplyToDevstack (make test-e2e): kubectl kustomize deploy/base, then apply --server-side into fresh namespaces",
		"deploy/deploy_test.go", []string{`"kustomize", "deploy/base"`, `"apply", "--server-side"`}},
	{"deploy/vault/setup.sh", "make test-e2e (deploy/deploy_test.go) against the devstack's Vault", "deploy/deploy_test.go", []string{`"sh", "deploy/vault/setup.sh"`}},
	{"deploy/compose/mkenv > .env", "make lint-docker (deploy/compose_test.go)", "deploy/compose_test.go", []string{`"deploy/compose/mkenv"`}},
	{"(cd e2e && go test -count=1 -run TestWebUIApprovesRotation .)", "make test-e2e (cd e2e && go test ./...), which runs TestWebUIApprovesRotation", "e2e/ui_test.go", []string{"func TestWebUIApprovesRotation("}},
	{"(cd e2e && go test -count=1 -run TestWebUIApprovesRotation . -ui-screenshots=docs/ui)", "make test-e2e runs TestWebUIApprovesRotation; -ui-screenshots only saves the screenshots it takes",
		"e2e/ui_test.go", []string{"func TestWebUIApprovesRotation(", `flag.String("ui-screenshots"`}},
}

// notRun lists, by prefix, commands of README.md and docs/*.md nothing
// here can run, and why; the page says so next to them.
var notRun = map[string]string{
	"docker compose ":            "needs a Docker engine; make lint-docker loads docker-compose.yaml with compose-go instead",
	"temporal schedule ":         "the Temporal CLI is not part of the devstack; e2e/schedules_test.go pauses, triggers and describes through the SDK",
	"temporal workflow show -w ": "the Temporal CLI is not part of the devstack; e2e/codec_test.go decodes histories through the codec server instead",
	"bin/worker --temporal-address my-ns.a1b2c.tmprl.cloud": "needs a Temporal Cloud namespace; TestRotationThroughMutualTLSTemporal runs the worker and the starter with --api-key-file against the devstack's mTLS server",
	"TEMPORAL_PROFILE=prod ":                                "needs the cluster the profile names; clients/temporal_test.go loads such a profile, TestRotationThroughMutualTLSTemporal connects with the same settings",
}

// readmeSandbox is where the README's commands run: a folder with bin/ (the
// CLI and the worker just built), rotator.yaml, .devstack/env and
// etc/rotator/codec/, and the scratch targets that stand in for the
// sample's.
type readmeSandbox struct {
	t     *testing.T
	dir   string
	jwt   *fixture
	llm   *llm
	env   []string
	subst *strings.Replacer
	// newKeys are the keys the "engineer" got for stage-keys.
	newKeys [2]string
}

// TestReadmeCommands runs every command in the code blocks of README.md
// and docs/*.md, or checks the file that runs it (.ci/run, the Makefile,
// scripts/demo.sh, a test). A command that nothing runs fails the test. The sample targets
// (orchestrator-jwt, orchestrator-llm) are replaced by scratch targets of
// the same kinds, namespace rotator by the scratch namespace, and fixed
// ports by free ones; nothing else of a command changes.
func TestReadmeCommands(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	files, err := readmeFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []readmeBlock
	for _, f := range files {
		page, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, readmeBlocks(f, string(page))...)
	}
	total := 0
	for _, b := range blocks {
		total += len(b.commands)
	}
	if len(files) < 6 || len(blocks) < 5 || total < 20 {
		t.Fatalf("found %d commands in %d blocks of %v: the parser is broken", total, len(blocks), files)
	}

	ciMake := makeTargetsRunByCI(t, root)
	used := map[string]bool{}
	covered := func(cmd string) (string, bool) { return coveredElsewhere(cmd, ciMake, used) }
	for _, e := range ranElsewhere {
		raw, err := os.ReadFile(filepath.Join(root, e.file))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range e.needles {
			if !strings.Contains(string(raw), n) {
				t.Errorf("README command %q is said to be run by %s, but %s does not contain %q", e.command, e.by, e.file, n)
			}
		}
	}

	s := newReadmeSandbox(t, ctx, root)
	for _, b := range blocks {
		env := append([]string(nil), s.env...)
		var prelude []string // source and export lines, in effect for the rest of the block
		for _, cmd := range b.commands {
			if by, ok := covered(cmd); ok {
				t.Logf("%s:%d: %s: %s", b.file, b.line, cmd, by)
				continue
			}
			if strings.HasPrefix(cmd, "source ") || strings.HasPrefix(cmd, ". ") || strings.HasPrefix(cmd, "export ") {
				prelude = append(prelude, s.subst.Replace(cmd))
				continue
			}
			if !runsHere(cmd) {
				t.Errorf("%s:%d: %q: nothing runs this command: run it in this test, in scripts/demo.sh or .ci/run, or list it in notRun with the reason", b.file, b.line, cmd)
				continue
			}
			s.before(ctx, cmd)
			run, cmdEnv := s.command(cmd)
			shown := s.subst.Replace(cmd)
			if strings.HasSuffix(run, "&") || strings.HasPrefix(cmd, "bin/starter codec-server") {
				s.startLong(ctx, b.file, b.line, cmd, strings.Join(append(prelude, "exec "+strings.TrimSuffix(run, "&")), "\n"), append(env, cmdEnv...))
				continue
			}
			c := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", strings.Join(append(prelude, run), "\n"))
			c.Dir, c.Env = s.dir, append(env, cmdEnv...)
			out, err := c.CombinedOutput()
			if err != nil {
				t.Errorf("%s:%d: %s\n  ran as: %s\n  %v\n%s", b.file, b.line, cmd, shown, err, out)
				continue
			}
			t.Logf("%s:%d: %s: exit 0", b.file, b.line, cmd)
			s.after(ctx, cmd, string(out))
		}
	}
	for _, e := range ranElsewhere {
		if !used[e.command] {
			t.Errorf("ranElsewhere lists %q, which is no longer in README.md or docs/*.md: remove it", e.command)
		}
	}
	for prefix := range notRun {
		if !used[prefix] {
			t.Errorf("notRun lists %q, which matches no command in README.md or docs/*.md: remove it", prefix)
		}
	}
}

// coveredElsewhere says what runs cmd, if not this test: .ci/run (make
// targets in ciMake), ranElsewhere, or nothing for a reason (notRun).
// used records the entries that matched.
func coveredElsewhere(cmd string, ciMake map[string]string, used map[string]bool) (string, bool) {
	if target, ok := strings.CutPrefix(cmd, "make "); ok && ciMake[target] != "" {
		return ciMake[target], true
	}
	for _, e := range ranElsewhere {
		if e.command == cmd {
			used[e.command] = true
			return e.by, true
		}
	}
	for prefix, why := range notRun {
		if strings.HasPrefix(cmd, prefix) {
			used[prefix] = true
			return "not run: " + why, true
		}
	}
	return "", false
}

// runsHere reports whether this test knows how to run cmd in its sandbox.
func runsHere(cmd string) bool {
	for _, p := range []string{"bin/", "printf ", "kubectl "} {
		if strings.HasPrefix(cmd, p) {
			return true
		}
	}
	return false
}

// TestReadmeParser: continuation lines join, comments go, session output
// is not a command, YAML is not shell, and a command that nothing runs is
// neither covered elsewhere nor runnable here (so TestReadmeCommands fails).
func TestReadmeParser(t *testing.T) {
	readme := "# x\n\n```\nmake demo    # start\n             # more comment\nprintf '%s\\n' \"$A\" \\\n  | bin/starter stage-keys t  # stdin\n```\n\n" +
		"```yaml\nkey: value # not shell\n```\n\n  ```\n  $ bin/starter list\n  rotate/x  grace\n  ```\n\n```sh\ncurl http://example.com # new\n```\n"
	blocks := readmeBlocks("README.md", readme)
	var got []string
	for _, b := range blocks {
		got = append(got, b.commands...)
	}
	want := []string{"make demo", `printf '%s\n' "$A" | bin/starter stage-keys t`, "bin/starter list", "curl http://example.com"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("commands\n%q\nwant\n%q", got, want)
	}
	ci := map[string]string{"demo": ".ci/run"}
	if _, ok := coveredElsewhere("make demo", ci, map[string]bool{}); !ok {
		t.Error("make demo is run by .ci/run")
	}
	if by, ok := coveredElsewhere("curl http://example.com", ci, map[string]bool{}); ok || runsHere("curl http://example.com") {
		t.Errorf("a command nothing runs must fail the README test; it is covered by %q", by)
	}
	if _, ok := coveredElsewhere("make lint", ci, map[string]bool{}); ok {
		t.Error("make lint is not run by this .ci/run")
	}
	// The pages scanned: the README first, then every docs page, the ones
	// the README's reference sections moved to included.
	files, err := readmeFiles("..")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 || files[0] != "README.md" {
		t.Errorf("pages %v: README.md must come first", files)
	}
	for _, want := range []string{"docs/catalog.md", "docs/cluster.md", "docs/encryption.md", "docs/operating.md"} {
		if !slices.Contains(files, want) {
			t.Errorf("pages %v: %s is not scanned", files, want)
		}
	}
	if b := readmeBlocks("docs/x.md", "```\nbin/starter list\n```\n"); len(b) != 1 || b[0].file != "docs/x.md" || b[0].line != 1 {
		t.Errorf("blocks %+v: each must name its page and line", b)
	}
}

// makeTargetsRunByCI returns the make targets .ci/run runs, and those they
// depend on in the Makefile, each with how it is run.
func makeTargetsRunByCI(t *testing.T, root string) map[string]string {
	t.Helper()
	ci, err := os.ReadFile(filepath.Join(root, ".ci/run"))
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	prereqs := map[string][]string{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):([^=\n]*)$`).FindAllStringSubmatch(string(mk), -1) {
		prereqs[m[1]] = strings.Fields(m[2])
	}
	out := map[string]string{}
	var add func(target, by string)
	add = func(target, by string) {
		if out[target] != "" {
			return
		}
		out[target] = by
		for _, p := range prereqs[target] {
			add(p, "make "+target+" (run by .ci/run) depends on it")
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*make ([a-z][a-z0-9-]*)\b`).FindAllStringSubmatch(string(ci), -1) {
		add(m[1], ".ci/run")
	}
	if out["test"] == "" || out["demo"] == "" {
		t.Fatalf(".ci/run must run make test and make demo; found %v", out)
	}
	return out
}

func newReadmeSandbox(t *testing.T, ctx context.Context, root string) *readmeSandbox {
	t.Helper()
	s := &readmeSandbox{t: t, dir: t.TempDir()}
	for _, d := range []string{"bin", ".devstack", "etc/rotator/codec"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(devstack.starter, filepath.Join(s.dir, "bin", "starter")); err != nil {
		t.Fatal(err)
	}
	build := goBuild(ctx, filepath.Join(s.dir, "bin", "worker"), "rotator/worker")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build worker: %v\n%s", err, out)
	}
	env, err := os.ReadFile(filepath.Join(os.Getenv("ROTATOR_DEVSTACK"), "env"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, ".devstack", "env"), env, 0o600); err != nil {
		t.Fatal(err)
	}

	s.jwt = newFixture(t, ctx, "", deployment("web", 2, envRef("app-jwt")))
	s.llm = newLLM(t, ctx, false)
	for _, f := range []*fixture{s.jwt, s.llm.fixture} {
		t.Cleanup(func() { terminate(f.target) })
	}
	deleteSchedulesAtCleanup(t, s.jwt.target)
	cat, err := os.ReadFile(s.jwt.catalog)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "rotator.yaml"), cat, 0o600); err != nil {
		t.Fatal(err)
	}

	codecServer, workerHTTP := freePort(t), freePort(t)
	s.subst = strings.NewReplacer(
		"orchestrator-jwt", s.jwt.target,
		"orchestrator-llm", s.llm.target,
		"-n rotator ", "-n "+s.jwt.ns+" ",
		"/etc/rotator/", s.dir+"/etc/rotator/",
		"127.0.0.1:8234", codecServer,
	)
	kubectlDir := filepath.Dir(os.Getenv("KUBECTL"))
	s.env = append(withoutCodecEnv(devstack.env),
		"PATH="+kubectlDir+":"+os.Getenv("PATH"),
		"USER=readme-test",
		"ROTATOR_TASK_QUEUE="+s.jwt.taskQueue,
		"ROTATOR_HTTP_ADDRESS="+workerHTTP,
		"CODEC_LISTEN="+codecServer,
	)
	return s
}

// command is cmd as it runs in the sandbox, and the environment it needs
// beyond the block's.
func (s *readmeSandbox) command(cmd string) (string, []string) {
	run := s.subst.Replace(cmd)
	var env []string
	switch {
	case cmd == "bin/starter codec-server":
		// Its default port may be taken by a codec server someone runs
		// on the devstack; the port is the only change.
		run += ` --listen "$CODEC_LISTEN"`
	case strings.HasPrefix(cmd, "bin/worker"):
		// A task queue of its own: the worker must not take the demo's
		// or another test's tasks.
		env = append(env, "ROTATOR_TASK_QUEUE=readme-worker-"+randomSuffix())
	case strings.Contains(cmd, "orchestrator-llm"):
		// The apikeys target has a catalog and a worker of its own; the
		// keys reach printf through the environment, as in the README.
		env = append(env, "ROTATOR_CATALOG="+s.llm.catalog, "ROTATOR_TASK_QUEUE="+s.llm.taskQueue,
			"NEW_OPENAI="+s.newKeys[0], "NEW_ANTHROPIC="+s.newKeys[1])
	}
	return run, env
}

// before puts the scratch targets where the README's command expects
// them: in grace for approve and abort, waiting for keys for stage-keys,
// and a keyring in place for the codec server.
func (s *readmeSandbox) before(ctx context.Context, cmd string) {
	t := s.t
	switch {
	case strings.HasPrefix(cmd, "bin/starter approve orchestrator-jwt"), strings.HasPrefix(cmd, "bin/starter abort orchestrator-jwt"):
		if !s.inGrace(ctx, s.jwt) {
			if out, err := s.jwt.starter(ctx, "rotate", s.jwt.target, "--by", "readme-test"); err != nil {
				t.Fatalf("start a rotation for %q: %v\n%s", cmd, err, out)
			}
			waitForStep(t, ctx, s.jwt, workflows.StepGrace)
		}
	case strings.HasPrefix(cmd, "bin/starter retry orchestrator-jwt"):
		s.rollbackNeedsPerson(ctx)
	case strings.Contains(cmd, "bin/starter stage-keys orchestrator-llm"):
		waitForStep(t, ctx, s.llm.fixture, workflows.StepAwaitKeys)
		s.newKeys[0], s.newKeys[1] = s.llm.newKeys()
		devstack.remember([]byte(s.newKeys[0]), []byte(s.newKeys[1]))
	case strings.HasPrefix(cmd, "bin/starter codec-server --listen"):
		// The keyring and token the README mounts from Secrets.
		keys, err := os.ReadFile(filepath.Join(s.dir, "codec-keys"))
		if err != nil {
			t.Fatalf("%q needs the codec-keys an earlier README command writes: %v", cmd, err)
		}
		token := randomHex(t, 24)
		devstack.remember(keys, []byte(token))
		for name, v := range map[string][]byte{"keys": keys, "token": []byte(token + "\n")} {
			if err := os.WriteFile(filepath.Join(s.dir, "etc/rotator/codec", name), v, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// after checks what a command did, beyond its exit status.
func (s *readmeSandbox) after(ctx context.Context, cmd, out string) {
	t := s.t
	switch {
	case strings.HasPrefix(cmd, "bin/starter approve orchestrator-jwt"), strings.HasPrefix(cmd, "bin/starter abort orchestrator-jwt"),
		strings.HasPrefix(cmd, "bin/starter retry orchestrator-jwt"):
		// The next command may need a fresh rotation: let this one end.
		waitForEnd(t, ctx, workflows.WorkflowID(s.jwt.target))
	case strings.Contains(cmd, "stage-keys"):
		waitForStep(t, ctx, s.llm.fixture, workflows.StepGrace)
	case strings.HasPrefix(cmd, "bin/starter codec keygen"):
		for _, f := range []string{"codec-keys", ".devstack/codec-keys"} {
			if b, err := os.ReadFile(filepath.Join(s.dir, f)); err == nil {
				devstack.remember(b)
			}
		}
	case strings.HasPrefix(cmd, "bin/starter schedules apply -f rotator.yaml") && !strings.Contains(cmd, "--dry-run"):
		if _, err := devstack.temporal.ScheduleClient().GetHandle(ctx, "rotation/"+s.jwt.target).Describe(ctx); err != nil {
			t.Errorf("%s: no schedule rotation/%s: %v\n%s", cmd, s.jwt.target, err, out)
		}
	}
}

// inGrace reports whether the fixture's rotation is running in grace.
// rollbackNeedsPerson brings the jwt rotation where `starter retry` is
// for: somebody repoints the consumer to another Secret during grace, so
// an abort's rollback finds it on neither version and stops; then they
// put it back on the new version, and the rollback can finish.
func (s *readmeSandbox) rollbackNeedsPerson(ctx context.Context) {
	t, f := s.t, s.jwt
	if out, err := f.starter(ctx, "rotate", f.target, "--by", "readme-test"); err != nil {
		t.Fatalf("start a rotation for retry: %v\n%s", err, out)
	}
	waitForStep(t, ctx, f, workflows.StepGrace)
	st := f.status(ctx)
	repoint := func(name string) {
		t.Helper()
		patch := fmt.Sprintf(`[{"op":"replace","path":"/spec/template/spec/containers/0/env/0/valueFrom/secretKeyRef/name","value":%q}]`, name)
		if _, err := devstack.kube.AppsV1().Deployments(f.ns).Patch(ctx, "web", types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	repoint("somebody-elses-secret")
	if out, err := f.starter(ctx, "abort", f.target, "--by", "readme-test", "--reason", "for retry"); err != nil {
		t.Fatalf("abort: %v\n%s", err, out)
	}
	waitForStep(t, ctx, f, workflows.StepCompensationFailed)
	repoint(st.New.Name)
}

func (s *readmeSandbox) inGrace(ctx context.Context, f *fixture) bool {
	out, err := f.starter(ctx, "status", f.target)
	return err == nil && regexp.MustCompile(`(?m)^step\s+grace `).MatchString(out)
}

// startLong starts a command that runs until stopped (a worker, a
// server), checks that it is still up a few seconds later (a server must
// also answer, a worker with a keyring must say that it encrypts), then
// stops it.
func (s *readmeSandbox) startLong(ctx context.Context, file string, line int, cmd, script string, env []string) {
	t := s.t
	c := exec.Command("bash", "-euo", "pipefail", "-c", script)
	c.Dir, c.Env = s.dir, env
	var out lockedBuffer
	c.Stdout, c.Stderr = &out, &out
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		t.Errorf("%s:%d: %s: %v", file, line, cmd, err)
		return
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	defer func() {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}()
	addr := ""
	if strings.HasPrefix(cmd, "bin/starter codec-server") {
		for _, e := range env {
			if v, ok := strings.CutPrefix(e, "CODEC_LISTEN="); ok {
				addr = v
			}
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		select {
		case err := <-exited:
			exited <- err
			t.Errorf("%s:%d: %s exited: %v\n%s", file, line, cmd, err, out.bytes())
			return
		case <-ctx.Done():
			t.Errorf("%s:%d: %s: %v before it was checked", file, line, cmd, ctx.Err())
			return
		case <-time.After(3 * time.Second):
		}
		switch {
		case addr == "":
			if strings.Contains(script, "ROTATOR_CODEC_KEYS_FILE") && !bytes.Contains(out.bytes(), []byte("payload encryption on")) {
				t.Errorf("%s:%d: %s: the worker does not log that it encrypts\n%s", file, line, cmd, out.bytes())
				return
			}
			t.Logf("%s:%d: %s: running", file, line, cmd)
			return
		case time.Now().After(deadline):
			t.Errorf("%s:%d: %s: %s did not answer within 20s\n%s", file, line, cmd, addr, out.bytes())
			return
		}
		resp, err := http.Get("http://" + addr + "/login")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s:%d: %s: GET /login: %s", file, line, cmd, resp.Status)
		}
		t.Logf("%s:%d: %s: serving on %s", file, line, cmd, addr)
		return
	}
}

// freePort returns a loopback address nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitForEnd waits until the workflow is closed.
func waitForEnd(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	if err := devstack.temporal.GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil && ctx.Err() != nil {
		t.Fatalf("%s did not end: %v", id, err)
	}
}

// terminate ends a scratch rotation left running, so that its grace timer
// does not outlive the test.
func terminate(target string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = devstack.temporal.TerminateWorkflow(ctx, workflows.WorkflowID(target), "", "readme test done")
}
