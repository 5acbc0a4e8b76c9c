package e2e

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"rotator/activities"
	"rotator/workflows"
)

// The shapes of workload a production namespace has beside Deployments,
// each reading the Secret in the ways mutate gives.

func cronJob(name string, mutate func(*corev1.PodSpec)) *batchv1.CronJob {
	spec := podSpec(mutate)
	spec.RestartPolicy = corev1.RestartPolicyOnFailure
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: spec}}}},
	}
}

// job is a Job no CronJob owns; kwok runs its pod and never ends it, so it
// stays active as a long migration does.
func job(name string, mutate func(*corev1.PodSpec)) *batchv1.Job {
	spec := podSpec(mutate)
	spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: spec}}}
}

func pod(name string, mutate func(*corev1.PodSpec)) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: podSpec(mutate)}
}

// replicaSet is a ReplicaSet that no Deployment owns.
func replicaSet(name string, replicas int32, mutate func(*corev1.PodSpec)) *appsv1.ReplicaSet {
	sel := map[string]string{"rs": name}
	return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel}, Spec: podSpec(mutate)}}}
}

func statefulSet(name string, replicas int32, mutate func(*corev1.PodSpec)) *appsv1.StatefulSet {
	sel := map[string]string{"sts": name}
	return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.StatefulSetSpec{Replicas: &replicas, ServiceName: name, Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel}, Spec: podSpec(mutate)}}}
}

func daemonSet(name string, mutate func(*corev1.PodSpec)) *appsv1.DaemonSet {
	sel := map[string]string{"ds": name}
	return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel}, Spec: podSpec(mutate)}}}
}

// withReadyDelay has the devstack's kwok report the template's pods Ready
// only that long after they start, as a readiness probe that waits for a
// slow start does.
func withReadyDelay(t *corev1.PodTemplateSpec, d time.Duration) {
	if t.Annotations == nil {
		t.Annotations = map[string]string{}
	}
	t.Annotations["pod-ready.stage.kwok.x-k8s.io/delay"] = d.String()
}

// envKeys reads the given keys of the Secret as env vars.
func envKeys(secret string, keys ...string) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		for _, k := range keys {
			s.Containers[0].Env = append(s.Containers[0].Env, corev1.EnvVar{Name: strings.ToUpper(strings.ReplaceAll(k, "-", "_")),
				ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: k}}})
		}
	}
}

// create makes the objects in the fixture's namespace.
func (f *fixture) create(ctx context.Context, objs ...any) {
	f.t.Helper()
	k := devstack.kube
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *batchv1.CronJob:
			_, err = k.BatchV1().CronJobs(f.ns).Create(ctx, o, metav1.CreateOptions{})
		case *batchv1.Job:
			_, err = k.BatchV1().Jobs(f.ns).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Pod:
			_, err = k.CoreV1().Pods(f.ns).Create(ctx, o, metav1.CreateOptions{})
		case *appsv1.ReplicaSet:
			_, err = k.AppsV1().ReplicaSets(f.ns).Create(ctx, o, metav1.CreateOptions{})
		case *appsv1.StatefulSet:
			_, err = k.AppsV1().StatefulSets(f.ns).Create(ctx, o, metav1.CreateOptions{})
		case *appsv1.DaemonSet:
			_, err = k.AppsV1().DaemonSets(f.ns).Create(ctx, o, metav1.CreateOptions{})
		case *appsv1.Deployment:
			_, err = k.AppsV1().Deployments(f.ns).Create(ctx, o, metav1.CreateOptions{})
		default:
			f.t.Fatalf("create: unexpected %T", o)
		}
		if err != nil {
			f.t.Fatal(err)
		}
	}
}

// rolledOut waits with kubectl until the workload has rolled out.
func (f *fixture) rolledOut(ctx context.Context, workload string, timeout time.Duration) {
	f.t.Helper()
	out, err := exec.CommandContext(ctx, os.Getenv("KUBECTL"), "-n", f.ns, "rollout", "status", workload, "--timeout="+timeout.String()).CombinedOutput()
	if err != nil {
		f.t.Fatalf("rollout of %s: %v: %s", workload, err, out)
	}
}

// waitStatus polls the status query until ok says it is what the test
// waits for, and returns it.
func (f *fixture) waitStatus(ctx context.Context, what string, ok func(workflows.Status) bool) workflows.Status {
	f.t.Helper()
	var st workflows.Status
	for {
		if got, err := queryStatus(ctx, workflows.WorkflowID(f.target)); err == nil {
			if st = got; ok(st) {
				return st
			}
		}
		if slices.Contains([]workflows.Step{workflows.StepDone, workflows.StepRolledBack, workflows.StepFailed}, st.Step) {
			f.t.Fatalf("waiting for %s: the rotation ended in step %s: %s", what, st.Step, st.Error)
		}
		select {
		case <-ctx.Done():
			f.t.Fatalf("waiting for %s: %v; last status: step %s, error %q", what, ctx.Err(), st.Step, st.Error)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// secretNames lists the namespace's Secrets, sorted.
func (f *fixture) secretNames(ctx context.Context) []string {
	f.t.Helper()
	list, err := devstack.kube.CoreV1().Secrets(f.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, s := range list.Items {
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return out
}

// stage returns the rotator.dev/stage label of a Secret version.
func (f *fixture) stage(ctx context.Context, name string) string {
	f.t.Helper()
	s, err := devstack.kube.CoreV1().Secrets(f.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatalf("Secret %s: %v", name, err)
	}
	return s.Labels[activities.LabelStage]
}

// rotate starts a rotation with the CLI.
func (f *fixture) rotate(ctx context.Context, args ...string) {
	f.t.Helper()
	if out, err := f.starter(ctx, append([]string{"rotate", f.target, "--by", "e2e"}, args...)...); err != nil {
		f.t.Fatalf("rotate: %v\n%s", err, out)
	}
}

// approve runs starter approve with the args.
func (f *fixture) approve(ctx context.Context, args ...string) {
	f.t.Helper()
	if out, err := f.starter(ctx, append([]string{"approve", f.target, "--by", "e2e", "--reason", "e2e"}, args...)...); err != nil {
		f.t.Fatalf("approve %v: %v\n%s", args, err, out)
	}
}

// result waits for the rotation to end and returns its error.
func (f *fixture) result(ctx context.Context) error {
	f.t.Helper()
	return devstack.temporal.GetWorkflow(ctx, workflows.WorkflowID(f.target), "").Get(ctx, nil)
}

// has reports whether every string in want is in got.
func has(got []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// assertEach fails for each fragment the text lacks.
func assertEach(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s does not say %q:\n%s", what, w, text)
		}
	}
}
