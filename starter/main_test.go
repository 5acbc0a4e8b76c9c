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
