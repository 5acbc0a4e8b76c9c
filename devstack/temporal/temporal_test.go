package temporal_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	devtemporal "rotator/devstack/temporal"
)

// childEnv makes the test binary act as a bare devstack process running one
// server, so that the test can restart the server in a fresh process: within
// one process the sqlite plugin would reuse its open connection and hide a
// database that was never written to disk.
const childEnv = "DEVSTACK_TEMPORAL_TEST_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		var o devtemporal.Options
		if err := json.Unmarshal([]byte(spec), &o); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		if err := devtemporal.Run(ctx, o); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

var searchAttributes = map[string]string{
	"RotationTarget": "Keyword",
	"RotationKind":   "Keyword",
	"RotationStep":   "Keyword",
}

func TestRunPersistsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	// Frontend, its three sibling services, the HTTP API and the UI.
	base := freePortRun(t, 6)
	o := devtemporal.Options{
		DBFile:           filepath.Join(dir, "state", "temporal.db"),
		IP:               "127.0.0.1",
		FrontendPort:     base,
		HTTPPort:         base + 4,
		UIPort:           base + 5,
		Namespace:        "default",
		SearchAttributes: searchAttributes,
		ReadyFile:        filepath.Join(dir, "temporal.ready"),
		Logger:           slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	hostPort := net.JoinHostPort(o.IP, strconv.Itoa(o.FrontendPort))
	const workflowID = "persistence-check"

	// First run: a new database.
	stop := startInProcess(t, o)
	c := dial(t, hostPort)
	nsID := checkNamespace(t, c, o.Namespace)
	checkSearchAttributes(t, c, o.Namespace)
	checkUISettings(t, o)
	// No worker polls this task queue, so the workflow stays open and must
	// come back from the database after every restart.
	_, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID:        workflowID,
		TaskQueue: "nobody-polls",
		TypedSearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword("RotationTarget").ValueSet("ns/secret"),
		),
	}, "NoSuchWorkflow")
	if err != nil {
		t.Fatalf("starting workflow: %v", err)
	}
	c.Close()
	stop()

	// Second run in the same process, as the brief's in-process restart.
	stop = startInProcess(t, o)
	c = dial(t, hostPort)
	if got := checkNamespace(t, c, o.Namespace); got != nsID {
		t.Fatalf("namespace ID after in-process restart = %s, want %s", got, nsID)
	}
	checkSearchAttributes(t, c, o.Namespace)
	checkWorkflow(t, c, workflowID)
	// The attributes were in the database at start, so the server no
	// longer refreshes its caches on every read: they must know them.
	if _, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID:        workflowID + "-2",
		TaskQueue: "nobody-polls",
		TypedSearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword("RotationTarget").ValueSet("ns/other"),
		),
	}, "NoSuchWorkflow"); err != nil {
		t.Fatalf("starting workflow with a search attribute after restart: %v", err)
	}
	c.Close()
	stop()

	// Third run in a new process: only what reached the file survives.
	stop = startChild(t, o)
	c = dial(t, hostPort)
	if got := checkNamespace(t, c, o.Namespace); got != nsID {
		t.Fatalf("namespace ID after process restart = %s, want %s", got, nsID)
	}
	checkSearchAttributes(t, c, o.Namespace)
	checkWorkflow(t, c, workflowID)
	c.Close()
	stop()
}

// TestRunAddsSearchAttributesToAnExistingDatabase: an attribute added to
// Options after the database was made is registered through the API at
// start, which the services' caches learn of only when they next reload;
// until then the server refreshes them on every read, so the attribute can
// be used at once.
func TestRunAddsSearchAttributesToAnExistingDatabase(t *testing.T) {
	dir := t.TempDir()
	base := freePortRun(t, 4)
	o := devtemporal.Options{
		DBFile:           filepath.Join(dir, "temporal.db"),
		IP:               "127.0.0.1",
		FrontendPort:     base,
		Namespace:        "default",
		SearchAttributes: searchAttributes,
		ReadyFile:        filepath.Join(dir, "temporal.ready"),
		Logger:           slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	startInProcess(t, o)()

	o.SearchAttributes = maps.Clone(searchAttributes)
	o.SearchAttributes["RotationAddedLater"] = "Keyword"
	stop := startInProcess(t, o)
	defer stop()
	c := dial(t, net.JoinHostPort(o.IP, strconv.Itoa(o.FrontendPort)))
	defer c.Close()
	if _, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID:        "added-later",
		TaskQueue: "nobody-polls",
		TypedSearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword("RotationAddedLater").ValueSet("x"),
		),
	}, "NoSuchWorkflow"); err != nil {
		t.Fatalf("starting a workflow with the attribute just added: %v", err)
	}
}

