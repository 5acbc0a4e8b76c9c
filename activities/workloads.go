package activities

import (
	"context"
	"fmt"
	"sync"

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

// workload is the part of a Deployment, StatefulSet or DaemonSet that a
// rotation reads: its metadata and pod template.
type workload struct {
	ref      Workload
	meta     metav1.Object
	template *corev1.PodTemplateSpec
}

// workloads gives the three consumer kinds one shape, so promote, rollout
// and retire are written once.
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
	default:
		return workload{}, fmt.Errorf("workload kind %q is not supported", ref.Kind)
	}
	if err != nil {
		return workload{}, err
	}
	return asWorkload(obj), nil
}

// list returns every consumer-kind workload in the namespace: three list
// calls, however many workloads there are, made at once since each waits
// on the apiserver.
func (w workloads) list(ctx context.Context, ns string) ([]workload, error) {
	var deps *appsv1.DeploymentList
	var sts *appsv1.StatefulSetList
	var dss *appsv1.DaemonSetList
	var errs [3]error
	var wg sync.WaitGroup
	wg.Go(func() { deps, errs[0] = w.client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}) })
	wg.Go(func() { sts, errs[1] = w.client.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{}) })
	wg.Go(func() { dss, errs[2] = w.client.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{}) })
	wg.Wait()
	for i, kind := range []string{"deployments", "statefulsets", "daemonsets"} {
		if errs[i] != nil {
			return nil, fmt.Errorf("list %s in %s: %w", kind, ns, errs[i])
		}
	}
	out := make([]workload, 0, len(deps.Items)+len(sts.Items)+len(dss.Items))
	for i := range deps.Items {
		out = append(out, asWorkload(&deps.Items[i]))
	}
	for i := range sts.Items {
		out = append(out, asWorkload(&sts.Items[i]))
	}
	for i := range dss.Items {
		out = append(out, asWorkload(&dss.Items[i]))
	}
	return out, nil
}

// referencing returns the workloads whose pod template names the Secret.
func (w workloads) referencing(ctx context.Context, ns, secret string) ([]Workload, error) {
	all, err := w.list(ctx, ns)
	if err != nil {
		return nil, err
	}
	var refs []Workload
	for _, wl := range all {
		if len(secretRefPaths(&wl.template.Spec, secret)) > 0 {
			refs = append(refs, wl.ref)
		}
	}
	return refs, nil
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

// seen records what a rotation needs of a consumer that references the
// Secret, so promote can patch it without reading it again.
func (wl workload) seen(secret string) Seen {
	return Seen{Workload: wl.ref, ResourceVersion: wl.meta.GetResourceVersion(),
		Paths: secretRefPaths(&wl.template.Spec, secret), Annotated: wl.meta.GetAnnotations() != nil}
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
		return workload{ref: Workload{Kind: "Deployment", Name: o.Name}, meta: o, template: &o.Spec.Template}
	case *appsv1.StatefulSet:
		return workload{ref: Workload{Kind: "StatefulSet", Name: o.Name}, meta: o, template: &o.Spec.Template}
	case *appsv1.DaemonSet:
		return workload{ref: Workload{Kind: "DaemonSet", Name: o.Name}, meta: o, template: &o.Spec.Template}
	}
	panic(fmt.Sprintf("unexpected workload type %T", obj))
}
