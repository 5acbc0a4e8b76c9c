// Package loginprobe logs in the way a consumer's pods do during a
// rotation: with the credentials of the Secret each running pod
// references, so a failed login is one a real pod would have seen.
package loginprobe

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
)

// Login tries the credentials in a Secret's data.
type Login func(ctx context.Context, data map[string][]byte) error

// Result counts the logins of one run.
type Result struct {
	Attempts, Failures int
}

// Run opens a new login every interval, round robin over the running pods
// of the namespace that match selector, with the data of the Secret whose
// password key the pod's first container reads, until ctx ends. A Secret
// that is gone counts as a failed login too.
func Run(ctx context.Context, kube kubernetes.Interface, ns string, selector labels.Set, interval time.Duration, login Login) Result {
	f := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(ns))
	pods, secrets := f.Core().V1().Pods().Lister(), f.Core().V1().Secrets().Lister()
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	defer f.Shutdown()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var r Result
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return r
		case <-tick.C:
		}
		list, err := pods.List(labels.SelectorFromSet(selector))
		if err != nil {
			continue
		}
		var running []*corev1.Pod
		for _, p := range list {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running = append(running, p)
			}
		}
		if len(running) == 0 {
			continue
		}
		pod := running[i%len(running)]
		r.Attempts++
		sec, err := secrets.Secrets(ns).Get(SecretOf(pod))
		if err != nil {
			r.Failures++
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = login(lctx, sec.Data)
		cancel()
		if err != nil && ctx.Err() == nil {
			r.Failures++
		}
	}
}

// SecretOf is the Secret whose password key the pod's first container
// reads from the environment.
func SecretOf(p *corev1.Pod) string {
	for _, e := range p.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Key == "password" {
			return e.ValueFrom.SecretKeyRef.Name
		}
	}
	return ""
}
