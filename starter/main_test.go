package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Bad input is refused before the CLI dials Temporal: the address below
// has no server, so any of these reaching the network would fail differently.
func TestBadInputIsRefusedBeforeDialing(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rotate"}, "accepts 1 arg(s)"},
		{[]string{"rotate", "nope"}, `target "nope" is not in the catalog: add it to rotator.yaml or use one of orchestrator-jwt`},
		{[]string{"rotate", "orchestrator-jwt", "--grace", "-1h"}, `--grace: "-1h" must be a positive duration`},
		{[]string{"rotate", "orchestrator-jwt", "--grace", "soon"}, `--grace: "soon"`},
		{[]string{"--catalog", "missing.yaml", "rotate", "orchestrator-jwt"}, "read catalog"},
		{[]string{"approve", "orchestrator-jwt", "--by", ""}, "--by: is required"},
		{[]string{"abort", "orchestrator-jwt", "--by", ""}, "--by: is required"},
		{[]string{"status"}, "accepts 1 arg(s)"},
		{[]string{"list", "extra"}, "unknown command"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			root := newRoot(&out, &errOut)
			root.SetArgs(append([]string{"--temporal-address", "127.0.0.1:1", "--catalog", "../rotator.yaml"}, tc.args...))
			root.SetOut(&out)
			root.SetErr(&errOut)
			err := root.ExecuteContext(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}

// stage-keys checks what it reads from stdin before it dials anything, and
// its errors never echo a key.
func TestStageKeysRefusesBadInput(t *testing.T) {
	const secret = "sk-proj-THISISASECRETVALUE0123456789"
	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"wrong kind", "", []string{"stage-keys", "orchestrator-jwt", "--by", "t"}, "is of kind jwt: stage-keys is for apikeys targets"},
		{"empty stdin", "", []string{"stage-keys", "orchestrator-llm", "--by", "t"}, "stdin: no keys"},
		{"not KEY=value", secret + "\n", []string{"stage-keys", "orchestrator-llm", "--by", "t"}, "stdin line 1: want KEY=value"},
		{"twice", "openai-api-key=" + secret + "\nopenai-api-key=" + secret + "\n", []string{"stage-keys", "orchestrator-llm", "--by", "t"}, "openai-api-key is given twice"},
		{"missing provider", "openai-api-key=" + secret + "\n", []string{"stage-keys", "orchestrator-llm", "--by", "t"}, "anthropic-api-key: is missing"},
		{"unknown key", "openai-api-key=" + secret + "\nanthropic-api-key=" + secret + "\nmistral=" + secret + "\n", []string{"stage-keys", "orchestrator-llm", "--by", "t"}, "mistral: is not a key of target orchestrator-llm"},
		{"no by", "", []string{"stage-keys", "orchestrator-llm", "--by", ""}, "--by: is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			root := newRoot(&out, &errOut)
			root.SetArgs(append([]string{"--temporal-address", "127.0.0.1:1", "--catalog", "../rotator.yaml"}, tc.args...))
			root.SetIn(strings.NewReader(tc.stdin))
			root.SetOut(&out)
			root.SetErr(&errOut)
			err := root.ExecuteContext(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
			if strings.Contains(err.Error()+out.String()+errOut.String(), "THISISASECRET") {
				t.Fatalf("the error or output shows a key: %v", err)
			}
		})
	}
}
