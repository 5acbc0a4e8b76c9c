package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"go.temporal.io/sdk/workflow"
)

// handle registers the status query, the approve/abort Updates and the
// approve/abort signals. Signals serve the Web UI, which can send them but
// shows no Update result; Updates serve the CLI, which wants a refusal when
// the rotation is in the wrong step.
func (r *rotation) handle(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return r.st, nil }); err != nil {
		return fmt.Errorf("register status query: %w", err)
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateApprove,
		func(ctx workflow.Context, d Decision) (Status, error) {
			r.approve(ctx, d)
			return r.st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d Decision) error { return r.canApprove(d) }},
	); err != nil {
		return fmt.Errorf("register approve update: %w", err)
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateAbort,
		func(ctx workflow.Context, d Decision) (Status, error) {
			r.abort(ctx, d)
			return r.st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d Decision) error { return r.canAbort(d) }},
	); err != nil {
		return fmt.Errorf("register abort update: %w", err)
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRetry,
		func(ctx workflow.Context, d Decision) (Status, error) {
			r.retry(ctx, d)
			return r.st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d Decision) error { return r.canRetry(d) }},
	); err != nil {
		return fmt.Errorf("register retry update: %w", err)
	}
	if r.steps.obtain != nil {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateKeysStaged,
			func(ctx workflow.Context, d Decision) (Status, error) { return r.keysStaged(ctx, d) },
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d Decision) error { return r.canStageKeys(d) }},
		); err != nil {
			return fmt.Errorf("register keys-staged update: %w", err)
		}
		keysCh := workflow.GetSignalChannel(ctx, SignalKeysStaged)
		workflow.Go(ctx, func(ctx workflow.Context) {
			for {
				var d Decision
				keysCh.Receive(ctx, &d)
				if err := r.canStageKeys(d); err != nil {
					r.ignore(ctx, SignalKeysStaged, d, err)
					continue
				}
				r.keysRequested++
				workflow.GetLogger(ctx).Info("keys staged", "target", r.in.Target, "by", d.By)
			}
		})
	}
	approveCh := workflow.GetSignalChannel(ctx, SignalApprove)
	abortCh := workflow.GetSignalChannel(ctx, SignalAbort)
	retryCh := workflow.GetSignalChannel(ctx, SignalRetry)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var d Decision
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(approveCh, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, &d)
				if err := r.canApprove(d); err != nil {
					r.ignore(ctx, SignalApprove, d, err)
					return
				}
				r.approve(ctx, d)
			})
			sel.AddReceive(abortCh, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, &d)
				if err := r.canAbort(d); err != nil {
					r.ignore(ctx, SignalAbort, d, err)
					return
				}
				r.abort(ctx, d)
			})
			sel.AddReceive(retryCh, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, &d)
				if err := r.canRetry(d); err != nil {
					r.ignore(ctx, SignalRetry, d, err)
					return
				}
				r.retry(ctx, d)
			})
			sel.Select(ctx)
		}
	})
	return nil
}

// MaxReasonLength bounds a decision's reason, in characters: enough for a
// sentence and a ticket link, not for a pasted log.
const MaxReasonLength = 500

// CheckReason refuses an approve or abort without a reason, or with one
// longer than MaxReasonLength, after trimming white space. verb names the
// decision in the message.
func CheckReason(verb, reason string) error {
	reason = strings.TrimSpace(reason)
	switch n := utf8.RuneCountInString(reason); {
	case n == 0:
		return fmt.Errorf(`reason: is required: say why you %s, e.g. {"by": "alice", "reason": "tokens re-issued"}`, verb)
	case n > MaxReasonLength:
		return fmt.Errorf("reason: is %d characters long: keep it to %d (link a ticket for more)", n, MaxReasonLength)
	}
	return nil
}

// checkReason is CheckReason for rotations of version
// "accountable-decisions"; those started before took decisions without one.
func (r *rotation) checkReason(verb string, d Decision) error {
	if !r.accountable {
		return nil
	}
	return CheckReason(verb, d.Reason)
}

func (r *rotation) canApprove(d Decision) error {
	if d.By == "" {
		return fmt.Errorf(`by: is required: say who approves, e.g. {"by": "alice", "reason": "tokens migrated"}`)
	}
	if err := r.checkReason("approve", d); err != nil {
		return err
	}
	if d.KeepOld && !r.safe {
		return fmt.Errorf("keepOld: this rotation started before retire could keep the old version: approve without it")
	}
	if r.st.Step == StepRetire && len(r.st.RetireWaitsFor) > 0 {
		if !d.KeepOld {
			return fmt.Errorf("rotation of %s was approved already and waits for %s to stop using the old version: to finish now and keep it, approve with keepOld (starter approve %s --keep-old)",
				r.in.Target, strings.Join(r.st.RetireWaitsFor, ", "), r.in.Target)
		}
		if r.keepOld {
			return fmt.Errorf("rotation of %s keeps the old version already, as %s asked", r.in.Target, r.st.KeptOld.By)
		}
		return nil
	}
	if r.st.Step != StepGrace {
		return fmt.Errorf("rotation of %s is in step %s, not grace: approve ends a grace period only", r.in.Target, r.st.Step)
	}
	if r.st.Approved != nil || r.st.Aborted != nil {
		return fmt.Errorf("rotation of %s was already decided: %s", r.in.Target, r.decided())
	}
	return nil
}

