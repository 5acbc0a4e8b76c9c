package activities

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"rotator/catalog"
)

// receiver is a local HTTP endpoint that keeps what it receives and answers
// with status.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	got    []*http.Request
	bodies [][]byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{status: http.StatusOK}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, req)
		r.bodies = append(r.bodies, b)
		w.WriteHeader(r.status)
		_, _ = io.WriteString(w, "invalid_payload")
	}))
	t.Cleanup(r.Close)
	return r
}

// notifyCatalog is a catalog whose target t has a webhook sink and a Slack
// sink, both at the receivers; the key and the Slack URL are in files.
func notifyCatalog(t *testing.T, hook, slack string, key []byte) *catalog.Catalog {
	t.Helper()
	dir := t.TempDir()
	keyFile, urlFile := filepath.Join(dir, "key"), filepath.Join(dir, "slack")
	if err := os.WriteFile(keyFile, append(key, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(urlFile, []byte(slack+"/services/T0/B0/secretpath\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Parse([]byte("notify:\n  uiURL: https://temporal.example.com\n  sinks:\n" +
		"    - {name: hooks, webhook: {url: '" + hook + "/rotator', signingKeyFile: " + keyFile + "}}\n" +
		"targets:\n  - name: t\n    kind: jwt\n    namespace: ns\n    secret: s\n" +
		"    notify: [{name: chat, slack: {webhookURLFile: " + urlFile + "}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func runNotify(t *testing.T, n *Notifier, in NotifyInput) error {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(n)
	_, err := env.ExecuteActivity(n.Notify, in)
	return err
}

// TestWebhookIsSignedAndShaped: the webhook gets the documented JSON with
// the id, event, target, step, deadline, commands and UI link, and headers
// whose signature a receiver recomputes from the timestamp and the body.
func TestWebhookIsSignedAndShaped(t *testing.T) {
	hook, slack := newReceiver(t), newReceiver(t)
	key := []byte(strings.Repeat("k", 40))
	n := &Notifier{Catalog: notifyCatalog(t, hook.URL, slack.URL, key)}
	deadline := time.Date(2026, 12, 10, 9, 0, 0, 0, time.UTC)
	if err := runNotify(t, n, NotifyInput{Target: "t", Sink: "hooks", Event: catalog.EventGrace, ID: "run-1.2",
		Step: "grace", Message: "the consumers run on s-2", Deadline: deadline}); err != nil {
		t.Fatal(err)
	}
	if len(hook.got) != 1 || len(slack.got) != 0 {
		t.Fatalf("want one webhook POST and nothing on Slack, got %d and %d", len(hook.got), len(slack.got))
	}
	req, body := hook.got[0], hook.bodies[0]
	if req.Method != http.MethodPost || req.URL.Path != "/rotator" || req.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %s %s", req.Method, req.URL.Path, req.Header.Get("Content-Type"))
	}
	ts := req.Header.Get(HeaderTimestamp)
	if got, want := req.Header.Get(HeaderSignature), Sign(key, ts, body); got != want || !strings.HasPrefix(got, "v1=") {
		t.Errorf("signature %q, want %q (HMAC-SHA256 of timestamp.body with the key, newline trimmed)", got, want)
	}
	if Sign([]byte(strings.Repeat("x", 40)), ts, body) == req.Header.Get(HeaderSignature) {
		t.Error("another key gives the same signature")
	}
	if req.Header.Get(HeaderDelivery) != "run-1.2" || req.Header.Get(HeaderEvent) != "grace" {
		t.Errorf("delivery %q, event %q", req.Header.Get(HeaderDelivery), req.Header.Get(HeaderEvent))
	}
	var msg Notification
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.ID != "run-1.2" || msg.Event != catalog.EventGrace || msg.Target != "t" || msg.Kind != catalog.KindJWT ||
		msg.Namespace != "ns" || msg.Step != "grace" || msg.Deadline == nil || !msg.Deadline.Equal(deadline) || msg.Urgent {
		t.Errorf("body %+v", msg)
	}
	if msg.Commands["approve"] != "starter approve t --reason '...'" || msg.Commands["abort"] != "starter abort t --reason '...'" {
		t.Errorf("commands %v", msg.Commands)
	}
	if !strings.HasPrefix(msg.Link, "https://temporal.example.com/namespaces/") || !strings.HasSuffix(msg.Link, "/history") {
		t.Errorf("link %q", msg.Link)
	}
}

// TestSlackMessage: Slack gets a header, the target and step, the message
// escaped for mrkdwn, the commands as code and the link; an urgent event
// says so in the header.
func TestSlackMessage(t *testing.T) {
	hook, slack := newReceiver(t), newReceiver(t)
	n := &Notifier{Catalog: notifyCatalog(t, hook.URL, slack.URL, []byte(strings.Repeat("k", 32)))}
	if err := runNotify(t, n, NotifyInput{Target: "t", Sink: "chat", Event: catalog.EventCompensationFailed, ID: "r.3",
		Step: "compensation-failed", Message: "repoint <deployment/api> & co failed", Urgent: true}); err != nil {
		t.Fatal(err)
	}
	if len(slack.got) != 1 || slack.got[0].URL.Path != "/services/T0/B0/secretpath" {
		t.Fatalf("Slack got %d requests", len(slack.got))
	}
	var m slackText
	if err := json.Unmarshal(slack.bodies[0], &m); err != nil {
		t.Fatal(err)
	}
	all := m.Text
	for _, b := range m.Blocks {
		if b.Text != nil {
			all += "\n" + b.Text.Text
		}
		for _, e := range b.Elements {
			all += "\n" + e.Text
		}
	}
	if m.Blocks[0].Type != "header" || !strings.HasPrefix(m.Blocks[0].Text.Text, ":rotating_light: URGENT: rollback of t did not finish") {
		t.Errorf("header %+v", m.Blocks[0])
	}
	for _, want := range []string{"step `compensation-failed`", "repoint &lt;deployment/api&gt; &amp; co failed",
		"retry: `starter retry t --reason '...'`", "in the Temporal UI>", "delivery r.3"} {
		if !strings.Contains(all, want) {
			t.Errorf("Slack message lacks %q:\n%s", want, all)
		}
	}
	if !strings.HasPrefix(m.Text, ":rotating_light: URGENT") {
		t.Errorf("fallback text %q", m.Text)
	}
}

// TestNotifyErrors: a 4xx is a refusal that is not retried, a 5xx is
// retried, a short key refuses before anything is sent, and no error
// quotes Slack's URL, which is a credential; a sink that is not the
// target's is refused.
func TestNotifyErrors(t *testing.T) {
	hook, slack := newReceiver(t), newReceiver(t)
	n := &Notifier{Catalog: notifyCatalog(t, hook.URL, slack.URL, []byte(strings.Repeat("k", 32)))}
	in := NotifyInput{Target: "t", Sink: "chat", Event: catalog.EventDone, ID: "r.9", Step: "done"}
	slack.status = http.StatusNotFound
	err := runNotify(t, n, in)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrNotifyRefused || !app.NonRetryable() || !strings.Contains(app.Message(), "404 Not Found") {
		t.Errorf("404: want a non-retryable NotifyRefused, got %v", err)
	}
	slack.status = http.StatusServiceUnavailable
	err = runNotify(t, n, in)
	if errors.As(err, &app) && app.NonRetryable() || err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("503: want a retryable error, got %v", err)
	}
	slack.Close()
	err = runNotify(t, n, in)
	if err == nil || strings.Contains(err.Error(), "secretpath") {
		t.Errorf("a connection error must not quote Slack's URL: %v", err)
	}

	short := n.Catalog.Notify.Sinks[0].Webhook.SigningKeyFile
	if err := os.WriteFile(short, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := len(hook.got)
	err = runNotify(t, n, NotifyInput{Target: "t", Sink: "hooks", Event: catalog.EventDone, ID: "r.10"})
	if !errors.As(err, &app) || app.Type() != ErrNotifyRefused || !strings.Contains(app.Message(), "holds 5 bytes: use at least 32") {
		t.Errorf("short key: %v", err)
	}
	if len(hook.got) != before {
		t.Error("a message was sent with a short key")
	}
	if err := CheckNotify(n.Catalog); err == nil || !strings.Contains(err.Error(), "notify.sinks[0] (hooks).webhook.signingKeyFile") {
		t.Errorf("CheckNotify: %v", err)
	}
	err = runNotify(t, n, NotifyInput{Target: "t", Sink: "elsewhere", Event: catalog.EventDone, ID: "r.11"})
	if !errors.As(err, &app) || app.Type() != ErrBadInput || !strings.Contains(app.Message(), `"elsewhere" is not a sink of target t`) {
		t.Errorf("unknown sink: %v", err)
	}
}

// TestNotifyAllSendsToSinksThatTakeTheEvent: with no sink named, every sink
// of the target that takes the event gets it.
func TestNotifyAllSendsToSinksThatTakeTheEvent(t *testing.T) {
	hook, slack := newReceiver(t), newReceiver(t)
	n := &Notifier{Catalog: notifyCatalog(t, hook.URL, slack.URL, []byte(strings.Repeat("k", 32)))}
	if err := runNotify(t, n, NotifyInput{Target: "t", Event: catalog.EventFailed, ID: "r.1", Step: "failed", Message: "preflight: no Secret"}); err != nil {
		t.Fatal(err)
	}
	if len(hook.got) != 1 || len(slack.got) != 1 {
		t.Errorf("want one message on each sink, got %d and %d", len(hook.got), len(slack.got))
	}
}
