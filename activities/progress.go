package activities

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// progress follows one rollout: what it reported last and since when, so
// that a rollout Kubernetes never flags as failed still ends in bounded
// time.
type progress struct {
	rollout Rollout
	// limit is the target's rolloutTimeout, zero for the default.
	limit time.Duration
	// started is when this wait began: a ReplicaFailure from before it
	// belongs to an earlier rollout (the one a rollback undoes) and has
	// its grace counted from here.
	started time.Time

	mu    sync.Mutex
	obj   runtime.Object
	state string
	since time.Time
}

// stuckRollout is a rollout that made no progress for its limit, or whose
// pods Kubernetes could not create for ReplicaFailureGrace.
type stuckRollout struct{ msg string }

func (e *stuckRollout) Error() string { return e.msg }

// observe records the workload as a watch event delivered it; a change of
// the rollout's state is progress.
func (p *progress) observe(obj runtime.Object, state string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.obj = obj
	if state != p.state {
		p.state, p.since = state, time.Now()
	}
}

func (p *progress) object() runtime.Object {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.obj
}

func (p *progress) heartbeat() rolloutHeartbeat {
	p.mu.Lock()
	defer p.mu.Unlock()
	return rolloutHeartbeat{Workload: p.rollout.Workload, Progress: p.state, Since: p.since}
}

// stuck says why the rollout should end now, or nil.
func (p *progress) stuck(now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.rollout.Workload
	// A status the controller wrote before it saw this rollout's template
	// still carries the last rollout's failure.
	if d, ok := p.obj.(*appsv1.Deployment); ok && d.Status.ObservedGeneration >= p.rollout.Generation {
		for _, c := range d.Status.Conditions {
			if c.Type != appsv1.DeploymentReplicaFailure || c.Status != corev1.ConditionTrue {
				continue
			}
			since := c.LastTransitionTime.Time
			if since.Before(p.started) {
				since = p.started
			}
			if now.Sub(since) >= ReplicaFailureGrace {
				return &stuckRollout{fmt.Sprintf("%s cannot create pods for its new template (ReplicaFailure %s for %s): %s",
					w, c.Reason, now.Sub(c.LastTransitionTime.Time).Round(time.Second), c.Message)}
			}
		}
	}
	limit := rolloutLimit(p.limit, p.obj)
	if idle := now.Sub(p.since); idle >= limit {
		state := p.state
		if state == "" {
			state = "no status seen"
		}
		return &stuckRollout{fmt.Sprintf("%s made no progress for %s (%s)", w, idle.Round(time.Second), state)}
	}
	return nil
}

// maxDiagnosed bounds how many pods an error describes.
const maxDiagnosed = 3

// diagnose says, for an error, why the workload's pods are not ready:
// what the scheduler, the kubelet and the readiness checks report.
func (k *Kube) diagnose(ctx context.Context, ns string, obj runtime.Object) string {
	if obj == nil {
		return ""
	}
	var sel *metav1.LabelSelector
	switch o := obj.(type) {
	case *appsv1.Deployment:
		sel = o.Spec.Selector
	case *appsv1.StatefulSet:
		sel = o.Spec.Selector
	case *appsv1.DaemonSet:
		sel = o.Spec.Selector
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if sel == nil || err != nil {
		return ""
	}
	pods, err := k.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: s.String()})
	if err != nil {
		return ""
	}
	var why []string
	for _, pod := range pods.Items {
		if w := podTrouble(&pod); w != "" {
			why = append(why, fmt.Sprintf("pod %s: %s", pod.Name, w))
		}
	}
	slices.Sort(why)
	if len(why) == 0 {
		return ""
	}
	more := ""
	if len(why) > maxDiagnosed {
		more = fmt.Sprintf(" (and %d more)", len(why)-maxDiagnosed)
		why = why[:maxDiagnosed]
	}
	return "; " + strings.Join(why, "; ") + more
}

// podTrouble is why a pod is not ready, or "" for a ready or ending pod.
func podTrouble(pod *corev1.Pod) string {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded {
		return ""
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return fmt.Sprintf("%s: %s", c.Reason, c.Message)
		}
	}
	for _, cs := range append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			return fmt.Sprintf("container %s: %s: %s", cs.Name, w.Reason, w.Message)
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return fmt.Sprintf("container %s exited %d: %s", cs.Name, t.ExitCode, t.Reason)
		}
	}
	i := slices.IndexFunc(pod.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodReady })
	switch {
	case i < 0:
		return "not ready"
	case pod.Status.Conditions[i].Status != corev1.ConditionTrue:
		return "not ready" + strings.TrimSuffix(": "+pod.Status.Conditions[i].Message, ": ")
	}
	return ""
}