func (r *rotation) canAbort(d Decision) error {
	if d.By == "" {
		return fmt.Errorf(`by: is required: say who aborts, e.g. {"by": "alice", "reason": "errors after rollout"}`)
	}
	if err := r.checkReason("abort", d); err != nil {
		return err
	}
	abortable := []Step{StepPreflight, StepAwaitKeys, StepStage, StepApply, StepPromote, StepVerify, StepGrace}
	if !slices.Contains(abortable, r.st.Step) && !(r.st.Step == StepAwaitWindow && !r.promoted) {
		return fmt.Errorf("rotation of %s is in step %s: abort is possible until grace ends, not after", r.in.Target, r.st.Step)
	}
	if r.st.Approved != nil || r.st.Aborted != nil {
		return fmt.Errorf("rotation of %s was already decided: %s", r.in.Target, r.decided())
	}
	return nil
}

func (r *rotation) decided() string {
	if r.st.Approved != nil {
		return "approved by " + r.st.Approved.By
	}
	return "aborted by " + r.st.Aborted.By
}

func (r *rotation) approve(ctx workflow.Context, d Decision) {
	d.At = workflow.Now(ctx)
	if r.accountable {
		d.Reason = strings.TrimSpace(d.Reason)
	}
	if d.KeepOld {
		r.keepOld, r.st.KeptOld = true, &d
		workflow.GetLogger(ctx).Info("old version kept", "target", r.in.Target, "by", d.By, "reason", d.Reason)
	}
	if r.st.Step == StepGrace {
		r.st.Approved = &d
		workflow.GetLogger(ctx).Info("grace approved", "target", r.in.Target, "by", d.By, "reason", d.Reason)
	}
}

func (r *rotation) canRetry(d Decision) error {
	if d.By == "" {
		return fmt.Errorf(`by: is required: say who retries, e.g. {"by": "alice", "reason": "RBAC fixed"}`)
	}
	if r.st.Step != StepCompensationFailed {
		return fmt.Errorf("rotation of %s is in step %s, not %s: retry runs a rollback that could not finish again", r.in.Target, r.st.Step, StepCompensationFailed)
	}
	return nil
}

func (r *rotation) retry(ctx workflow.Context, d Decision) {
	d.At = workflow.Now(ctx)
	r.st.Retried = append(r.st.Retried, d)
	r.retries++
	workflow.GetLogger(ctx).Info("compensation retried", "target", r.in.Target, "by", d.By, "reason", d.Reason)
}

// abort also cancels the step in flight, so an abort during a long rollout
// wait takes effect at once and compensation starts.
func (r *rotation) abort(ctx workflow.Context, d Decision) {
	d.At = workflow.Now(ctx)
	if r.accountable {
		d.Reason = strings.TrimSpace(d.Reason)
	}
	r.st.Aborted = &d
	workflow.GetLogger(ctx).Info("rotation aborted", "target", r.in.Target, "by", d.By, "reason", d.Reason)
	if r.cancelSteps != nil {
		r.cancelSteps()
	}
}

func (r *rotation) canStageKeys(d Decision) error {
	if d.By == "" {
		return fmt.Errorf(`by: is required: say who staged the keys, e.g. {"by": "alice"}`)
	}
	if r.st.Step != StepAwaitKeys {
		return fmt.Errorf("rotation of %s is in step %s, not %s: keys can be staged only while it waits for them", r.in.Target, r.st.Step, StepAwaitKeys)
	}
	return nil
}

// keysStaged asks the rotation to check the staged keys and answers with
// the providers' verdict, so `starter stage-keys` can say at once whether
// a key was refused.
func (r *rotation) keysStaged(ctx workflow.Context, d Decision) (Status, error) {
	r.keysRequested++
	n := r.keysRequested
	workflow.GetLogger(ctx).Info("keys staged", "target", r.in.Target, "by", d.By)
	if err := workflow.Await(ctx, func() bool {
		return r.keysChecked >= n || r.st.Aborted != nil || r.st.Step != StepAwaitKeys
	}); err != nil {
		return r.st, err
	}
	if r.st.Step == StepAwaitKeys && r.st.KeysError != "" {
		return r.st, errors.New(r.st.KeysError)
	}
	return r.st, nil
}

// ignore records a signal that does not apply where the rotation is: the
// UI that sent it shows no answer, so the status, the UI's current details
// and the worker's log say it was not taken, and why.
func (r *rotation) ignore(ctx workflow.Context, signal string, d Decision, why error) {
	r.st.Ignored = append(r.st.Ignored, IgnoredDecision{Signal: signal, By: d.By, At: workflow.Now(ctx), Step: r.st.Step, Why: why.Error()})
	if n := len(r.st.Ignored); n > maxIgnored {
		r.st.Ignored = slices.Delete(r.st.Ignored, 0, n-maxIgnored)
	}
	workflow.GetLogger(ctx).Warn(signal+" signal ignored", "target", r.in.Target, "step", r.st.Step, "reason", why, "by", d.By)
	r.details(ctx)
}
