package main

import (
	"slices"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"rotator/catalog"
	"rotator/codec"
	"rotator/workflows"
)

// With ROTATOR_CODEC_REQUIRED=true, a Schedule whose input is plain (written
// before encryption was required) counts as changed, so that apply rewrites
// it encrypted; an encrypted input is unchanged, and without the
// requirement a plain one is too.
func TestScheduleDiffRewritesPlainInputWhenRequired(t *testing.T) {
	d := newDesired("rotation/app", "app", 90*24*time.Hour, workflows.TypeScheduledRotation, "scheduled/app",
		workflows.ScheduledInput{Target: "app", Kind: catalog.KindJWT}, decodeAs[workflows.ScheduledInput])
	key, err := codec.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := codec.New(key.ID, key)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := converter.GetDefaultDataConverter().ToPayload(workflows.ScheduledInput{Target: "app", Kind: catalog.KindJWT})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := ring.Encode([]*commonpb.Payload{plain})
	if err != nil {
		t.Fatal(err)
	}
	described := func(arg any) *client.ScheduleDescription {
		spec := d.spec()
		a := d.action("rotator")
		a.Args = []any{arg}
		return &client.ScheduleDescription{Schedule: client.Schedule{Spec: &spec, Action: a,
			Policy: &client.SchedulePolicies{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP}}}
	}
	for _, tc := range []struct {
		name, required string
		arg            any
		changed        bool
	}{
		{"plain, required", "true", plain, true},
		{"encrypted, required", "true", enc[0], false},
		{"plain, not required", "", plain, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(codec.EnvRequired, tc.required)
			got := d.diff(described(tc.arg))
			if changed := slices.Contains(got, "input"); changed != tc.changed {
				t.Fatalf("diff = %q: input changed %v, want %v", got, changed, tc.changed)
			}
		})
	}
}
