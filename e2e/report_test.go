package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"rotator/workflows"
)

// TestReportAfterARotation: `starter report` reads each target's current
// version from the cluster and its last rotation from Temporal: before, the
// base Secret, never rotated; after a rotation, the new version, managed,
// and the result; in table, JSON and CSV.
func TestReportAfterARotation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := newFixture(t, ctx, "", deployment("api", 1, envRef("app-jwt")))
	type row struct {
		Target, Current, LastResult string
		Managed, Overdue            bool
		AgeDays, CadenceDays        float64
		LastAt                      time.Time
	}
	read := func() row {
		t.Helper()
		out, err := f.starter(ctx, "report", "--output", "json")
		if err != nil {
			t.Fatalf("report: %v\n%s", err, out)
		}
		var rows []row
		if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 {
			t.Fatalf("report --output json: %v\n%s", err, out)
		}
		return rows[0]
	}
	before := read()
	if before.Current != f.secret || before.Managed || before.LastResult != "never" || before.CadenceDays != 90 || before.Overdue {
		t.Errorf("before a rotation: %+v", before)
	}

	f.rotate(ctx)
	waitForStep(t, ctx, f, workflows.StepGrace)
	f.approve(ctx)
	if err := f.result(ctx); err != nil {
		t.Fatal(err)
	}
	after := read()
	if after.Current != f.secret+"-2" || !after.Managed || after.LastResult != "completed (done)" || after.LastAt.IsZero() ||
		after.AgeDays > 0.1 || after.Overdue {
		t.Errorf("after a rotation: %+v", after)
	}

	out, err := f.starter(ctx, "report")
	if err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	assertEach(t, "the report table", out, "TARGET", f.target, f.secret+"-2", "completed (done)", "0 of 1 targets overdue")
	out, err = f.starter(ctx, "report", "-o", "csv")
	if err != nil {
		t.Fatalf("report -o csv: %v\n%s", err, out)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) != 2 || recs[0][0] != "target" || recs[1][0] != f.target || recs[1][11] != "no" {
		t.Errorf("report -o csv: %v\n%s", err, out)
	}
	f.refused(ctx, `--output: "xml" is not a format: use table, json or csv`, "report", "-o", "xml")
}
