package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"rotator/internal/leakscan"
	"rotator/workflows"
)

// delivery is one notification a receiver accepted.
type delivery struct {
	id, event string
	body      []byte
}

// noticeReceiver plays a webhook receiver (/hook) and a Slack incoming
// webhook (/slack) on a local port. It checks each webhook's signature the
// way docs/notifications.md tells receivers to, refuses the first attempt
// of one event with a 503, and keeps what it accepted.
type noticeReceiver struct {
	t   *testing.T
	srv *httptest.Server
	key []byte
	// refuseOnce is the event whose first webhook attempt gets a 503;
	// refused is closed when that happened.
	refuseOnce string
	refused    chan struct{}

	mu       sync.Mutex
	hooks    []delivery
	slack    []delivery
	attempts map[string]int
}

var slackDelivery = regexp.MustCompile(`delivery ([A-Za-z0-9.-]+)`)

func newNoticeReceiver(t *testing.T, refuseOnce string) *noticeReceiver {
	r := &noticeReceiver{t: t, key: make([]byte, 32), refuseOnce: refuseOnce, refused: make(chan struct{}), attempts: map[string]int{}}
	_, _ = rand.Read(r.key)
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *noticeReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	_, _ = devstack.notices.Write(append(body, '\n'))
	r.mu.Lock()
	defer r.mu.Unlock()
	switch req.URL.Path {
	case "/hook":
		ts, sig := req.Header.Get("X-Rotator-Timestamp"), req.Header.Get("X-Rotator-Signature")
		mac := hmac.New(sha256.New, r.key)
		mac.Write([]byte(ts + "."))
		mac.Write(body)
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || !hmac.Equal([]byte(sig), []byte("v1="+hex.EncodeToString(mac.Sum(nil)))) || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
			r.t.Errorf("webhook with a bad signature or timestamp: ts %q, signature %q", ts, sig)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var n struct {
			ID    string `json:"id"`
			Event string `json:"event"`
		}
		if err := json.Unmarshal(body, &n); err != nil || n.ID != req.Header.Get("X-Rotator-Delivery") || n.Event != req.Header.Get("X-Rotator-Event") {
			r.t.Errorf("webhook body %s does not match its headers %v", body, req.Header)
		}
		r.attempts[n.Event]++
		if n.Event == r.refuseOnce && r.attempts[n.Event] == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			close(r.refused)
			return
		}
		r.hooks = append(r.hooks, delivery{id: n.ID, event: n.Event, body: body})
	case "/slack":
		var m struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(body, &m); err != nil || m.Text == "" {
			r.t.Errorf("Slack body without text: %s", body)
		}
		id := ""
		if g := slackDelivery.FindSubmatch(body); g != nil {
			id = string(g[1])
		}
		r.slack = append(r.slack, delivery{id: id, body: body})
	default:
		w.WriteHeader(http.StatusNotFound)
		return
	}
	_, _ = io.WriteString(w, "ok")
}

func (r *noticeReceiver) accepted() (hooks, slack []delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.hooks), slices.Clone(r.slack)
}

// TestNotificationsArriveOnceAcrossAWorkerRestart: a rotation with a
// webhook and a Slack sink tells both that it started, is in grace and is
// done, each event once, with a valid signature, in the documented shape.
// The grace event's first attempt is refused, the worker is stopped and a
// new one started: the retry on the new worker delivers it, once. No
// secret value is in any body.
func TestNotificationsArriveOnceAcrossAWorkerRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rcv := newNoticeReceiver(t, "grace")
	dir := t.TempDir()
	keyFile, slackFile := filepath.Join(dir, "webhook-key"), filepath.Join(dir, "slack-url")
	if err := os.WriteFile(keyFile, rcv.key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(slackFile, []byte(rcv.srv.URL+"/slack\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := jwtSpec("    notify:\n"+
		"      - {name: hooks, webhook: {url: '"+rcv.srv.URL+"/hook', signingKeyFile: "+keyFile+"}}\n"+
		"      - {name: chat, slack: {webhookURLFile: "+slackFile+"}, events: [grace, done]}\n", nil)
	old := []byte(spec.secretData["secret"])
	f := newFixtureWith(t, ctx, spec, deployment("api", 1, envRef("app-jwt")))
	f.rotate(ctx)

	select {
	case <-rcv.refused:
	case <-ctx.Done():
		t.Fatal("the grace notification never came")
	}
	f.worker.Stop()
	f.startWorker()
	waitForStep(t, ctx, f, workflows.StepGrace)
	staged, _ := f.secretData(ctx, f.secret+"-2")
	devstack.remember(old, staged["secret"])
	for {
		if hooks, _ := rcv.accepted(); len(hooks) >= 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the grace notification was not retried on the new worker")
		case <-time.After(200 * time.Millisecond):
		}
	}
	f.approve(ctx)
	if err := f.result(ctx); err != nil {
		t.Fatal(err)
	}

	hooks, slack := rcv.accepted()
	var events, ids []string
	for _, d := range hooks {
		events = append(events, d.event)
		ids = append(ids, d.id)
	}
	if !slices.Equal(events, []string{"started", "grace", "done"}) {
		t.Errorf("webhook events %v, want started, grace, done, each once", events)
	}
	if rcv.attempts["grace"] != 2 {
		t.Errorf("grace was attempted %d times, want 2 (refused, then retried)", rcv.attempts["grace"])
	}
	if uniq := slices.Compact(slices.Sorted(slices.Values(ids))); len(uniq) != len(ids) {
		t.Errorf("a delivery id came twice: %v", ids)
	}
	var slackIDs []string
	for _, d := range slack {
		slackIDs = append(slackIDs, d.id)
	}
	if len(ids) == 3 && !slices.Equal(slackIDs, ids[1:]) {
		t.Errorf("Slack got deliveries %v, want the grace and done ones %v, each once", slackIDs, ids[1:])
	}

	// The documented shape, on the grace event.
	if len(hooks) < 2 {
		t.Fatal("no grace event to check")
	}
	var grace map[string]any
	if err := json.Unmarshal(hooks[1].body, &grace); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"id", "event", "urgent", "target", "kind", "namespace", "workflowId", "runId", "step", "at", "deadline", "message", "commands"} {
		if _, ok := grace[field]; !ok {
			t.Errorf("the grace event has no %q: %s", field, hooks[1].body)
		}
	}
	if grace["target"] != f.target || grace["workflowId"] != workflows.WorkflowID(f.target) || grace["step"] != "grace" || grace["kind"] != "jwt" {
		t.Errorf("grace event %s", hooks[1].body)
	}
	if cmds, _ := grace["commands"].(map[string]any); cmds["approve"] != "starter approve "+f.target+" --reason '...'" {
		t.Errorf("grace commands %v", grace["commands"])
	}
	if len(slack) > 0 && !bytes.Contains(slack[0].body, []byte("starter approve "+f.target)) {
		t.Errorf("the Slack grace message has no approve command: %s", slack[0].body)
	}

	all := append([]byte(nil), devstack.notices.bytes()...)
	for _, v := range [][]byte{old, staged["secret"]} {
		for _, form := range leakscan.Forms(v) {
			if bytes.Contains(all, form) {
				t.Error("a secret value is in a notification body")
			}
		}
	}
}
