package activities

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"
)

// use is one object of a namespace and the Secrets it names: a pod
// template (or a pod's spec) in env, envFrom, volumes and projected
// volumes, or an Ingress in tls[].secretName. It holds what the steps need
// of the object, never the object: a namespace's scan stays small however
// many pods it has.
type use struct {
	ref Workload
	// controller is the owner with controller: true, if any; for a pod of
	// a ReplicaSet that a Deployment owns, the Deployment.
	controller *Workload
	// live says the object can still start containers that read the
	// Secret: not a finished Job, nor a pod that ended or is terminating.
	live bool
	// movable says rotator repoints it: Deployments, StatefulSets,
	// DaemonSets and CronJobs (their job template) and Ingresses.
	movable bool
	// history marks a ReplicaSet or ReplicationController that a
	// controller owns: its template is that controller's past, not a user.
	history         bool
	resourceVersion string
	annotated       bool
	// blocker says why a movable workload would never roll out a new
	// template (OnDelete, paused, partitioned); empty when it would.
	blocker string
	// progressDeadline is a Deployment's progressDeadlineSeconds.
	progressDeadline int32
	managers         []manager
	secrets          map[string]secretUse
}

// secretUse is where an object names one Secret.
type secretUse struct {
	// paths are JSON pointers relative to the pod spec (see
	// secretRefPaths), or to the Ingress for an Ingress.
	paths []string
	// keys are the data keys it reads by name and does not mark optional.
	keys []keyRef
}

// namespaceScan is every object of a namespace that names a Secret, and
// every workload rotator can repoint.
type namespaceScan struct {
	uses []use
}

// scanNamespace lists, a page at a time and all kinds at once, every kind
// of object that can use a Secret.
func scanNamespace(ctx context.Context, client kubernetes.Interface, ns string) (*namespaceScan, error) {
	type lister struct {
		kind string
		list func(metav1.ListOptions) (runtime.Object, error)
	}
	listers := []lister{
		{"deployments", func(o metav1.ListOptions) (runtime.Object, error) {
			return client.AppsV1().Deployments(ns).List(ctx, o)
		}},
		{"statefulsets", func(o metav1.ListOptions) (runtime.Object, error) {
			return client.AppsV1().StatefulSets(ns).List(ctx, o)
		}},
		{"daemonsets", func(o metav1.ListOptions) (runtime.Object, error) { return client.AppsV1().DaemonSets(ns).List(ctx, o) }},
		{"replicasets", func(o metav1.ListOptions) (runtime.Object, error) {
			return client.AppsV1().ReplicaSets(ns).List(ctx, o)
		}},
		{"cronjobs", func(o metav1.ListOptions) (runtime.Object, error) { return client.BatchV1().CronJobs(ns).List(ctx, o) }},
		{"jobs", func(o metav1.ListOptions) (runtime.Object, error) { return client.BatchV1().Jobs(ns).List(ctx, o) }},
		{"pods", func(o metav1.ListOptions) (runtime.Object, error) { return client.CoreV1().Pods(ns).List(ctx, o) }},
		{"replicationcontrollers", func(o metav1.ListOptions) (runtime.Object, error) {
			return client.CoreV1().ReplicationControllers(ns).List(ctx, o)
		}},
		{"ingresses", func(o metav1.ListOptions) (runtime.Object, error) {
			return client.NetworkingV1().Ingresses(ns).List(ctx, o)
		}},
	}
	found := make([][]use, len(listers))
	errs := make([]error, len(listers))
	var wg sync.WaitGroup
	for i, l := range listers {
		wg.Go(func() {
			// Small pages, one buffered: nine kinds are listed at once,
			// and only the index of each object outlives its page.
			p := pager.New(pager.SimplePageFunc(l.list))
			p.PageSize, p.PageBufferSize = scanPageSize, 1
			errs[i] = p.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
				if u, ok := useOf(obj); ok {
					found[i] = append(found[i], u)
				}
				return nil
			})
		})
	}
	wg.Wait()
	s := &namespaceScan{}
	for i, l := range listers {
		if errs[i] != nil {
			return nil, fmt.Errorf("list %s in %s: %w", l.kind, ns, errs[i])
		}
		s.uses = append(s.uses, found[i]...)
	}
	s.resolveControllers()
	return s, nil
}

