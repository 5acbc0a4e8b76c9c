package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"rotator/catalog"
)

// ReplicaFailureGrace is how long a Deployment may report that it cannot
// create pods (ReplicaFailure, e.g. a ResourceQuota) before its rollout
// fails: long enough for old pods to terminate and free the quota, short
// enough not to keep a rotation in promote for the whole progress deadline.
const ReplicaFailureGrace = 30 * time.Second

// progressMargin lets a Deployment's own ProgressDeadlineExceeded, which
// says more than "no progress", arrive before rotator's bound.
const progressMargin = 30 * time.Second

// rolloutHeartbeat is what a rollout wait records with each heartbeat, so
// that an attempt after a worker died keeps counting from the last
// progress instead of starting the no-progress clock again.
type rolloutHeartbeat struct {
	Workload Workload  `json:"workload"`
	Progress string    `json:"progress"`
	Since    time.Time `json:"since"`
}

// AwaitRollout watches each workload until it has rolled out the
// generation promote produced, heartbeating its progress. A rollout that
// exceeds its progress deadline, makes no progress for the target's
// rolloutTimeout, or cannot create pods for ReplicaFailureGrace fails for
// good, with what Kubernetes says about its pods; that starts
// compensation. With in.Old it then reports what in the namespace still
// uses the old version.
func (k *Kube) AwaitRollout(ctx context.Context, in AwaitInput) (AwaitResult, error) {
	if err := checkNamespace(k.Catalog, in.Target, in.Namespace); err != nil {
		return AwaitResult{}, err
	}
	every := k.HeartbeatEvery
	if every == 0 {
		every = 10 * time.Second
	}
	var limit time.Duration
	if in.Target != "" {
		if t, err := k.Catalog.Target(in.Target); err == nil {
			limit = t.RolloutTimeout.Duration
		}
	}
	var last rolloutHeartbeat
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &last)
	}
	for _, r := range in.Rollouts {
		if !rollsOut(r.Workload.Kind) {
			continue
		}
		now := time.Now()
		p := &progress{rollout: r, limit: limit, started: now, since: now}
		if last.Workload == r.Workload && !last.Since.IsZero() {
			p.state, p.since = last.Progress, last.Since
		}
		if err := k.await(ctx, in, p, every); err != nil {
			return AwaitResult{}, err
		}
	}
	var res AwaitResult
	if in.Old != "" {
		scan, err := k.scan(ctx, in.Namespace)
		if err != nil {
			return res, classify(err)
		}
		res.StillOnOld = holders(scan.users(in.Old))
		if len(res.StillOnOld) > 0 {
			activity.GetLogger(ctx).Warn("still on the old version after the rollout", "secret", in.Old, "objects", holderNames(res.StillOnOld))
		}
	}
	return res, nil
}

func (k *Kube) await(parent context.Context, in AwaitInput, p *progress, every time.Duration) error {
	r := p.rollout
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// Heartbeats come from a ticker too, since a stuck rollout sends
		// no watch events and Temporal must still see the activity alive;
		// the same ticker ends a rollout that stopped making progress.
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				hb := p.heartbeat()
				activity.RecordHeartbeat(ctx, hb)
				if err := p.stuck(now); err != nil {
					cancel(err)
					return
				}
			}
		}
	}()
	// failed is a rollout that failed for good, refused a rolled-out
	// template that does not reference what it should.
	var failed, refused error
	cond := func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Deleted:
			return false, errConsumerDeleted
		case watch.Bookmark:
			return false, nil
		case watch.Error:
			// Typically 410 Gone: the resourceVersion is too old to
			// watch from; the caller falls back to list and watch.
			return false, fmt.Errorf("watch %s: %w", r.Workload, apierrors.FromObject(ev.Object))
		}
		done, msg, err := rolloutState(ev.Object, r.Generation)
		p.observe(ev.Object, msg)
		if err != nil {
			failed = err
			return false, err
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
	if err != nil && failed == nil && refused == nil && ctx.Err() == nil && !errors.Is(err, errConsumerDeleted) {
		lw, obj, lerr := k.workloads().listWatch(in.Namespace, r.Workload)
		if lerr != nil {
			return badInput("%v", lerr)
		}
		// A workload gone before the list has no event to say so.
		gone := func(store cache.Store) (bool, error) {
			if len(store.List()) == 0 {
				return false, errConsumerDeleted
			}
			return false, nil
		}
		_, err = watchtools.UntilWithSync(ctx, lw, obj, gone, cond)
	}
	var stuck *stuckRollout
	switch {
	case errors.Is(err, errConsumerDeleted):
		// Nothing of it uses either version any more.
		activity.GetLogger(ctx).Warn("consumer deleted during its rollout; skipped", "workload", r.Workload.String())
		return nil
	case refused != nil:
		return refused
	case failed != nil:
		return temporal.NewNonRetryableApplicationError(failed.Error()+k.diagnose(parent, in.Namespace, p.object()), ErrRolloutFailed, nil)
	case err == nil:
		// Rolled out; a stuck verdict the ticker reached meanwhile came
		// too late to count.
	case errors.As(context.Cause(ctx), &stuck):
		return temporal.NewNonRetryableApplicationError(stuck.Error()+k.diagnose(parent, in.Namespace, p.object()), ErrRolloutStuck, nil)
	case err != nil:
		return fmt.Errorf("watch rollout of %s: %w", r.Workload, err)
	}
	activity.GetLogger(ctx).Info("rollout complete", "workload", r.Workload.String(), "generation", r.Generation)
	return nil
}

var errConsumerDeleted = errors.New("deleted during its rollout")

// rolloutLimit is how long a rollout of the workload may go without
// progress: the target's rolloutTimeout, else a Deployment's own progress
// deadline (and a margin), else catalog.DefaultRolloutTimeout.
func rolloutLimit(target time.Duration, obj runtime.Object) time.Duration {
	if target > 0 {
		return target
	}
	if obj != nil {
		if d := asWorkload(obj).progressDeadline(); d > 0 {
			return time.Duration(d)*time.Second + progressMargin
		}
	}
	return catalog.DefaultRolloutTimeout
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
