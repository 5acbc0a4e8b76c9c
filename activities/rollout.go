package activities

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// rolloutState says whether a workload finished rolling out the pod
// template of generation gen, with the same rules as `kubectl rollout
// status`. A non-nil error means the rollout failed for good.
func rolloutState(obj runtime.Object, gen int64) (done bool, progress string, err error) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return deploymentState(o, gen)
	case *appsv1.StatefulSet:
		return statefulSetState(o, gen)
	case *appsv1.DaemonSet:
		return daemonSetState(o, gen)
	}
	return false, "", fmt.Errorf("unexpected workload type %T", obj)
}

func deploymentState(d *appsv1.Deployment, gen int64) (bool, string, error) {
	if d.Status.ObservedGeneration < gen {
		return false, "waiting for the controller to observe the new template", nil
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return false, "", fmt.Errorf("deployment/%s exceeded its progress deadline: %s", d.Name, c.Message)
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	switch {
	case s.UpdatedReplicas < want:
		return false, fmt.Sprintf("%d of %d new replicas updated", s.UpdatedReplicas, want), nil
	case s.Replicas > s.UpdatedReplicas:
		return false, fmt.Sprintf("%d old replicas pending termination", s.Replicas-s.UpdatedReplicas), nil
	case s.AvailableReplicas < s.UpdatedReplicas:
		return false, fmt.Sprintf("%d of %d updated replicas available", s.AvailableReplicas, s.UpdatedReplicas), nil
	}
	return true, fmt.Sprintf("%d of %d replicas updated and available", s.AvailableReplicas, want), nil
}

func statefulSetState(s *appsv1.StatefulSet, gen int64) (bool, string, error) {
	if s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return false, "", fmt.Errorf("statefulset/%s uses the OnDelete update strategy, so its pods keep the old Secret until deleted: switch it to RollingUpdate or list it out of consumers", s.Name)
	}
	if s.Status.ObservedGeneration < gen {
		return false, "waiting for the controller to observe the new template", nil
	}
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	st := s.Status
	if st.ReadyReplicas < want {
		return false, fmt.Sprintf("%d of %d replicas ready", st.ReadyReplicas, want), nil
	}
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil && *ru.Partition > 0 {
		if st.UpdatedReplicas < want-*ru.Partition {
			return false, fmt.Sprintf("%d of %d replicas updated (partition %d)", st.UpdatedReplicas, want-*ru.Partition, *ru.Partition), nil
		}
		return true, "partitioned roll out complete", nil
	}
	if st.UpdateRevision != st.CurrentRevision {
		return false, fmt.Sprintf("%d of %d replicas updated", st.UpdatedReplicas, want), nil
	}
	return true, fmt.Sprintf("%d of %d replicas updated and ready", st.UpdatedReplicas, want), nil
}

func daemonSetState(d *appsv1.DaemonSet, gen int64) (bool, string, error) {
	if d.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
		return false, "", fmt.Errorf("daemonset/%s uses the OnDelete update strategy, so its pods keep the old Secret until deleted: switch it to RollingUpdate", d.Name)
	}
	if d.Status.ObservedGeneration < gen {
		return false, "waiting for the controller to observe the new template", nil
	}
	st := d.Status
	if st.UpdatedNumberScheduled < st.DesiredNumberScheduled {
		return false, fmt.Sprintf("%d of %d pods updated", st.UpdatedNumberScheduled, st.DesiredNumberScheduled), nil
	}
	if st.NumberAvailable < st.DesiredNumberScheduled {
		return false, fmt.Sprintf("%d of %d updated pods available", st.NumberAvailable, st.DesiredNumberScheduled), nil
	}
	return true, fmt.Sprintf("%d of %d pods updated and available", st.NumberAvailable, st.DesiredNumberScheduled), nil
}
