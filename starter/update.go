package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"rotator/workflows"
)

// defaultDecisionTimeout is how long approve, abort, retry and stage-keys
// wait for the worker's answer by default: a polling worker answers in
// well under a second, and a decision that waits longer waits for a person
// to start one.
const defaultDecisionTimeout = 2 * time.Minute

// quietAfter is how long a decision may go unanswered before the command
// says why; a worker that polls takes an Update within milliseconds.
const quietAfter = 5 * time.Second

// update sends a decision to a rotation as an Update and waits for the
// worker's answer. When none comes within quietAfter it tells the user
// which task queue no worker is taking it from, and after timeout it gives
// up, saying where the decision now is.
func (a *app) update(ctx context.Context, c client.Client, target, name string, d workflows.Decision, timeout time.Duration) (workflows.Status, error) {
	id := workflows.WorkflowID(target)
	uctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type answer struct {
		st  workflows.Status
		err error
	}
	answers := make(chan answer, 1)
	go func() {
		var r answer
		h, err := c.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{
			WorkflowID:   id,
			UpdateName:   name,
			Args:         []any{d},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			err = h.Get(uctx, &r.st)
		}
		r.err = err
		answers <- r
	}()
	select {
	case r := <-answers:
		return r.st, r.err
	case <-time.After(min(quietAfter, timeout)):
		a.noAnswer(ctx, c, id, name, min(quietAfter, timeout), timeout)
	}
	r := <-answers
	var gaveUp *client.WorkflowUpdateServiceTimeoutOrCanceledError
	if ctx.Err() == nil && (errors.As(r.err, &gaveUp) || errors.Is(r.err, context.DeadlineExceeded)) {
		return r.st, fmt.Errorf("no worker answered within %s (--timeout): the %s stays with Temporal and a worker that starts polling applies it, or refuses it if the rotation has moved on; see 'starter status %s' (a restart of the Temporal server drops a decision no worker has taken: send it again then)",
			timeout, name, target)
	}
	return r.st, r.err
}

// noAnswer tells the user, on the error stream so that scripts reading the
// output are not disturbed, why a decision has not been answered: which
// task queue the rotation runs on and when a worker last polled it.
func (a *app) noAnswer(ctx context.Context, c client.Client, id, name string, waited, timeout time.Duration) {
	fmt.Fprintf(a.errOut, "%s: no worker has taken the %s in %s.\n", id, name, waited)
	queue := a.temporal.TaskQueue
	if desc, err := c.DescribeWorkflow(ctx, id, ""); err == nil && desc.RawResponse.GetExecutionConfig().GetTaskQueue().GetName() != "" {
		queue = desc.RawResponse.GetExecutionConfig().GetTaskQueue().GetName()
	}
	tq, err := c.DescribeTaskQueue(ctx, queue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	switch {
	case err != nil:
		fmt.Fprintf(a.errOut, "  task queue %s: cannot tell who polls it: %v\n", queue, err)
	case len(tq.GetPollers()) == 0:
		fmt.Fprintf(a.errOut, "  task queue %s: no worker has polled it in the last 5 minutes: start the rotator worker (ROTATOR_TASK_QUEUE=%s).\n", queue, queue)
	default:
		var last time.Time
		identity := ""
		for _, p := range tq.GetPollers() {
			if t := p.GetLastAccessTime().AsTime(); t.After(last) {
				last, identity = t, p.GetIdentity()
			}
		}
		fmt.Fprintf(a.errOut, "  task queue %s: last polled by %s at %s (%s ago); a polling worker takes a decision at once, so it has likely stopped or lost its connection to Temporal.\n",
			queue, identity, last.UTC().Format(time.RFC3339), time.Since(last).Round(time.Second))
	}
	fmt.Fprintf(a.errOut, "  The %s waits in Temporal: a worker that starts polling %s applies it, or refuses it if the rotation has moved on. Waiting up to %s (--timeout).\n",
		name, queue, timeout)
}
