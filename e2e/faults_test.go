package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"rotator/clients"
	"rotator/workflows"
)

// outageProxy is a TCP proxy in front of a real server (PostgreSQL,
// Vault). The worker talks to the proxy, so an outage is simulated without
// touching the shared server: once the trigger says yes, every open
// connection is cut and the port refuses connections (nothing listens on
// it) for the outage's length, then the proxy listens again on the same
// address and forwards as before. The trigger is asked before any client
// bytes are forwarded, on new and on pooled connections alike, so the
// request that finds the trigger true is the outage's first victim.
type outageProxy struct {
	t      *testing.T
	target string
	addr   string
	outage time.Duration
	// trigger is asked with each chunk the client sends.
	trigger func(chunk []byte) bool

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	state proxyState
	// down and up are when the outage began and ended.
	down, up time.Time
	// closed is set at the end of the test: no outage ends after it.
	closed bool
}

type proxyState int

const (
	proxyArmed proxyState = iota
	proxyDown
	proxyRestored
)

// newOutageProxy listens on a free port of 127.0.0.1 and forwards to
// target until trigger returns true.
func newOutageProxy(t *testing.T, target string, outage time.Duration, trigger func(chunk []byte) bool) *outageProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &outageProxy{t: t, target: target, addr: ln.Addr().String(), outage: outage, trigger: trigger,
		ln: ln, conns: map[net.Conn]struct{}{}}
	go p.serve(ln)
	t.Cleanup(p.close)
	return p
}

// port is the proxy's port, for a catalog's postgres.port. It reads p.ln
// under the lock: restore replaces the listener.
func (p *outageProxy) port() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ln.Addr().(*net.TCPAddr).Port
}

func (p *outageProxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed: an outage, or the end of the test
		}
		go p.forward(c)
	}
}

func (p *outageProxy) forward(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(client, server) {
		return
	}
	defer p.untrack(client, server)
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(client, server)
		done <- struct{}{}
	}()
	go func() {
		p.copyChecked(server, client)
		done <- struct{}{}
	}()
	<-done
}

// copyChecked forwards the client's bytes, asking the trigger before each
// chunk while the proxy is armed.
func (p *outageProxy) copyChecked(server, client net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if p.armed() && p.trigger(buf[:n]) {
				p.goDown()
				return
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *outageProxy) armed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state == proxyArmed
}

// track registers a connection pair, or cuts it when an outage began
// while it was being set up.
func (p *outageProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == proxyDown {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *outageProxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(p.conns, c)
	}
}

// goDown starts the outage: the listener closes (connections are refused)
// and every open connection is cut; after the outage the proxy listens
// again.
func (p *outageProxy) goDown() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != proxyArmed {
		return
	}
	p.state, p.down = proxyDown, time.Now()
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.t.Logf("outage of %s begins (%s)", p.target, p.outage)
	// The outage's length is the fault being simulated, not a wait for
	// something to happen, so a timer is what models it.
	time.AfterFunc(p.outage, p.restore)
}

func (p *outageProxy) restore() {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return
	}
	var ln net.Listener
	var err error
	// The port was ours a moment ago; a few tries cover a socket that is
	// still being torn down.
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		if ln != nil {
			ln.Close()
		}
		return
	}
	if err != nil {
		p.t.Errorf("outage proxy cannot listen on %s again: %v", p.addr, err)
		return
	}
	p.ln, p.state, p.up = ln, proxyRestored, time.Now()
	go p.serve(ln)
}

// happened reports whether the outage began, and when it began and ended.
func (p *outageProxy) happened() (bool, time.Time, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state != proxyArmed, p.down, p.up
}

func (p *outageProxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.state == proxyArmed {
		p.state = proxyRestored
	}
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
}

// atStep is a trigger that asks the rotation's status query whether it
// reached the step. The connection waits for the answer, so the step's
// first request is the one cut.
func atStep(id string, step workflows.Step) func() bool {
	return func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := queryStatus(ctx, id)
		return err == nil && st.Step == step
	}
}

// kubeFault is what faultTransport answers instead of the apiserver for
// the next requests of one kind; before, when set, runs first (a
// concurrent edit) and the request then goes through.
type kubeFault struct {
	method   string // PATCH, POST, ...
	resource string // deployments, secrets, ...
	statuses []int
	before   func(*http.Request)
}

// faultTransport sits between the worker's kube client and the apiserver
// and plays kubeFaults in order, one per matching request; the rest of the
// traffic is real.
type faultTransport struct {
	next http.RoundTripper

	mu     sync.Mutex
	faults []*kubeFault
	// played counts the injected answers, by "METHOD resource".
	played map[string]int
	// answered lists the apiserver's status codes, by "METHOD resource".
	answered map[string][]int
}

// faultyKube returns a kube client for the worker whose requests go
// through a faultTransport, with the devstack's credentials; mutate may
// change the configuration further (impersonation).
func faultyKube(t *testing.T, mutate func(*rest.Config), faults ...*kubeFault) (kubernetes.Interface, *faultTransport) {
	t.Helper()
	cfg, err := clients.KubeConfig(50, 100)
	if err != nil {
		t.Fatal(err)
	}
	ft := &faultTransport{faults: faults, played: map[string]int{}, answered: map[string][]int{}}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		ft.next = rt
		return ft
	}
	if mutate != nil {
		mutate(cfg)
	}
	k, err := clients.KubeFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k, ft
}

