package activities

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// workload is the part of a Deployment, StatefulSet, DaemonSet or CronJob
// that a rotation reads: its metadata and pod template (a CronJob's is its
// job template's).
type workload struct {
	ref      Workload
	meta     metav1.Object
	template *corev1.PodTemplateSpec
	obj      runtime.Object
}

// workloads gives the consumer kinds one shape, so promote, rollout and
// retire are written once.
type workloads struct {
	client kubernetes.Interface
}

func (w workloads) get(ctx context.Context, ns string, ref Workload) (workload, error) {
	var obj runtime.Object
	var err error
	switch ref.Kind {
	case "Deployment":
		obj, err = w.client.AppsV1().Deployments(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	case "StatefulSet":
		obj, err = w.client.AppsV1().StatefulSets(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	case "DaemonSet":
		obj, err = w.client.AppsV1().DaemonSets(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	case "CronJob":
		obj, err = w.client.BatchV1().CronJobs(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	default:
		return workload{}, fmt.Errorf("workload kind %q is not supported", ref.Kind)
	}
	if err != nil {
		return workload{}, err
	}
	return asWorkload(obj), nil
}

func (w workloads) patch(ctx context.Context, ns string, ref Workload, patch []byte) (workload, error) {
	var obj runtime.Object
	var err error
	opts := metav1.PatchOptions{FieldManager: ManagedByValue}
	switch ref.Kind {
	case "Deployment":
		obj, err = w.client.AppsV1().Deployments(ns).Patch(ctx, ref.Name, types.JSONPatchType, patch, opts)
	case "StatefulSet":
		obj, err = w.client.AppsV1().StatefulSets(ns).Patch(ctx, ref.Name, types.JSONPatchType, patch, opts)
	case "DaemonSet":
		obj, err = w.client.AppsV1().DaemonSets(ns).Patch(ctx, ref.Name, types.JSONPatchType, patch, opts)
	case "CronJob":
		obj, err = w.client.BatchV1().CronJobs(ns).Patch(ctx, ref.Name, types.JSONPatchType, patch, opts)
	default:
		return workload{}, fmt.Errorf("workload kind %q is not supported", ref.Kind)
	}
	if err != nil {
		return workload{}, err
	}
	return asWorkload(obj), nil
}

// watch watches one workload by name from a resourceVersion on, without
// the list that listWatch starts with.
func (w workloads) watch(ctx context.Context, ns string, ref Workload, resourceVersion string) (watch.Interface, error) {
	opts := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", ref.Name).String(),
		ResourceVersion: resourceVersion, AllowWatchBookmarks: true}
	switch ref.Kind {
	case "Deployment":
		return w.client.AppsV1().Deployments(ns).Watch(ctx, opts)
	case "StatefulSet":
		return w.client.AppsV1().StatefulSets(ns).Watch(ctx, opts)
	case "DaemonSet":
		return w.client.AppsV1().DaemonSets(ns).Watch(ctx, opts)
	}
	return nil, fmt.Errorf("workload kind %q is not supported", ref.Kind)
}

// listWatch watches one workload by name, for client-go's watch tools.
func (w workloads) listWatch(ns string, ref Workload) (cache.ListerWatcher, runtime.Object, error) {
	sel := fields.OneTermEqualSelector("metadata.name", ref.Name).String()
	var rc cache.Getter
	var obj runtime.Object
	switch ref.Kind {
	case "Deployment":
		rc, obj = w.client.AppsV1().RESTClient(), &appsv1.Deployment{}
	case "StatefulSet":
		rc, obj = w.client.AppsV1().RESTClient(), &appsv1.StatefulSet{}
	case "DaemonSet":
		rc, obj = w.client.AppsV1().RESTClient(), &appsv1.DaemonSet{}
	default:
		return nil, nil, fmt.Errorf("workload kind %q is not supported", ref.Kind)
	}
	resource := map[string]string{"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}[ref.Kind]
	lw := cache.NewListWatchFromClient(rc, resource, ns, fields.ParseSelectorOrDie(sel))
	return lw, obj, nil
}

func asWorkload(obj runtime.Object) workload {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return workload{ref: Workload{Kind: "Deployment", Name: o.Name}, meta: o, template: &o.Spec.Template, obj: o}
	case *appsv1.StatefulSet:
		return workload{ref: Workload{Kind: "StatefulSet", Name: o.Name}, meta: o, template: &o.Spec.Template, obj: o}
	case *appsv1.DaemonSet:
		return workload{ref: Workload{Kind: "DaemonSet", Name: o.Name}, meta: o, template: &o.Spec.Template, obj: o}
	case *batchv1.CronJob:
		return workload{ref: Workload{Kind: "CronJob", Name: o.Name}, meta: o, template: &o.Spec.JobTemplate.Spec.Template, obj: o}
	}
	panic(fmt.Sprintf("unexpected workload type %T", obj))
}

// templatePath is the JSON pointer of a workload kind's pod template.
func templatePath(kind string) string {
	if kind == "CronJob" {
		return "/spec/jobTemplate/spec/template"
	}
	return "/spec/template"
}

// rollsOut says a new template of the kind replaces running pods; a
// CronJob's next Job simply starts from it.
func rollsOut(kind string) bool { return kind != "CronJob" }

// blocker says why the workload would keep its pods on the old template
// after a patch, so that preflight refuses it before anything changes.
func (wl workload) blocker() string {
	switch o := wl.obj.(type) {
	case *appsv1.Deployment:
		if o.Spec.Paused {
			return "is paused, so it would not roll out the new Secret: resume it (kubectl rollout resume " + wl.ref.String() + ") before rotating"
		}
	case *appsv1.StatefulSet:
		if o.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
			return "uses updateStrategy OnDelete, so its pods would keep the old Secret until someone deletes them: switch it to RollingUpdate before rotating"
		}
		if ru := o.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil && *ru.Partition > 0 {
			return fmt.Sprintf("has rollingUpdate.partition %d, so its pods below that ordinal would keep the old Secret: set the partition to 0 before rotating", *ru.Partition)
		}
	case *appsv1.DaemonSet:
		if o.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
			return "uses updateStrategy OnDelete, so its pods would keep the old Secret until someone deletes them: switch it to RollingUpdate before rotating"
		}
	}
	return ""
}

// progressDeadline is a Deployment's own bound on a rollout without
// progress, in seconds; 0 for kinds that have none.
func (wl workload) progressDeadline() int32 {
	if d, ok := wl.obj.(*appsv1.Deployment); ok && d.Spec.ProgressDeadlineSeconds != nil {
		return *d.Spec.ProgressDeadlineSeconds
	}
	return 0
}
