package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"
)

// awaitWindow holds a step that consumers see until the target's rotation
// window is open, on a durable timer, the status and the UI saying until
// when. An emergency rotation does not wait, nor does a target without a
// window. Only an abort (before promote) ends the wait early.
func (r *rotation) awaitWindow(ctx workflow.Context, before Step) error {
	w := r.plan.Window
	if w == nil || workflow.GetVersion(ctx, "windows", workflow.DefaultVersion, 1) != 1 {
		return nil
	}
	r.st.Window = w.String()
	if r.in.Emergency {
		return nil
	}
	for {
		now := workflow.Now(ctx)
		// Time zones are data the worker reads: the answer is recorded,
		// so a replay on a worker with other zone data takes the same.
		var opens time.Time
		if err := workflow.SideEffect(ctx, func(workflow.Context) any {
			t, _ := w.Next(now)
			return t
		}).Get(&opens); err != nil {
			return err
		}
		if !opens.After(now) {
			if r.st.Step == StepAwaitWindow {
				r.st.WindowOpensAt, r.st.Reminder = time.Time{}, ""
			}
			return nil
		}
		r.st.WindowOpensAt = opens
		r.st.Reminder = fmt.Sprintf("%s waits for the rotation window (%s): it opens at %s", before, r.st.Window, opens.UTC().Format(time.RFC3339))
		if !r.promoted {
			r.st.Reminder += fmt.Sprintf("; nothing consumers see has changed yet; to roll back instead: starter abort %s --reason '...'", r.in.Target)
		}
		r.setStep(ctx, StepAwaitWindow)
		workflow.GetLogger(ctx).Info("waiting for the rotation window", "target", r.in.Target, "step", before, "window", r.st.Window, "opens", opens)
		if _, err := workflow.AwaitWithTimeout(ctx, opens.Sub(now), func() bool { return r.st.Aborted != nil && !r.promoted }); err != nil {
			return err
		}
		if r.st.Aborted != nil && !r.promoted {
			return errAborted
		}
	}
}
