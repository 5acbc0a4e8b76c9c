package activities

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"rotator/catalog"
	"rotator/internal/loopback"
)

// The headers of a webhook notification; docs/notifications.md shows how a
// receiver checks them.
const (
	HeaderEvent     = "X-Rotator-Event"
	HeaderDelivery  = "X-Rotator-Delivery"
	HeaderTimestamp = "X-Rotator-Timestamp"
	HeaderSignature = "X-Rotator-Signature"
)

// minSigningKey is the shortest webhook signing key accepted: a key as
// long as the HMAC's output.
const minSigningKey = 32

// NotifyRoute is one sink a target's rotations notify and the events it
// takes; preflight puts them in the plan, so that a target without sinks
// schedules no notification at all.
type NotifyRoute struct {
	Sink   string          `json:"sink"`
	Events []catalog.Event `json:"events,omitempty"`
}

// Wants reports whether the route's sink takes the event.
func (r NotifyRoute) Wants(e catalog.Event) bool {
	return catalog.Sink{Events: r.Events}.Wants(e)
}

// NotifyInput is one event for one sink. It names the sink and the target,
// never an address: the worker finds both in its catalog.
type NotifyInput struct {
	Target string        `json:"target"`
	Sink   string        `json:"sink,omitempty"` // "": every sink of the target that takes the event
	Event  catalog.Event `json:"event"`
	// ID is the delivery's id, the same on every attempt, so that a
	// receiver can drop a message it already has.
	ID       string    `json:"id"`
	Step     string    `json:"step"`
	Message  string    `json:"message"`
	Deadline time.Time `json:"deadline,omitzero"`
	Urgent   bool      `json:"urgent,omitempty"`
}

// Notification is the JSON body a webhook receives.
type Notification struct {
	ID         string            `json:"id"`
	Event      catalog.Event     `json:"event"`
	Urgent     bool              `json:"urgent"`
	Target     string            `json:"target"`
	Kind       catalog.Kind      `json:"kind"`
	Namespace  string            `json:"namespace"`
	WorkflowID string            `json:"workflowId"`
	RunID      string            `json:"runId"`
	Step       string            `json:"step"`
	At         time.Time         `json:"at"`
	Deadline   *time.Time        `json:"deadline,omitempty"`
	Message    string            `json:"message"`
	Link       string            `json:"link,omitempty"`
	Commands   map[string]string `json:"commands,omitempty"`
}

// Notifier sends notifications to the sinks of the catalog.
type Notifier struct {
	Catalog *catalog.Catalog
	// HTTP sends the requests; nil means a client with a 15 s timeout.
	HTTP *http.Client
}

// NotifyRoutes returns the routes of a target's sinks, for its plan.
func NotifyRoutes(c *catalog.Catalog, t catalog.Target) []NotifyRoute {
	var routes []NotifyRoute
	for _, s := range c.SinksFor(t) {
		routes = append(routes, NotifyRoute{Sink: s.Name, Events: s.Events})
	}
	return routes
}

// Notify sends one event to one sink of the target, or to each of its
// sinks that takes the event when the input names none. A refusal that a
// retry cannot fix is non-retryable; the workflow never fails for it.
func (n *Notifier) Notify(ctx context.Context, in NotifyInput) error {
	t, err := n.Catalog.Target(in.Target)
	if err != nil {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("target: %v", err), ErrBadInput, nil)
	}
	info := activity.GetInfo(ctx)
	msg := Notification{
		ID: in.ID, Event: in.Event, Urgent: in.Urgent, Target: t.Name, Kind: t.Kind, Namespace: t.Namespace,
		WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID, Step: in.Step,
		At: time.Now().UTC(), Message: in.Message, Commands: commandsFor(in.Event, t.Name),
	}
	if !in.Deadline.IsZero() {
		d := in.Deadline.UTC()
		msg.Deadline = &d
	}
	if ui := n.Catalog.UIURL(); ui != "" {
		msg.Link = fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history", ui, url.PathEscape(info.Namespace),
			url.PathEscape(msg.WorkflowID), url.PathEscape(msg.RunID))
	}
	var errs []error
	sent := 0
	for _, s := range n.Catalog.SinksFor(t) {
		if (in.Sink != "" && s.Name != in.Sink) || (in.Sink == "" && !s.Wants(in.Event)) {
			continue
		}
		sent++
		if err := n.send(ctx, s, msg); err != nil {
			errs = append(errs, fmt.Errorf("sink %s: %w", s.Name, err))
		}
	}
	if in.Sink != "" && sent == 0 {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"sink: %q is not a sink of target %s in the worker's catalog", in.Sink, t.Name), ErrBadInput, nil)
	}
	if err := errors.Join(errs...); err != nil {
		var refused *refusal
		if len(errs) == 1 && errors.As(errs[0], &refused) {
			return temporal.NewNonRetryableApplicationError(err.Error(), ErrNotifyRefused, nil)
		}
		return err
	}
	return nil
}

