package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	commonpb "go.temporal.io/api/common/v1"

	"rotator/activities"
	"rotator/workflows"
)

// printStatus renders a status as the readable table operators read.
func printStatus(w io.Writer, st workflows.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("target", fmt.Sprintf("%s (%s)", st.Target, st.Kind))
	step := fmt.Sprintf("%s since %s", st.Step, st.StepStartedAt.Format(time.RFC3339))
	row("step", step)
	if st.Emergency {
		row("mode", "emergency (no grace)")
	}
	if st.RequestedBy != "" {
		row("requested by", st.RequestedBy)
	}
	row("started", st.StartedAt.Format(time.RFC3339))
	if !st.GraceDeadline.IsZero() {
		row("grace ends", fmt.Sprintf("%s (in %s)", st.GraceDeadline.Format(time.RFC3339),
			time.Until(st.GraceDeadline).Round(time.Second)))
	}
	if st.Window != "" {
		w := st.Window
		if !st.WindowOpensAt.IsZero() {
			w += fmt.Sprintf("; opens %s (in %s)", st.WindowOpensAt.Format(time.RFC3339), time.Until(st.WindowOpensAt).Round(time.Second))
		}
		row("window", w)
	}
	if st.Old != nil {
		row("old version", version(st.Old))
	}
	if st.New != nil {
		row("new version", version(st.New))
	}
	for _, c := range st.Consumers {
		row("consumer", fmt.Sprintf("%s: %s", c.Workload, c.State))
	}
	for _, n := range st.NotRepointed {
		row("not repointed", n+": keeps the old version; retire waits for it")
	}
	for _, n := range st.StillOnOld {
		row("still on old", n)
	}
	if st.PreviousKey != "" {
		row("previous key", st.PreviousKey)
	}
	for _, n := range st.RetireWaitsFor {
		row("retire waits for", n)
	}
	for _, r := range st.Retired {
		row("retired", r)
	}
	for _, p := range slices.Sorted(maps.Keys(st.StagedKeys)) {
		row("staged key", fmt.Sprintf("%s: %s (accepted by the provider)", p, st.StagedKeys[p]))
	}
	if st.KeysError != "" {
		row("keys refused", st.KeysError)
	}
	for _, r := range st.Revoked {
		row("revoked", r)
	}
	if st.Reminder != "" {
		row("waiting for you", st.Reminder)
	}
	if st.Approved != nil {
		row("approved", decision(st.Approved))
	}
	if st.Aborted != nil {
		row("aborted", decision(st.Aborted))
	}
	if st.KeptOld != nil {
		row("kept old version", decision(st.KeptOld))
	}
	for i := range st.Retried {
		row("retried", decision(&st.Retried[i]))
	}
	if !st.FinishedAt.IsZero() {
		row("finished", st.FinishedAt.Format(time.RFC3339))
	}
	if st.Outcome != "" {
		row("outcome", st.Outcome)
	}
	for _, f := range st.NotifyFailures {
		row("not notified", f)
	}
	if st.Error != "" {
		row("error", st.Error)
	}
	if st.Left != "" {
		row("left", st.Left)
	}
	tw.Flush()
}

func version(r *activities.SecretRef) string {
	s := fmt.Sprintf("%s (v%d, ", r.Name, r.Version)
	if r.Username != "" {
		s += "user " + r.Username + ", "
	}
	if r.VaultVersion > 0 {
		s += fmt.Sprintf("Vault v%d, ", r.VaultVersion)
	}
	return s + r.Fingerprint + ")"
}

func decision(d *workflows.Decision) string {
	s := fmt.Sprintf("by %s at %s", d.By, d.At.Format(time.RFC3339))
	if d.Reason != "" {
		s += ": " + d.Reason
	}
	return s
}

// searchAttributes decodes the Keyword attributes a list returns.
func searchAttributes(sa *commonpb.SearchAttributes) map[string]string {
	out := map[string]string{}
	for k, p := range sa.GetIndexedFields() {
		var v string
		if json.Unmarshal(p.GetData(), &v) == nil {
			out[k] = v
		}
	}
	return out
}
