package activities

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"rotator/catalog"
)

// slackText is a Slack incoming webhook's body: a fallback text for
// notifications and Block Kit blocks for the channel.
type slackText struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string         `json:"type"`
	Text     *slackElement  `json:"text,omitempty"`
	Elements []slackElement `json:"elements,omitempty"`
}

type slackElement struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// headlines say what each event means to the person reading the channel.
var headlines = map[catalog.Event]string{
	catalog.EventStarted:            "rotation of %s started",
	catalog.EventAwaitingKeys:       "rotation of %s waits for new keys",
	catalog.EventGrace:              "rotation of %s is in grace",
	catalog.EventGraceEnding:        "grace of %s ends within 24 hours",
	catalog.EventNeedsPerson:        "rotation of %s waits for a person",
	catalog.EventRolledBack:         "rotation of %s was rolled back",
	catalog.EventFailed:             "rotation of %s failed",
	catalog.EventCompensationFailed: "rollback of %s did not finish: it needs a person",
	catalog.EventDone:               "rotation of %s is done",
}

// slackMessage renders a notification the way Slack shows it: a header, the
// target and step, the message, the commands as code, and a context line
// with the link and the delivery id.
func slackMessage(n Notification) slackText {
	head := fmt.Sprintf(headlines[n.Event], n.Target)
	if n.Urgent {
		head = ":rotating_light: URGENT: " + head
	}
	where := fmt.Sprintf("*%s* (%s, namespace `%s`): step `%s`", slackEscape(n.Target), n.Kind, slackEscape(n.Namespace), slackEscape(n.Step))
	if n.Deadline != nil {
		where += ", until " + n.Deadline.Format(time.RFC3339)
	}
	blocks := []slackBlock{
		{Type: "header", Text: &slackElement{Type: "plain_text", Text: clipText(head, 150)}},
		{Type: "section", Text: &slackElement{Type: "mrkdwn", Text: clipText(where+"\n"+slackEscape(n.Message), 3000)}},
	}
	if len(n.Commands) > 0 {
		names := make([]string, 0, len(n.Commands))
		for k := range n.Commands {
			names = append(names, k)
		}
		sort.Strings(names)
		var b strings.Builder
		for _, k := range names {
			fmt.Fprintf(&b, "%s: `%s`\n", k, slackEscape(n.Commands[k]))
		}
		blocks = append(blocks, slackBlock{Type: "section", Text: &slackElement{Type: "mrkdwn", Text: strings.TrimSpace(b.String())}})
	}
	ctx := "delivery " + slackEscape(n.ID)
	if n.Link != "" {
		ctx = fmt.Sprintf("<%s|%s in the Temporal UI> · %s", n.Link, slackEscape(n.WorkflowID), ctx)
	}
	blocks = append(blocks, slackBlock{Type: "context", Elements: []slackElement{{Type: "mrkdwn", Text: ctx}}})
	return slackText{Text: head + ": " + clipText(n.Message, 300), Blocks: blocks}
}

// slackEscape escapes the three characters Slack's mrkdwn reads as markup.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func clipText(s string, max int) string {
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}