func TestRunRejectsUnknownSearchAttributeType(t *testing.T) {
	dir := t.TempDir()
	err := devtemporal.Run(context.Background(), devtemporal.Options{
		DBFile:           filepath.Join(dir, "temporal.db"),
		SearchAttributes: map[string]string{"X": "Keywrd"},
	})
	if err == nil {
		t.Fatal("Run accepted an unknown search attribute type")
	}
	if _, statErr := os.Stat(filepath.Join(dir, "temporal.db")); !errors.Is(statErr, os.ErrNotExist) {
		t.Fatalf("Run created the database before rejecting its options: %v", statErr)
	}
}

// startInProcess runs the server until the returned func, which checks that
// Run returns nil and removes the ready file.
func startInProcess(t *testing.T, o devtemporal.Options) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- devtemporal.Run(ctx, o) }()
	waitReady(t, o.ReadyFile, done)
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run returned %v after cancel", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("Run did not return within a minute of cancel")
		}
		if _, err := os.Stat(o.ReadyFile); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("ready file still there after Run returned: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// startChild runs the server in a child process until the returned func,
// which interrupts it the way devstack down does.
func startChild(t *testing.T, o devtemporal.Options) (stop func()) {
	t.Helper()
	o.Logger = nil
	spec, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitReady(t, o.ReadyFile, done)
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("child exited with %v after interrupt", err)
			}
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			t.Fatal("child did not exit within a minute of interrupt")
		}
		if _, err := os.Stat(o.ReadyFile); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("ready file still there after child exited: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func waitReady(t *testing.T, path string, done <-chan error) {
	t.Helper()
	deadline := time.After(3 * time.Minute)
	for {
		if b, err := os.ReadFile(path); err == nil {
			if string(b) != "ok\n" {
				t.Fatalf("ready file holds %q, want %q", b, "ok\n")
			}
			return
		}
		select {
		case err := <-done:
			t.Fatalf("server ended before it was ready: %v", err)
		case <-deadline:
			t.Fatal("no ready file within 3 minutes")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func dial(t *testing.T, hostPort string) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  hostPort,
		Namespace: "default",
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatalf("dialing %s: %v", hostPort, err)
	}
	return c
}

func checkNamespace(t *testing.T, c client.Client, ns string) string {
	t.Helper()
	resp, err := c.WorkflowService().DescribeNamespace(context.Background(), &workflowservice.DescribeNamespaceRequest{Namespace: ns})
	if err != nil {
		t.Fatalf("describing namespace %q: %v", ns, err)
	}
	if got := resp.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(); got != 7*24*time.Hour {
		t.Errorf("retention = %v, want 168h", got)
	}
	return resp.GetNamespaceInfo().GetId()
}

func checkSearchAttributes(t *testing.T, c client.Client, ns string) {
	t.Helper()
	resp, err := c.OperatorService().ListSearchAttributes(context.Background(), &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		t.Fatalf("listing search attributes: %v", err)
	}
	for name := range searchAttributes {
		if got := resp.GetCustomAttributes()[name]; got != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
			t.Errorf("search attribute %s has type %v, want Keyword", name, got)
		}
	}
}

func checkWorkflow(t *testing.T, c client.Client, id string) {
	t.Helper()
	ctx := context.Background()
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatalf("describing workflow %s: %v", id, err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("workflow %s status = %v, want running", id, st)
	}
	list, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: `RotationTarget = "ns/secret"`})
	if err != nil {
		t.Fatalf("visibility query: %v", err)
	}
	if n := len(list.GetExecutions()); n != 1 {
		t.Fatalf("visibility query found %d workflows, want 1", n)
	}
}

// checkUISettings asks the UI server for the settings its web app reads, to
// prove it is up and lets users start, cancel, signal and reset workflows.
func checkUISettings(t *testing.T, o devtemporal.Options) {
	t.Helper()
	resp, err := http.Get("http://" + net.JoinHostPort(o.IP, strconv.Itoa(o.UIPort)) + "/api/v1/settings")
	if err != nil {
		t.Fatalf("UI settings: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	var s map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("UI settings: %s: %v", resp.Status, err)
	}
	for _, k := range []string{"StartWorkflowDisabled", "WorkflowCancelDisabled", "WorkflowSignalDisabled", "WorkflowResetDisabled", "DisableWriteActions"} {
		if v, ok := s[k]; !ok || v != false {
			t.Errorf("UI setting %s = %v, want false", k, v)
		}
	}
}

// freePortRun returns the first of n consecutive ports that are free now on
// 127.0.0.1, since the server takes FrontendPort+1..+3 besides its own.
func freePortRun(t *testing.T, n int) int {
	t.Helper()
	for range 200 {
		base := 20000 + rand.IntN(30000)
		ok := true
		for p := base; p < base+n && ok; p++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				ok = false
				continue
			}
			_ = l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port run found")
	return 0
}