// commandsFor gives what a person can do at the event, in starter's words.
func commandsFor(e catalog.Event, target string) map[string]string {
	approve := fmt.Sprintf("starter approve %s --reason '...'", target)
	abort := fmt.Sprintf("starter abort %s --reason '...'", target)
	switch e {
	case catalog.EventGrace, catalog.EventGraceEnding, catalog.EventNeedsPerson:
		return map[string]string{"approve": approve, "abort": abort}
	case catalog.EventAwaitingKeys:
		return map[string]string{"stage-keys": fmt.Sprintf("starter stage-keys %s < keys.env", target), "abort": abort}
	case catalog.EventCompensationFailed:
		return map[string]string{"retry": fmt.Sprintf("starter retry %s --reason '...'", target), "status": "starter status " + target}
	default:
		return map[string]string{"status": "starter status " + target}
	}
}

// refusal is a sink's answer that a retry cannot change.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

func (n *Notifier) send(ctx context.Context, s catalog.Sink, msg Notification) error {
	var (
		target  string
		body    []byte
		headers = http.Header{"Content-Type": {"application/json"}, "User-Agent": {"rotator"}}
		err     error
	)
	switch {
	case s.Webhook != nil:
		key, kerr := readSigningKey(s.Webhook.SigningKeyFile)
		if kerr != nil {
			return &refusal{kerr.Error()}
		}
		if body, err = json.Marshal(msg); err != nil {
			return err
		}
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		headers.Set(HeaderEvent, string(msg.Event))
		headers.Set(HeaderDelivery, msg.ID)
		headers.Set(HeaderTimestamp, ts)
		headers.Set(HeaderSignature, Sign(key, ts, body))
		target = s.Webhook.URL
	case s.Slack != nil:
		u, uerr := readSlackURL(s.Slack.WebhookURLFile)
		if uerr != nil {
			return &refusal{uerr.Error()}
		}
		if body, err = json.Marshal(slackMessage(msg)); err != nil {
			return err
		}
		target = u
	default:
		return &refusal{"has no receiver"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		// The URL may be a credential (Slack's is): never quote it.
		return &refusal{"the receiver's URL does not parse: fix the sink"}
	}
	req.Header = headers
	client := n.HTTP
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL
		}
		return fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	what := fmt.Sprintf("the receiver answered %s", resp.Status)
	if a := strings.TrimSpace(strings.ToValidUTF8(string(answer), "?")); a != "" {
		what += ": " + strconv.Quote(a)
	}
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return &refusal{what + ": fix the sink's URL or the receiver; this message is not sent again"}
	}
	return errors.New(what)
}

// Sign is the webhook signature of a body sent at the Unix time ts:
// "v1=" and the hex HMAC-SHA256 of ts + "." + body.
func Sign(key []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

func readSigningKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("webhook.signingKeyFile: %w: create it with at least %d random bytes (e.g. openssl rand -hex 32 > %s)", err, minSigningKey, path)
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) < minSigningKey {
		return nil, fmt.Errorf("webhook.signingKeyFile %s: holds %d bytes: use at least %d (e.g. openssl rand -hex 32)", path, len(b), minSigningKey)
	}
	return b, nil
}

func readSlackURL(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("slack.webhookURLFile: %w: put the incoming webhook's URL in it", err)
	}
	raw := strings.TrimSpace(string(b))
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && loopback.Is(u.Hostname()))) {
		return "", fmt.Errorf("slack.webhookURLFile %s: does not hold an https URL: put the incoming webhook's URL (https://hooks.slack.com/services/...) in it", path)
	}
	return raw, nil
}

// CheckNotify reads every sink's files once, so that a worker with a
// missing or short key file says so when it starts, not at the first
// rotation's event.
func CheckNotify(c *catalog.Catalog) error {
	var errs []error
	check := func(field string, sinks []catalog.Sink) {
		for i, s := range sinks {
			var err error
			switch {
			case s.Webhook != nil:
				_, err = readSigningKey(s.Webhook.SigningKeyFile)
			case s.Slack != nil:
				_, err = readSlackURL(s.Slack.WebhookURLFile)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s[%d] (%s).%w", field, i, s.Name, err))
			}
		}
	}
	if c.Notify != nil {
		check("notify.sinks", c.Notify.Sinks)
	}
	for _, t := range c.Targets {
		check(fmt.Sprintf("target %s: notify", t.Name), t.Notify)
	}
	return errors.Join(errs...)
}
