package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runMainEnv makes the test binary run the CLI's main instead of the tests,
// so the table below sees real exit statuses and real stderr.
const runMainEnv = "STARTER_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// cliRun is one run of the CLI as a process.
type cliRun struct {
	stdout, stderr string
	exit           int
	dirEntries     int
}

// runCLI runs the CLI in an empty directory with the sample catalog, against
// an address where no Temporal server listens, and without $USER, so --by
// has no default.
func runCLI(t *testing.T, stdin string, args ...string) cliRun {
	t.Helper()
	cat, err := filepath.Abs("../rotator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], append([]string{"--temporal-address", "127.0.0.1:1", "--catalog", cat}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "USER=", "ROTATOR_CATALOG=", "TEMPORAL_ADDRESS=127.0.0.1:1")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	r := cliRun{stdout: out.String(), stderr: errOut.String()}
	switch {
	case errors.As(err, &exit):
		r.exit = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.dirEntries = len(entries)
	return r
}

// TestBadInput is the CLI half of the bad-input table (issue 7, part 5):
// each bad command line exits 1 with an error that names the argument or
// flag and the fix, on stderr, having printed nothing else, written no
// file and dialed nothing (any dial would fail with "connect to Temporal").
// The rows that need a rotation in a given state are in e2e/badinput_test.go.
func TestBadInput(t *testing.T) {
	const key = "sk-proj-THISISASECRETVALUE0123456789"
	llm := []string{"stage-keys", "orchestrator-llm", "--by", "t"}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("targets:\n  - name: x\n    kind: jwt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		category, stdin string
		args            []string
		want            string
	}{
		// Unknown targets, for every command that reads the catalog.
		{"unknown target", "", []string{"rotate", "nope", "--by", "t"}, `target "nope" is not in the catalog: add it to rotator.yaml or use one of orchestrator-jwt`},
		{"unknown target", "", []string{"rotate", "Bad_Name", "--by", "t"}, `target "Bad_Name" is not in the catalog`},
		{"unknown target", "", []string{"rotate", strings.Repeat("x", 100000), "--by", "t"}, `…" is not in the catalog`},
		{"unknown target", "", []string{"stage-keys", "nope", "--by", "t"}, `target "nope" is not in the catalog`},
		{"unknown target", "", []string{"postgres", "setup", "nope"}, `target "nope" is not in the catalog`},
		// Targets of the wrong kind for the command.
		{"wrong kind", "", []string{"stage-keys", "orchestrator-jwt", "--by", "t"}, "is of kind jwt: stage-keys is for apikeys targets"},
		{"wrong kind", "", []string{"postgres", "setup", "orchestrator-jwt"}, "postgres.strategy: setup is for alternating-users targets only"},
		// Missing or extra arguments.
		{"arguments", "", []string{"rotate"}, "accepts 1 arg(s), received 0"},
		{"arguments", "", []string{"approve"}, "accepts 1 arg(s), received 0"},
		{"arguments", "", []string{"abort", "a", "b"}, "accepts 1 arg(s), received 2"},
		{"arguments", "", []string{"status"}, "accepts 1 arg(s), received 0"},
		{"arguments", "", []string{"wait"}, "accepts 1 arg(s), received 0"},
		{"arguments", "", []string{"list", "extra"}, `unknown command "extra" for "starter list"`},
		{"arguments", "", []string{"schedules", "apply", "extra"}, `unknown command "extra"`},
		{"arguments", "", []string{"nope"}, `unknown command "nope" for "starter"`},
		// Flags: unknown, missing values, bad values.
		{"flags", "", []string{"rotate", "orchestrator-jwt", "--nope"}, "unknown flag: --nope"},
		{"flags", "", []string{"rotate", "orchestrator-jwt", "--by", "t", "--grace", "-1h"}, `--grace: "-1h" must be a positive duration such as 24h or 7d; use --emergency to skip grace`},
		{"flags", "", []string{"rotate", "orchestrator-jwt", "--by", "t", "--grace", "soon"}, `--grace: "soon" must be a positive duration`},
		{"flags", "", []string{"rotate", "orchestrator-jwt", "--by", "t", "--grace", "999999999d"}, `--grace: "999999999d" must be a positive duration`},
		{"flags", "", []string{"approve", "orchestrator-jwt"}, "--by: is required: say who approves"},
		{"flags", "", []string{"abort", "orchestrator-jwt", "--by", ""}, "--by: is required: say who aborts"},
		{"flags", "", []string{"approve", "orchestrator-jwt", "--by", "t"}, `--reason: is required: say why you approve, e.g. starter approve <target> --reason "tokens re-issued"`},
		{"flags", "", []string{"abort", "orchestrator-jwt", "--by", "t", "--reason", " \t "}, "--reason: is required: say why you abort"},
		{"flags", "", []string{"approve", "orchestrator-jwt", "--by", "t", "--reason", strings.Repeat("x", 501)}, "--reason: is 501 characters long: keep it to 500"},
		{"flags", "", []string{"rotate", "orchestrator-jwt", "--by", "t", "--grace", "30m"}, "--grace: 30m is shorter than target orchestrator-jwt's minimum of 1h (minGrace in the catalog): use --grace 1h or longer, leave --grace out for the catalog's 168h, or lower minGrace in rotator.yaml"},
		{"flags", "", []string{"stage-keys", "orchestrator-llm"}, "--by: is required: say who stages the keys"},
		{"flags", "", []string{"approve", "orchestrator-jwt", "--by", "t", "--reason", "r", "--timeout", "0s"}, "--timeout: 0s must be positive, e.g. --timeout 2m"},
		{"flags", "", []string{"abort", "orchestrator-jwt", "--by", "t", "--reason", "r", "--timeout", "soon"}, `invalid argument "soon" for "--timeout" flag`},
		{"flags", "", []string{"report", "-o", "xml"}, `--output: "xml" is not a format: use table, json or csv`},
		{"flags", "", []string{"plan", "orchestrator-jwt", "--output", "yaml"}, `--output: "yaml" is not a format: use text or json`},
		{"unknown target", "", []string{"plan", "nope"}, `target "nope" is not in the catalog`},
		{"flags", "", []string{"wait", "orchestrator-jwt", "--timeout", "-1"}, `invalid argument "-1" for "--timeout" flag`},
		{"flags", "", []string{"wait", "orchestrator-jwt", "--timeout", "-1s"}, "--timeout: -1s must be positive, e.g. --timeout 10m"},
		{"flags", "", []string{"wait", "orchestrator-jwt", "--timeout", "0s"}, "--timeout: 0s must be positive"},
		{"flags", "", []string{"wait", "orchestrator-jwt", "--step", "bogus"}, `--step: "bogus" is not a step: use one of preflight, awaiting-keys, stage`},
		{"flags", "", []string{"wait", "orchestrator-jwt", "--step", "Grace"}, `--step: "Grace" is not a step`},
		{"flags", "", []string{"schedules", "apply", "-f"}, "flag needs an argument: 'f' in -f"},
		{"flags", "", []string{"codec", "keygen", "--id", "a b"}, `--id "a b": use 1 to 64 letters, digits`},
		// Catalogs that are missing or bad.
		{"catalog", "", []string{"--catalog", "missing.yaml", "rotate", "orchestrator-jwt"}, "read catalog: open missing.yaml"},
		{"catalog", "", []string{"schedules", "apply", "-f", "missing.yaml"}, "read catalog: open missing.yaml"},
		{"catalog", "", []string{"schedules", "apply", "--file", bad}, "namespace: is required"},
		// stage-keys: what it reads on stdin, and never echoed.
		{"stdin", "", llm, "stdin: no keys: pipe lines KEY=value"},
		{"stdin", "# only a comment\n\n", llm, "stdin: no keys"},
		{"stdin", key + "\n", llm, "stdin line 1: want KEY=value, e.g. openai-api-key=<new key>"},
		{"stdin", "openai-api-key=" + key + "\n=" + key + "\n", llm, "stdin line 2: want KEY=value"},
		{"stdin", "openai-api-key=" + key + "\nopenai-api-key=" + key + "\n", llm, "stdin line 2: openai-api-key is given twice"},
		{"stdin", "openai-api-key=" + key + "\n", llm, "anthropic-api-key: is missing"},
		{"stdin", "openai-api-key=" + key + "\nanthropic-api-key=" + key + "\nmistral=" + key + "\n", llm, "mistral: is not a key of target orchestrator-llm"},
		{"stdin", "openai-api-key=" + strings.Repeat(key, 3000) + "\n", llm, "stdin line 1: longer than 64 KiB"},
	} {
		t.Run(tc.category+"/"+strings.Join(tc.args, " ")[:min(60, len(strings.Join(tc.args, " ")))], func(t *testing.T) {
			r := runCLI(t, tc.stdin, tc.args...)
			if r.exit != 1 {
				t.Errorf("exit status %d, want 1", r.exit)
			}
			if !strings.HasPrefix(r.stderr, "error: ") || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr is not an error containing %q:\n%s", tc.want, clip(r.stderr))
			}
			if r.stdout != "" {
				t.Errorf("printed on stdout: %s", clip(r.stdout))
			}
			if strings.Contains(r.stderr, "connect to Temporal") {
				t.Errorf("dialed Temporal before checking the input: %s", clip(r.stderr))
			}
			if r.dirEntries != 0 {
				t.Errorf("left %d files in the working directory", r.dirEntries)
			}
			if strings.Contains(r.stderr, "THISISASECRET") {
				t.Error("the error shows a key")
			}
			if len(r.stderr) > 2048 {
				t.Errorf("stderr is %d bytes: a huge argument must be truncated", len(r.stderr))
			}
		})
	}
}

// The table above can tell success from failure: good input exits 0, and a
// command that passes the checks does try to dial.
func TestBadInputBaseline(t *testing.T) {
	if r := runCLI(t, "", "rotate", "--help"); r.exit != 0 || !strings.Contains(r.stdout, "Start a rotation") {
		t.Errorf("rotate --help: exit %d, stdout %q", r.exit, clip(r.stdout))
	}
	if r := runCLI(t, "", "wait", "orchestrator-jwt", "--step", "grace", "--timeout", "1s"); r.exit != 1 || !strings.Contains(r.stderr, "connect to Temporal") {
		t.Errorf("good wait flags: want a failed dial, got exit %d: %s", r.exit, clip(r.stderr))
	}
	// A reason of exactly the limit, a grace of exactly the minimum, and
	// a short grace with --emergency (which skips grace) pass the checks.
	for _, args := range [][]string{
		{"approve", "orchestrator-jwt", "--by", "t", "--reason", strings.Repeat("é", 500)},
		{"abort", "orchestrator-jwt", "--by", "t", "--reason", "  401s after rollout "},
		{"rotate", "orchestrator-jwt", "--by", "t", "--grace", "1h"},
		{"rotate", "orchestrator-jwt", "--by", "t", "--grace", "1m", "--emergency"},
	} {
		if r := runCLI(t, "", args...); r.exit != 1 || !strings.Contains(r.stderr, "connect to Temporal") {
			t.Errorf("%v: want a failed dial, got exit %d: %s", args, r.exit, clip(r.stderr))
		}
	}
}

func clip(s string) string {
	if len(s) > 500 {
		return s[:500] + "…"
	}
	return s
}
