package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"rotator/workflows"
)

// steps are the values of RotationStep a rotation passes or ends in, in
// order; wait accepts only these, so a typo fails at once instead of
// waiting out the timeout.
var steps = []workflows.Step{
	workflows.StepPreflight, workflows.StepAwaitKeys, workflows.StepStage, workflows.StepApply,
	workflows.StepAwaitWindow, workflows.StepPromote, workflows.StepVerify, workflows.StepGrace, workflows.StepRetire, workflows.StepDone,
	workflows.StepCompensating, workflows.StepCompensationFailed, workflows.StepRolledBack, workflows.StepFailed,
}

// checkWaitFlags refuses a step no rotation reaches and a timeout that
// has already expired, before anything is dialed.
func checkWaitFlags(step string, timeout time.Duration) error {
	if !slices.Contains(steps, workflows.Step(step)) {
		names := make([]string, len(steps))
		for i, s := range steps {
			names[i] = string(s)
		}
		return fmt.Errorf("--step: %q is not a step: use one of %s", truncate(step), strings.Join(names, ", "))
	}
	if timeout <= 0 {
		return fmt.Errorf("--timeout: %s must be positive, e.g. --timeout 10m", timeout)
	}
	return nil
}

// truncate keeps an error readable when an argument is huge.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
