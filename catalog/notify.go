package catalog

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Event is something a rotation tells the people who run it.
type Event string

// The events a rotation notifies, in the order a rotation meets them.
const (
	EventStarted            Event = "started"
	EventAwaitingKeys       Event = "awaiting-keys"
	EventGrace              Event = "grace"
	EventGraceEnding        Event = "grace-ending"
	EventNeedsPerson        Event = "needs-person"
	EventRolledBack         Event = "rolled-back"
	EventFailed             Event = "failed"
	EventCompensationFailed Event = "compensation-failed"
	EventDone               Event = "done"
)

// Events lists every event, in the order a rotation meets them.
func Events() []Event {
	return []Event{EventStarted, EventAwaitingKeys, EventGrace, EventGraceEnding, EventNeedsPerson,
		EventRolledBack, EventFailed, EventCompensationFailed, EventDone}
}

// Notify is the catalog-wide notification section: the sinks every
// target's rotations notify, and the Web UI address their links point to.
type Notify struct {
	// UIURL is the Temporal Web UI's address, for links to the rotation
	// (e.g. https://temporal.example.com); without it messages carry none.
	UIURL string `json:"uiURL,omitempty"`
	// Sinks receive every target's events.
	Sinks []Sink `json:"sinks,omitempty"`
}

// Sink is one receiver of notifications: a generic webhook or a Slack
// incoming webhook.
type Sink struct {
	// Name identifies the sink in logs, errors and the rotation's status.
	Name string `json:"name"`
	// Webhook posts a JSON body signed with HMAC-SHA256.
	Webhook *WebhookSink `json:"webhook,omitempty"`
	// Slack posts a readable message to a Slack incoming webhook.
	Slack *SlackSink `json:"slack,omitempty"`
	// Events limits the sink to these events; empty means all.
	Events []Event `json:"events,omitempty"`
}

// WebhookSink posts each event as JSON to URL, signed with the key in
// SigningKeyFile (see docs/notifications.md for the headers).
type WebhookSink struct {
	// URL receives the POSTs; https, or http to a loopback address.
	URL string `json:"url"`
	// SigningKeyFile holds the HMAC key, at least 32 bytes; the worker
	// reads it at each send, so it can be replaced without a restart.
	SigningKeyFile string `json:"signingKeyFile"`
}

// SlackSink posts to a Slack incoming webhook, whose URL is a credential
// and so is read from a file, never written in the catalog.
type SlackSink struct {
	// WebhookURLFile holds the incoming webhook's URL.
	WebhookURLFile string `json:"webhookURLFile"`
}

// Wants reports whether the sink takes the event.
func (s Sink) Wants(e Event) bool {
	return len(s.Events) == 0 || slices.Contains(s.Events, e)
}

// SinksFor returns the sinks a target's rotations notify: the catalog's,
// then the target's own.
func (c *Catalog) SinksFor(t Target) []Sink {
	var sinks []Sink
	if c.Notify != nil {
		sinks = append(sinks, c.Notify.Sinks...)
	}
	return append(sinks, t.Notify...)
}

// UIURL is where links in notifications point, or "".
func (c *Catalog) UIURL() string {
	if c.Notify == nil {
		return ""
	}
	return strings.TrimRight(c.Notify.UIURL, "/")
}

// checkNotify checks the catalog-wide section; the target's sinks are
// checked with the target, against the catalog's names.
func (n *Notify) check(fail failFunc) {
	if n.UIURL != "" {
		u, err := url.Parse(n.UIURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			fail("notify.uiURL", "%q is not the Web UI's address: use e.g. https://temporal.example.com", truncate(n.UIURL))
		}
	}
	checkSinks("notify.sinks", n.Sinks, nil, fail)
}

// checkSinks checks a list of sinks; taken are the names already used by
// the catalog-wide sinks, which a target's sink may not reuse.
func checkSinks(field string, sinks []Sink, taken []Sink, fail failFunc) {
	seen := map[string]bool{}
	for _, s := range taken {
		seen[s.Name] = true
	}
	for i, s := range sinks {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch msgs := validation.IsDNS1123Label(s.Name); {
		case s.Name == "":
			fail(f+".name", "is required: name the sink, e.g. sre-slack")
		case len(msgs) > 0:
			fail(f+".name", "%q is not a valid name: %s", truncate(s.Name), strings.Join(msgs, "; "))
		case seen[s.Name]:
			fail(f+".name", "%q is already the name of another sink: sink names must be unique in the catalog", s.Name)
		}
		seen[s.Name] = true
		switch {
		case s.Webhook == nil && s.Slack == nil:
			fail(f, "has no receiver: add webhook: {url: ..., signingKeyFile: ...} or slack: {webhookURLFile: ...}")
		case s.Webhook != nil && s.Slack != nil:
			fail(f, "has both webhook and slack: use one sink for each")
		case s.Webhook != nil:
			u, err := url.Parse(s.Webhook.URL)
			switch {
			case s.Webhook.URL == "":
				fail(f+".webhook.url", "is required: the address that receives the POSTs, e.g. https://hooks.example.com/rotator")
			case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
				fail(f+".webhook.url", "%q is not an http(s) URL: use e.g. https://hooks.example.com/rotator", truncate(s.Webhook.URL))
			case u.User != nil:
				fail(f+".webhook.url", "carries a user or password: the body is signed instead, so remove them")
			case !encryptedOrLoopback(u):
				fail(f+".webhook.url", "%q is plain http to another host: use https (plain http only to localhost)", truncate(s.Webhook.URL))
			}
			checkFile(f+".webhook.signingKeyFile", s.Webhook.SigningKeyFile, "the HMAC key, at least 32 bytes, e.g. /etc/rotator/webhook-key", fail)
		case s.Slack != nil:
			checkFile(f+".slack.webhookURLFile", s.Slack.WebhookURLFile, "the incoming webhook's URL, e.g. /etc/rotator/slack-webhook-url", fail)
		}
		for j, e := range s.Events {
			if !slices.Contains(Events(), e) {
				fail(fmt.Sprintf("%s.events[%d]", f, j), "%q is not an event: use some of %s", truncate(string(e)), eventList())
			}
		}
	}
}

func checkFile(field, path, what string, fail failFunc) {
	switch {
	case path == "":
		fail(field, "is required: the file that holds %s", what)
	case !filepath.IsAbs(path) || strings.ContainsRune(path, 0):
		fail(field, "%q is not an absolute file path: give one, e.g. %s", truncate(path), what[strings.LastIndex(what, " ")+1:])
	}
}

func eventList() string {
	names := make([]string, 0, len(Events()))
	for _, e := range Events() {
		names = append(names, string(e))
	}
	return strings.Join(names, ", ")
}