// RoundTrip answers with the next queued fault for the request's method
// and resource, or forwards it.
func (ft *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resource := resourceOf(req.URL.Path)
	var before func(*http.Request)
	status := 0
	ft.mu.Lock()
	for _, f := range ft.faults {
		if f.method != req.Method || f.resource != resource {
			continue
		}
		if f.before != nil {
			before, f.before = f.before, nil
			break
		}
		if len(f.statuses) > 0 {
			status, f.statuses = f.statuses[0], f.statuses[1:]
			ft.played[req.Method+" "+resource]++
			break
		}
	}
	ft.mu.Unlock()
	if before != nil {
		before(req)
	}
	if status == 0 {
		resp, err := ft.next.RoundTrip(req)
		if err == nil {
			ft.mu.Lock()
			ft.answered[req.Method+" "+resource] = append(ft.answered[req.Method+" "+resource], resp.StatusCode)
			ft.mu.Unlock()
		}
		return resp, err
	}
	if req.Body != nil {
		req.Body.Close()
	}
	reason := map[int]string{http.StatusConflict: "Conflict", http.StatusInternalServerError: "InternalError",
		http.StatusServiceUnavailable: "ServiceUnavailable", http.StatusForbidden: "Forbidden"}[status]
	body := fmt.Sprintf(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"injected by the e2e test: %d","reason":%q,"code":%d}`,
		status, reason, status)
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"application/json"}},
		Body:    io.NopCloser(strings.NewReader(body)),
		Request: req, ContentLength: int64(len(body)),
	}, nil
}

// injected is how many answers of "METHOD resource" were faults.
func (ft *faultTransport) injected(key string) int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.played[key]
}

// answers returns the apiserver's status codes for "METHOD resource", in
// order.
func (ft *faultTransport) answers(key string) []int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return slices.Clone(ft.answered[key])
}

// resourceOf returns the resource of a namespaced API path:
// /apis/apps/v1/namespaces/ns/deployments/api -> deployments.
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, p := range parts {
		if p == "namespaces" && i+2 < len(parts) {
			return parts[i+2]
		}
	}
	return ""
}

// activityRun is one scheduled activity as its history shows it: the
// attempt that closed it, how it ended and how long it took from being
// scheduled.
type activityRun struct {
	attempt int32
	failure string
	// lastFailure is why the attempt before the last one failed.
	lastFailure string
	took        time.Duration
}

// activityRuns lists every run of the activity type in the workflow's
// history, in order. Temporal records only the last attempt of a retried
// activity, with its attempt number: attempt > 1 is a retry. A local
// activity is its marker, which holds its last attempt too; its time is
// counted from the workflow task it ran in.
func activityRuns(t *testing.T, ctx context.Context, id, activityType string) []activityRun {
	t.Helper()
	h := history(t, ctx, id)
	scheduled := map[int64]time.Time{}
	started := map[int64]int32{}
	lastFailure := map[int64]string{}
	var runs []activityRun
	// taskBegan is when the run of workflow tasks that local activities
	// are recorded in began: markers land when the last of them completes.
	var taskBegan time.Time
	inTasks := false
	for _, ev := range h.Events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
			enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT, enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED,
			enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			if !inTasks {
				taskBegan, inTasks = ev.GetEventTime().AsTime(), true
			}
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if la, ok := localActivity(ev.GetMarkerRecordedEventAttributes()); ok && la.ActivityType == activityType {
				runs = append(runs, activityRun{attempt: la.Attempt, failure: ev.GetMarkerRecordedEventAttributes().GetFailure().GetMessage(),
					took: ev.GetEventTime().AsTime().Sub(taskBegan)})
			}
		default:
			inTasks = false
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			if ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == activityType {
				scheduled[ev.GetEventId()] = ev.GetEventTime().AsTime()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := ev.GetActivityTaskStartedEventAttributes()
			started[a.GetScheduledEventId()] = a.GetAttempt()
			lastFailure[a.GetScheduledEventId()] = a.GetLastFailure().GetMessage()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			s := ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
			if at, ok := scheduled[s]; ok {
				runs = append(runs, activityRun{attempt: started[s], lastFailure: lastFailure[s], took: ev.GetEventTime().AsTime().Sub(at)})
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			a := ev.GetActivityTaskFailedEventAttributes()
			if at, ok := scheduled[a.GetScheduledEventId()]; ok {
				runs = append(runs, activityRun{attempt: started[a.GetScheduledEventId()], failure: a.GetFailure().GetMessage(),
					lastFailure: lastFailure[a.GetScheduledEventId()], took: ev.GetEventTime().AsTime().Sub(at)})
			}
		}
	}
	return runs
}

// localActivityMarker is the part of the SDK's local activity marker data
// the tests read (the SDK keeps its type unexported).
type localActivityMarker struct {
	ActivityType string
	Attempt      int32
}

// localActivity reads a local activity's marker; ok is false for any
// other marker, or data the test cannot decode.
func localActivity(m *historypb.MarkerRecordedEventAttributes) (localActivityMarker, bool) {
	var la localActivityMarker
	if m.GetMarkerName() != "LocalActivity" {
		return la, false
	}
	p := m.GetDetails()["data"]
	if p == nil || converter.GetDefaultDataConverter().FromPayloads(p, &la) != nil {
		return la, false
	}
	return la, true
}

// firstRun returns the first run of any of the activity types (a step's
// activity under its names across versions), failing the test when there
// is none.
func firstRun(t *testing.T, ctx context.Context, id string, activityTypes ...string) activityRun {
	t.Helper()
	for _, a := range activityTypes {
		if runs := activityRuns(t, ctx, id, a); len(runs) > 0 {
			return runs[0]
		}
	}
	t.Fatalf("%s never ran in %s", strings.Join(activityTypes, " or "), id)
	return activityRun{}
}

// errNoOutage reports a fault that never fired, which would make a test
// prove nothing.
var errNoOutage = errors.New("the outage never began: the test proved nothing")
