package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"rotator/activities"
	"rotator/catalog"
	"rotator/workflows"
)

// fixture is one test's namespace with a Secret and its consumers, a catalog
// naming it, and a worker on a task queue of its own.
type fixture struct {
	t         *testing.T
	ns        string
	target    string
	secret    string
	catalog   string
	taskQueue string
	// deps are the clients the fixture's worker was given, kept so that a
	// test can stop the worker and start another like it.
	deps   activities.Deps
	worker worker.Worker
}

// fixtureSpec says what a fixture's Secret holds and how its target reads.
type fixtureSpec struct {
	// secretData is the Secret's first version.
	secretData map[string]string
	// secretType is its type (default Opaque).
	secretType corev1.SecretType
	// targetYAML is the target's lines after name, namespace and secret;
	// %NS% stands for the fixture's namespace.
	targetYAML string
	// prepare runs after the namespace exists, before the consumers.
	prepare func(t *testing.T, ctx context.Context, ns string)
	// deps, when set, changes the clients the fixture's worker gets (a
	// fault-injecting kube client, a Vault client behind a proxy); the
	// defaults are the devstack's.
	deps func(t *testing.T, ctx context.Context, ns string, d *activities.Deps)
}

// newFixture makes a jwt target; catalogExtra adds lines to it.
func newFixture(t *testing.T, ctx context.Context, catalogExtra string, deployments ...*appsv1.Deployment) *fixture {
	t.Helper()
	return newFixtureWith(t, ctx, jwtSpec(catalogExtra, nil), deployments...)
}

// jwtSpec is a jwt target with a random first key; catalogExtra adds lines
// to it and deps, when set, changes the worker's clients.
func jwtSpec(catalogExtra string, deps func(t *testing.T, ctx context.Context, ns string, d *activities.Deps)) fixtureSpec {
	return fixtureSpec{
		secretData: map[string]string{"secret": "initial-" + randomSuffix() + randomSuffix()},
		targetYAML: "    kind: jwt\n    key: secret\n" + catalogExtra,
		deps:       deps,
	}
}

// newFixtureWith creates the namespace, the Secret, the Deployments, waits
// for their first rollout, writes the catalog and starts a worker.
func newFixtureWith(t *testing.T, ctx context.Context, spec fixtureSpec, deployments ...*appsv1.Deployment) *fixture {
	t.Helper()
	suffix := randomSuffix()
	f := &fixture{t: t, ns: "e2e-" + suffix, target: "e2e-" + suffix, secret: "app-jwt", taskQueue: "e2e-" + suffix}
	k := devstack.kube
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			_ = k.CoreV1().Namespaces().Delete(context.Background(), f.ns, metav1.DeleteOptions{})
		}
	})
	if _, err := k.CoreV1().Secrets(f.ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: f.secret},
		Type:       spec.secretType,
		StringData: spec.secretData,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if spec.prepare != nil {
		spec.prepare(t, ctx, f.ns)
	}
	for _, d := range deployments {
		if _, err := k.AppsV1().Deployments(f.ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range deployments {
		f.waitRolledOut(ctx, d.Name)
	}

	cat := fmt.Sprintf("targets:\n  - name: %s\n    namespace: %s\n    secret: %s\n%s",
		f.target, f.ns, f.secret, strings.ReplaceAll(spec.targetYAML, "%NS%", f.ns))
	f.catalog = filepath.Join(t.TempDir(), "rotator.yaml")
	if err := os.WriteFile(f.catalog, []byte(cat), 0o600); err != nil {
		t.Fatal(err)
	}
	parsed, err := catalog.Load(f.catalog)
	if err != nil {
		t.Fatal(err)
	}
	f.deps = activities.Deps{Kube: k, Catalog: parsed, Vault: devstack.vault, HeartbeatEvery: time.Second, Temporal: devstack.temporal}
	if spec.deps != nil {
		spec.deps(t, ctx, f.ns, &f.deps)
	}
	f.startWorker()
	return f
}

// startWorker starts a worker on the fixture's task queue with its clients;
// the test's cleanup stops it.
func (f *fixture) startWorker() {
	f.t.Helper()
	w := worker.New(devstack.temporal, f.taskQueue, worker.Options{})
	workflows.Register(w)
	activities.Register(w, f.deps)
	if err := w.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.worker = w
	f.t.Cleanup(w.Stop)
}

// deployment returns a Deployment whose pods read the Secret in the ways
// given by mutate; the pods land on the devstack's kwok nodes.
func deployment(name string, replicas int32, mutate func(*corev1.PodSpec)) *appsv1.Deployment {
	spec := podSpec(mutate)
	sel := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel}, Spec: spec},
		},
	}
}

// podSpec is a pod that lands on the devstack's kwok nodes and reads the
// Secret in the ways mutate gives.
func podSpec(mutate func(*corev1.PodSpec)) corev1.PodSpec {
	spec := corev1.PodSpec{
		Containers:   []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
		NodeSelector: map[string]string{"type": "kwok"},
		Tolerations:  []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
	}
	mutate(&spec)
	return spec
}

func envRef(secret string) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Containers[0].Env = []corev1.EnvVar{{Name: "JWT_SECRET", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "secret"}}}}
	}
}

func envFromAndVolume(secret string) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}
		s.Volumes = []corev1.Volume{
			{Name: "jwt", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}},
			{Name: "bundle", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}}}},
		}
		s.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "jwt", MountPath: "/etc/jwt"}, {Name: "bundle", MountPath: "/etc/bundle"}}
	}
}

// waitRolledOut blocks until the Deployment's current generation is rolled out.
func (f *fixture) waitRolledOut(ctx context.Context, name string) {
	f.t.Helper()
	// kubectl, not rotator's own code, judges the rollout.
	out, err := exec.CommandContext(ctx, os.Getenv("KUBECTL"), "-n", f.ns, "rollout", "status", "deployment/"+name, "--timeout=3m").CombinedOutput()
	if err != nil {
		f.t.Fatalf("rollout of %s: %v: %s", name, err, out)
	}
}

// replicaSets counts the ReplicaSets a Deployment owns: one per rollout.
func (f *fixture) replicaSets(ctx context.Context, name string) int {
	f.t.Helper()
	list, err := devstack.kube.AppsV1().ReplicaSets(f.ns).List(ctx, metav1.ListOptions{LabelSelector: labels.Set{"app": name}.String()})
	if err != nil {
		f.t.Fatal(err)
	}
	return len(list.Items)
}

func (f *fixture) deploymentSpec(ctx context.Context, name string) *corev1.PodSpec {
	f.t.Helper()
	d, err := devstack.kube.AppsV1().Deployments(f.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return &d.Spec.Template.Spec
}

func (f *fixture) secretData(ctx context.Context, name string) (map[string][]byte, bool) {
	f.t.Helper()
	s, err := devstack.kube.CoreV1().Secrets(f.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, false
	}
	return s.Data, true
}

func (f *fixture) starter(ctx context.Context, args ...string) (string, error) {
	return devstack.runStarter(ctx, f.catalog, f.taskQueue, args...)
}
