package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	watchtools "k8s.io/client-go/tools/watch"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// AwaitRollout watches each workload until it has rolled out the
// generation promote produced, heartbeating its progress. A rollout that
// exceeds its progress deadline fails for good, which starts compensation.
func (k *Kube) AwaitRollout(ctx context.Context, in AwaitInput) error {
	every := k.HeartbeatEvery
	if every == 0 {
		every = 10 * time.Second
	}
	for _, r := range in.Rollouts {
		if err := k.await(ctx, in, r, every); err != nil {
			return err
		}
	}
	return nil
}

func (k *Kube) await(ctx context.Context, in AwaitInput, r Rollout, every time.Duration) error {
	progress := make(chan string, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// Heartbeats come from a ticker too, since a stuck rollout sends
		// no watch events and Temporal must still see the activity alive.
		t := time.NewTicker(every)
		defer t.Stop()
		last := "waiting"
		for {
			select {
			case <-stop:
				return
			case last = <-progress:
				activity.RecordHeartbeat(ctx, r.Workload.String()+": "+last)
			case <-t.C:
				activity.RecordHeartbeat(ctx, r.Workload.String()+": "+last)
			}
		}
	}()
	// failed is a rollout that failed for good, refused a rolled-out
	// template that does not reference what it should.
	var failed, refused error
	cond := func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Deleted:
			failed = fmt.Errorf("%s was deleted during its rollout", r.Workload)
			return false, failed
		case watch.Bookmark:
			return false, nil
		case watch.Error:
			// Typically 410 Gone: the resourceVersion is too old to
			// watch from; the caller falls back to list and watch.
			return false, fmt.Errorf("watch %s: %w", r.Workload, apierrors.FromObject(ev.Object))
		}
		done, msg, err := rolloutState(ev.Object, r.Generation)
		if err != nil {
			failed = err
			return false, err
		}
		select {
		case progress <- msg:
		default:
		}
		if done && r.To != "" {
			if refused = verifyTemplate(ev.Object, r.Workload, r.From, r.To); refused != nil {
				return false, refused
			}
		}
		return done, nil
	}
	err := errors.New("no watch from a resourceVersion")
	if r.Patched && r.ResourceVersion != "" {
		// The patch response's resourceVersion is where the rollout
		// starts, so a watch from there sees all of it: one request
		// instead of a list and a watch.
		var w watch.Interface
		if w, err = k.workloads().watch(ctx, in.Namespace, r.Workload, r.ResourceVersion); err == nil {
			_, err = watchtools.UntilWithoutRetry(ctx, w, cond)
		}
	}
	if err != nil && failed == nil && refused == nil && ctx.Err() == nil {
		lw, obj, lerr := k.workloads().listWatch(in.Namespace, r.Workload)
		if lerr != nil {
			return badInput("%v", lerr)
		}
		_, err = watchtools.UntilWithSync(ctx, lw, obj, nil, cond)
	}
	switch {
	case refused != nil:
		return refused
	case failed != nil:
		return temporal.NewNonRetryableApplicationError(failed.Error(), ErrRolloutFailed, nil)
	case err != nil:
		return fmt.Errorf("watch rollout of %s: %w", r.Workload, err)
	}
	activity.GetLogger(ctx).Info("rollout complete", "workload", r.Workload.String(), "generation", r.Generation)
	return nil
}

// verifyTemplate checks that a rolled-out workload's template references
// the new Secret and no longer the old one: verify's check of a consumer,
// made on the object the rollout watch delivered, which rolloutState has
// already accepted as a workload type asWorkload knows.
func verifyTemplate(obj runtime.Object, ref Workload, oldName, newName string) error {
	spec := &asWorkload(obj).template.Spec
	if oldName != "" && len(secretRefPaths(spec, oldName)) > 0 {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s still references the old Secret %s: someone edited it during the rotation", ref, oldName), ErrStillInUse, nil)
	}
	if len(secretRefPaths(spec, newName)) == 0 {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s does not reference the new Secret %s", ref, newName), ErrConflict, nil)
	}
	return nil
}
