package catalog_test

import (
	"slices"
	"testing"

	"rotator/catalog"
)

const notifyS = "notify settings"

const hook = "{name: hooks, webhook: {url: 'https://hooks.example.com/rotator', signingKeyFile: /etc/rotator/key}}"

// TestNotifyBadInput: every bad notify section is refused, naming the
// field and the fix.
func TestNotifyBadInput(t *testing.T) {
	runBadInputs(t, []badInput{
		{notifyS, "sink without name", "notify: {sinks: [{slack: {webhookURLFile: /f}}]}\n" + target("jwt", ""), "notify.sinks[0].name", "is required: name the sink", nil},
		{notifyS, "sink name with capitals", "notify: {sinks: [{name: SRE, slack: {webhookURLFile: /f}}]}\n" + target("jwt", ""), "notify.sinks[0].name", "lowercase RFC 1123", nil},
		{notifyS, "sink without receiver", "notify: {sinks: [{name: a}]}\n" + target("jwt", ""), "notify.sinks[0]", "add webhook: {url: ..., signingKeyFile: ...} or slack:", nil},
		{notifyS, "sink with both", "notify: {sinks: [{name: a, slack: {webhookURLFile: /f}, webhook: {url: 'https://h', signingKeyFile: /k}}]}\n" + target("jwt", ""), "notify.sinks[0]", "use one sink for each", nil},
		{notifyS, "webhook without url", "notify: {sinks: [{name: a, webhook: {signingKeyFile: /k}}]}\n" + target("jwt", ""), "notify.sinks[0].webhook.url", "is required", nil},
		{notifyS, "webhook plain http", "notify: {sinks: [{name: a, webhook: {url: 'http://hooks.example.com/x', signingKeyFile: /k}}]}\n" + target("jwt", ""), "notify.sinks[0].webhook.url", "use https (plain http only to localhost)", nil},
		{notifyS, "webhook ftp", "notify: {sinks: [{name: a, webhook: {url: 'ftp://h/x', signingKeyFile: /k}}]}\n" + target("jwt", ""), "notify.sinks[0].webhook.url", "is not an http(s) URL", nil},
		{notifyS, "webhook with password", "notify: {sinks: [{name: a, webhook: {url: 'https://u:p@h/x', signingKeyFile: /k}}]}\n" + target("jwt", ""), "notify.sinks[0].webhook.url", "remove them", nil},
		{notifyS, "webhook unsigned", "notify: {sinks: [{name: a, webhook: {url: 'https://h/x'}}]}\n" + target("jwt", ""), "notify.sinks[0].webhook.signingKeyFile", "is required: the file that holds the HMAC key", nil},
		{notifyS, "relative key file", "notify: {sinks: [{name: a, webhook: {url: 'https://h/x', signingKeyFile: key}}]}\n" + target("jwt", ""), "notify.sinks[0].webhook.signingKeyFile", "is not an absolute file path", nil},
		{notifyS, "slack url in the catalog", "notify: {sinks: [{name: a, slack: {webhookURL: 'https://hooks.slack.com/services/T/B/x'}}]}\n" + target("jwt", ""), `unknown field "webhookURL"`, "check its spelling", nil},
		{notifyS, "slack without file", "notify: {sinks: [{name: a, slack: {}}]}\n" + target("jwt", ""), "notify.sinks[0].slack.webhookURLFile", "is required: the file that holds the incoming webhook's URL", nil},
		{notifyS, "unknown event", "notify: {sinks: [{name: a, slack: {webhookURLFile: /f}, events: [grace, paged]}]}\n" + target("jwt", ""), "notify.sinks[0].events[1]", "is not an event: use some of started, awaiting-keys, grace", nil},
		{notifyS, "bad uiURL", "notify: {uiURL: 'temporal:8233'}\n" + target("jwt", ""), "notify.uiURL", "use e.g. https://temporal.example.com", nil},
		{notifyS, "target sink reuses a name", "notify: {sinks: [" + hook + "]}\n" + target("jwt", "    notify: ["+hook+"]\n"), "notify[0].name", `"hooks" is already the name of another sink`, []string{"targets[0] (a)"}},
		{notifyS, "target sink bad url", target("jwt", "    notify: [{name: x, webhook: {url: 'http://10.0.0.1/x', signingKeyFile: /k}}]\n"), "notify[0].webhook.url", "use https", []string{"targets[0] (a)"}},
	})
}

// TestSinksFor: a target's rotations notify the catalog's sinks and its own,
// each sink only for the events it lists.
func TestSinksFor(t *testing.T) {
	c, err := catalog.Parse([]byte("notify: {uiURL: 'https://temporal.example.com/', sinks: [" + hook + "]}\n" +
		"targets:\n  - name: a\n    kind: jwt\n" + nsSec +
		"    notify: [{name: oncall, slack: {webhookURLFile: /etc/rotator/slack}, events: [compensation-failed, failed]}]\n" +
		"  - name: b\n    kind: jwt\n    namespace: ns\n    secret: s2\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.Target("a")
	b, _ := c.Target("b")
	names := func(sinks []catalog.Sink) (out []string) {
		for _, s := range sinks {
			out = append(out, s.Name)
		}
		return out
	}
	if got := names(c.SinksFor(a)); !slices.Equal(got, []string{"hooks", "oncall"}) {
		t.Errorf("sinks of a: %v, want hooks and oncall", got)
	}
	if got := names(c.SinksFor(b)); !slices.Equal(got, []string{"hooks"}) {
		t.Errorf("sinks of b: %v, want hooks only", got)
	}
	oncall := c.SinksFor(a)[1]
	if oncall.Wants(catalog.EventGrace) || !oncall.Wants(catalog.EventCompensationFailed) {
		t.Error("oncall should take compensation-failed and failed only")
	}
	if !c.SinksFor(a)[0].Wants(catalog.EventGraceEnding) {
		t.Error("a sink without events takes every event")
	}
	if got := c.UIURL(); got != "https://temporal.example.com" {
		t.Errorf("UIURL %q, want it without the trailing slash", got)
	}
}