// useOf extracts what a rotation needs of one listed object. Objects that
// name no Secret are left out, except workloads rotator can repoint,
// which consumers in the catalog are checked against.
func useOf(obj runtime.Object) (use, bool) {
	var u use
	var spec *corev1.PodSpec
	var meta metav1.Object
	switch o := obj.(type) {
	case *appsv1.Deployment, *appsv1.StatefulSet, *appsv1.DaemonSet, *batchv1.CronJob:
		w := asWorkload(o)
		u = use{ref: w.ref, live: true, movable: true, blocker: w.blocker(), progressDeadline: w.progressDeadline()}
		spec, meta = &w.template.Spec, w.meta
	case *appsv1.ReplicaSet:
		u = use{ref: Workload{Kind: "ReplicaSet", Name: o.Name}, live: true}
		spec, meta = &o.Spec.Template.Spec, o
	case *corev1.ReplicationController:
		u = use{ref: Workload{Kind: "ReplicationController", Name: o.Name}, live: true}
		if o.Spec.Template != nil {
			spec = &o.Spec.Template.Spec
		}
		meta = o
	case *batchv1.Job:
		u = use{ref: Workload{Kind: "Job", Name: o.Name}, live: !jobFinished(o)}
		spec, meta = &o.Spec.Template.Spec, o
	case *corev1.Pod:
		u = use{ref: Workload{Kind: "Pod", Name: o.Name},
			live: o.DeletionTimestamp == nil && o.Status.Phase != corev1.PodSucceeded && o.Status.Phase != corev1.PodFailed}
		spec, meta = &o.Spec, o
	case *networkingv1.Ingress:
		u = use{ref: Workload{Kind: "Ingress", Name: o.Name}, live: true, movable: true, secrets: map[string]secretUse{}}
		for i, t := range o.Spec.TLS {
			if t.SecretName != "" {
				su := u.secrets[t.SecretName]
				su.paths = append(su.paths, fmt.Sprintf("/spec/tls/%d/secretName", i))
				u.secrets[t.SecretName] = su
			}
		}
		meta = o
	default:
		return use{}, false
	}
	u.resourceVersion = meta.GetResourceVersion()
	u.annotated = meta.GetAnnotations() != nil
	if c := metav1.GetControllerOf(meta); c != nil {
		u.controller = &Workload{Kind: c.Kind, Name: c.Name}
	}
	if u.ref.Kind == "ReplicaSet" || u.ref.Kind == "ReplicationController" {
		u.history = u.controller != nil
	}
	if spec != nil {
		u.secrets = podSpecSecrets(spec)
	}
	if len(u.secrets) == 0 && !u.movable {
		return use{}, false
	}
	if u.movable {
		u.managers = managersOf(meta)
	}
	return u, true
}

// podSpecSecrets maps every Secret a pod spec names to where and which
// keys it reads.
func podSpecSecrets(spec *corev1.PodSpec) map[string]secretUse {
	out := map[string]secretUse{}
	for _, name := range secretNames(spec) {
		out[name] = secretUse{paths: secretRefPaths(spec, name), keys: keyRefs(spec, name)}
	}
	return out
}

// jobFinished says a Job completed or failed for good: its pods need no
// Secret any more.
func jobFinished(j *batchv1.Job) bool {
	return slices.ContainsFunc(j.Status.Conditions, func(c batchv1.JobCondition) bool {
		return (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue
	})
}

// resolveControllers makes a pod of a ReplicaSet (or ReplicationController)
// that a controller owns the pod of that controller, so a Deployment's
// pods are seen as the Deployment's.
func (s *namespaceScan) resolveControllers() {
	owners := map[Workload]Workload{}
	for _, u := range s.uses {
		if u.history {
			owners[u.ref] = *u.controller
		}
	}
	for i := range s.uses {
		if c := s.uses[i].controller; c != nil && s.uses[i].ref.Kind == "Pod" {
			if top, ok := owners[*c]; ok {
				s.uses[i].controller = &top
			}
		}
	}
}

// find returns the movable workload or Ingress of that kind and name.
func (s *namespaceScan) find(ref Workload) (use, bool) {
	i := slices.IndexFunc(s.uses, func(u use) bool { return u.movable && u.ref == ref })
	if i < 0 {
		return use{}, false
	}
	return s.uses[i], true
}

// users returns every live object that needs the Secret, sorted: the
// workloads and Ingresses that name it, Jobs that still run, ReplicaSets
// and ReplicationControllers no controller owns, and pods whose controller
// is not among them (bare pods, pods still on an old template). A pod of a
// listed workload is left out: the workload stands for it.
func (s *namespaceScan) users(secret string) []use {
	var out []use
	for _, u := range s.uses {
		if _, ok := u.secrets[secret]; ok && u.live && !u.history {
			out = append(out, u)
		}
	}
	out = slices.DeleteFunc(out, func(u use) bool {
		return u.ref.Kind == "Pod" && u.controller != nil &&
			slices.ContainsFunc(out, func(o use) bool { return o.ref == *u.controller })
	})
	slices.SortFunc(out, func(a, b use) int { return strings.Compare(a.ref.String(), b.ref.String()) })
	return out
}

func refsOf(us []use) []Workload {
	out := make([]Workload, len(us))
	for i, u := range us {
		out[i] = u.ref
	}
	return out
}

// holder is a user as status and errors show it, with why rotator does
// not repoint it.
func (u use) holder() Holder {
	h := Holder{Workload: u.ref}
	switch {
	case u.movable:
	case u.ref.Kind == "Pod" && u.controller == nil:
		h.Why = "a bare pod"
	case u.ref.Kind == "Pod":
		h.Why = "of " + u.controller.String() + ", on a template that no longer names it"
	case u.ref.Kind == "Job":
		h.Why = "a running Job, whose template cannot change"
	default:
		h.Why = "no controller owns it"
	}
	return h
}

func holders(us []use) []Holder {
	out := make([]Holder, len(us))
	for i, u := range us {
		out[i] = u.holder()
	}
	return out
}

func holderNames(hs []Holder) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}

// scanPageSize is how many objects a scan's list requests return at a
// time: at N=1000 concurrent rotations in one namespace (make bench),
// pages of 500 kept up to 4,500 decoded objects in the worker's heap.
const scanPageSize = 100

// scanTimeout bounds one scan, which callers share and none can cancel.
const scanTimeout = 2 * time.Minute

// scanner shares namespace scans between the activities that run at once
// in one worker. A caller takes the result of a scan that starts after it
// asked, which is as fresh as one of its own: while one scan of a
// namespace runs, every caller that arrives waits for the next one, which
// starts when it ends. A hundred rotations in one namespace then cost a
// few scans, not a hundred.
type scanner struct {
	mu sync.Mutex
	// next is, per namespace, the scan callers may still join; running
	// is the one that is listing.
	next, running map[string]*sharedScan
}

type sharedScan struct {
	done chan struct{}
	res  *namespaceScan
	err  error
}

func newScanner() *scanner {
	return &scanner{next: map[string]*sharedScan{}, running: map[string]*sharedScan{}}
}

func (s *scanner) scan(ctx context.Context, client kubernetes.Interface, ns string) (*namespaceScan, error) {
	s.mu.Lock()
	sc := s.next[ns]
	if sc == nil {
		sc = &sharedScan{done: make(chan struct{})}
		s.next[ns] = sc
		go s.run(client, ns, sc)
	}
	s.mu.Unlock()
	select {
	case <-sc.done:
		return sc.res, sc.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *scanner) run(client kubernetes.Interface, ns string, sc *sharedScan) {
	s.mu.Lock()
	prev := s.running[ns]
	s.mu.Unlock()
	if prev != nil {
		<-prev.done
	}
	s.mu.Lock()
	delete(s.next, ns)
	s.running[ns] = sc
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), scanTimeout)
	sc.res, sc.err = scanNamespace(ctx, client, ns)
	cancel()
	s.mu.Lock()
	delete(s.running, ns)
	s.mu.Unlock()
	close(sc.done)
}

// scan is the namespace's scan, shared with the worker's other activities
// when the Kube was registered with a scanner.
func (k *Kube) scan(ctx context.Context, ns string) (*namespaceScan, error) {
	if k.scans == nil {
		return scanNamespace(ctx, k.Client, ns)
	}
	return k.scans.scan(ctx, k.Client, ns)
}
