package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	watchtools "k8s.io/client-go/tools/watch"

	vaultapi "github.com/hashicorp/vault/api"

	"rotator/catalog"
	"rotator/postgres"
	"rotator/vault"
)

// Kube holds the Kubernetes client and the catalog; its methods are the
// steps of a rotation that touch the cluster.
type Kube struct {
	Client  kubernetes.Interface
	Catalog *catalog.Catalog
	// Vault records versions for targets with a Vault path and holds keys
	// staged there; nil when no target uses Vault.
	Vault *vaultapi.Client
	// HeartbeatEvery is how often a rollout wait reports progress; zero
	// means 10 s.
	HeartbeatEvery time.Duration
}

func (k *Kube) workloads() workloads { return workloads{client: k.Client} }

// badInput is a permanent error: retrying cannot fix the input.
func badInput(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrBadInput, nil)
}

// Preflight checks the target and the cluster and returns the plan. It
// changes nothing, so any bad input fails here before a change is made.
func (k *Kube) Preflight(ctx context.Context, in PreflightInput) (Plan, error) {
	if in.Target == "" {
		return Plan{}, badInput(`target: is required: start the rotation with {"target": "<name from rotator.yaml>"}`)
	}
	t, err := k.Catalog.Target(in.Target)
	if err != nil {
		return Plan{}, badInput("target: %v", err)
	}
	if in.Kind != "" && in.Kind != t.Kind {
		return Plan{}, badInput("target %s is of kind %s, not %s: start the workflow for kind %s", t.Name, t.Kind, in.Kind, t.Kind)
	}
	// The consumers are read while the Secret is looked up: neither
	// needs the other, and each waits on the apiserver.
	var found []workload
	var foundErr error
	fetched := make(chan struct{})
	go func() {
		defer close(fetched)
		found, foundErr = k.fetchConsumers(ctx, t)
	}()
	current, next, err := k.versions(ctx, t, activity.GetInfo(ctx).WorkflowExecution.RunID)
	<-fetched
	if err != nil {
		return Plan{}, err
	}
	if foundErr != nil {
		return Plan{}, foundErr
	}
	var ings []string
	if t.Kind == catalog.KindTLS {
		if k.Vault == nil {
			return Plan{}, badInput("target %s: tls: the worker has no Vault connection to issue certificates: set VAULT_ADDR and a token (or vault.auth in rotator.yaml) and restart it", t.Name)
		}
		served, err := (ingresses{k.Client}).serving(ctx, t.Namespace, current.Name)
		if err != nil {
			return Plan{}, err
		}
		ings = served[current.Name]
	}
	consumers, seen, err := consumersOf(t, found, current.Name, len(ings) > 0)
	if err != nil {
		return Plan{}, err
	}
	plan := Plan{
		Target:      t.Name,
		Kind:        t.Kind,
		Namespace:   t.Namespace,
		Base:        t.Secret,
		Key:         t.Key,
		Current:     current,
		NextVersion: next,
		Consumers:   consumers,
		Ingresses:   ings,
		Grace:       t.Grace.Duration,
		Seen:        seen,
	}
	if c := t.TLS; c != nil {
		plan.TLS = &TLSPlan{Mount: c.Mount, Role: c.Role, CommonName: c.CommonName, DNSNames: c.DNSNames, IPs: c.IPs, TTL: c.TTL.Duration}
		if c.Handshake != nil {
			plan.TLS.Handshake, plan.TLS.ServerName = c.Handshake.Address, c.Handshake.ServerName
		}
	}
	if t.JWT != nil {
		plan.JWTBytes, plan.DualKey = t.JWT.Bytes, t.JWT.DualKey
	}
	if t.Vault != nil {
		if k.Vault == nil {
			return Plan{}, badInput("target %s: vault: the worker has no Vault connection: set VAULT_ADDR and a token (or vault.auth in rotator.yaml) and restart it", t.Name)
		}
		// A KV version 1 mount would take the writes silently under
		// data/, so the mount is checked before anything is written.
		if err := vault.NewStore(k.Vault, t.Vault.Mount).CheckMount(ctx); err != nil {
			return Plan{}, vaultError(fmt.Errorf("target %s: vault.mount: %w", t.Name, err))
		}
		plan.Vault = &VaultPlan{Mount: t.Vault.Mount, Path: t.Vault.Path}
	}
	activity.GetLogger(ctx).Info("preflight passed", "target", t.Name, "current", current.Name,
		"next_version", next, "consumers", len(consumers))
	return plan, nil
}

// versions finds the current version of the target's Secret and the next
// free version number. A Secret never managed before is the base name,
// adopted as version 1. A version this run already staged is the next
// one again: preflight and stage run as local activities in one workflow
// task, and a worker that dies before that task completes leaves the
// staged Secret behind for the next worker to run both again.
func (k *Kube) versions(ctx context.Context, t catalog.Target, run string) (SecretRef, int, error) {
	secrets := k.Client.CoreV1().Secrets(t.Namespace)
	list, err := secrets.List(ctx, metav1.ListOptions{LabelSelector: labels.Set{LabelTarget: t.Name}.String()})
	if err != nil {
		return SecretRef{}, 0, classify(fmt.Errorf("list Secrets of %s: %w", t.Name, err))
	}
	maxVersion, own := 0, 0
	var current []corev1.Secret
	for _, s := range list.Items {
		v, _ := strconv.Atoi(s.Labels[LabelVersion])
		maxVersion = max(maxVersion, v)
		switch {
		case s.Labels[LabelStage] == StageCurrent:
			current = append(current, s)
		case s.Labels[LabelStage] == StagePending && run != "" && s.Annotations[AnnotationRunID] == run:
			own = v
		}
	}
	var cur *corev1.Secret
	switch len(current) {
	case 0:
		base, err := secrets.Get(ctx, t.Secret, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			// The namespace is not read on its own: that would need a
			// cluster-wide permission, and a missing namespace shows here.
			return SecretRef{}, 0, badInput("target %s: secret: Secret %s/%s does not exist: create it, or fix secret or namespace in rotator.yaml",
				t.Name, t.Namespace, t.Secret)
		}
		if err != nil {
			return SecretRef{}, 0, classify(fmt.Errorf("get Secret %s: %w", t.Secret, err))
		}
		cur = base
		maxVersion = max(maxVersion, 1)
	case 1:
		cur = &current[0]
	default:
		names := make([]string, 0, len(current))
		for _, s := range current {
			names = append(names, s.Name)
		}
		sort.Strings(names)
		return SecretRef{}, 0, badInput("target %s: Secrets %s are all labelled %s=%s: keep the one the consumers use and relabel the others %s",
			t.Name, strings.Join(names, ", "), LabelStage, StageCurrent, StagePrevious)
	}
	if _, ok := cur.Data[t.Key]; !ok {
		return SecretRef{}, 0, badInput("target %s: key: Secret %s has no data key %q: fix key in rotator.yaml", t.Name, cur.Name, t.Key)
	}
	if own > 0 {
		return refOf(cur, t.Key), own, nil
	}
	return refOf(cur, t.Key), maxVersion + 1, nil
}

// fetchConsumers reads the catalog's consumers, each checked to exist, or
// else every consumer-kind workload in the target's namespace.
func (k *Kube) fetchConsumers(ctx context.Context, t catalog.Target) ([]workload, error) {
	wl := k.workloads()
	if len(t.Consumers) == 0 {
		all, err := wl.list(ctx, t.Namespace)
		if err != nil {
			return nil, classify(err)
		}
		return all, nil
	}
	out := make([]workload, 0, len(t.Consumers))
	for i, c := range t.Consumers {
		ref := Workload{Kind: c.Kind, Name: c.Name}
		w, err := wl.get(ctx, t.Namespace, ref)
		if apierrors.IsNotFound(err) {
			return nil, badInput("target %s: consumers[%d]: %s does not exist in namespace %s: fix or remove it in rotator.yaml",
				t.Name, i, ref, t.Namespace)
		}
		if err != nil {
			return nil, classify(fmt.Errorf("get %s: %w", ref, err))
		}
		out = append(out, w)
	}
	return out, nil
}

// consumersOf returns the catalog's consumers, each checked to reference
// the Secret, or else every workload found that references it; and what
// promote needs of each, read here once.
func consumersOf(t catalog.Target, found []workload, secret string, servedByIngress bool) ([]Workload, []Seen, error) {
	var refs []Workload
	var seen []Seen
	for i, w := range found {
		if len(secretRefPaths(&w.template.Spec, secret)) == 0 {
			if len(t.Consumers) > 0 {
				return nil, nil, badInput("target %s: consumers[%d]: %s does not reference Secret %s: fix or remove it in rotator.yaml",
					t.Name, i, w.ref, secret)
			}
			continue
		}
		refs = append(refs, w.ref)
		seen = append(seen, w.seen(secret))
	}
	if len(refs) == 0 && !servedByIngress {
		return nil, nil, badInput("target %s: no Deployment, StatefulSet or DaemonSet in namespace %s references Secret %s: check namespace and secret in rotator.yaml",
			t.Name, t.Namespace, secret)
	}
	return refs, seen, nil
}

// StageSecret generates the new material and stores it in an immutable
// Secret <base>-<n>. Run twice by the same workflow run, it finds the
// Secret it created and returns the same reference.
func (k *Kube) StageSecret(ctx context.Context, in StageInput) (SecretRef, error) {
	p := in.Plan
	secrets := k.Client.CoreV1().Secrets(p.Namespace)
	info := activity.GetInfo(ctx)
	run := info.WorkflowExecution.RunID
	name := fmt.Sprintf("%s-%d", p.Base, p.NextVersion)

	// A first attempt goes straight to the create: should the name be
	// taken (a local activity run again after its worker died counts its
	// attempts afresh), the create fails with AlreadyExists and ownStaged
	// looks whose it is.
	if info.Attempt > 1 {
		if ref, ok, err := k.ownStaged(ctx, p, name, run); err != nil || ok {
			return ref, err
		}
	}

	data, err := k.material(ctx, p)
	if err != nil {
		return SecretRef{}, err
	}
	annotations := map[string]string{AnnotationRunID: run}
	if p.Vault != nil {
		// Vault is written first: it is the record, and a retry of this
		// run gets the same material back from it rather than a new one.
		version, stored, err := k.record(ctx, p, run, data)
		if err != nil {
			return SecretRef{}, err
		}
		data = stored
		annotations[AnnotationVaultVersion] = strconv.Itoa(version)
	}
	value := data[p.Key]
	if p.DualKey && !in.Emergency {
		cur, err := secrets.Get(ctx, p.Current.Name, metav1.GetOptions{})
		if err != nil {
			return SecretRef{}, classify(fmt.Errorf("read current Secret %s for the dual key: %w", p.Current.Name, err))
		}
		data[PreviousKey] = cur.Data[p.Key]
	}
	annotations[AnnotationFingerprint] = Fingerprint(value)
	immutable := true
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: p.Namespace,
			Labels: map[string]string{
				LabelManagedBy: ManagedByValue,
				LabelTarget:    p.Target,
				LabelVersion:   strconv.Itoa(p.NextVersion),
				LabelStage:     StagePending,
			},
			Annotations: annotations,
		},
		Type:      secretType(p.Kind),
		Immutable: &immutable,
		Data:      data,
	}
	created, err := secrets.Create(ctx, s, metav1.CreateOptions{FieldManager: ManagedByValue})
	if apierrors.IsAlreadyExists(err) {
		// An earlier run of this step, or another writer: the run
		// annotation tells which.
		if ref, ok, err := k.ownStaged(ctx, p, name, run); err != nil || ok {
			return ref, err
		}
	}
	if err != nil {
		return SecretRef{}, classify(fmt.Errorf("create Secret %s: %w", name, err))
	}
	activity.GetLogger(ctx).Info("staged new Secret version", "secret", name,
		"fingerprint", created.Annotations[AnnotationFingerprint], "dual_key", p.DualKey && !in.Emergency,
		"vault_version", created.Annotations[AnnotationVaultVersion])
	if err := k.staging().discard(ctx, p); err != nil {
		return SecretRef{}, err
	}
	return refOf(created, p.Key), nil
}

// ownStaged returns the Secret name if this run staged it before; a
// Secret of that name from anyone else is a conflict for a person.
func (k *Kube) ownStaged(ctx context.Context, p Plan, name, run string) (SecretRef, bool, error) {
	existing, err := k.Client.CoreV1().Secrets(p.Namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return SecretRef{}, false, nil
	case err != nil:
		return SecretRef{}, false, classify(fmt.Errorf("get Secret %s: %w", name, err))
	case existing.Annotations[AnnotationRunID] != run:
		return SecretRef{}, false, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("Secret %s/%s already exists and was not staged by this rotation: delete it if it is a leftover, then start the rotation again", p.Namespace, name),
			ErrConflict, nil)
	}
	// A run again after the create: the staged keys may still be there.
	if err := k.staging().discard(ctx, p); err != nil {
		return SecretRef{}, false, err
	}
	return refOf(existing, p.Key), true, nil
}

// PromoteAndAwait is Promote followed by AwaitRollout, as one activity:
// a rotation without a Vault record has nothing to do between the two,
// so it spares a workflow task and an activity task through Temporal.
// A retry promotes again, which finds the consumers on the new version
// and only waits.
func (k *Kube) PromoteAndAwait(ctx context.Context, in PromoteInput) (PromoteResult, error) {
	res, err := k.Promote(ctx, in)
	if err != nil {
		return res, err
	}
	return res, k.AwaitRollout(ctx, AwaitInput{Namespace: in.Namespace, Rollouts: res.Rollouts})
}

// Promote repoints every reference in each consumer's pod template from one
// Secret to the other, one patch per workload, then relabels the two
// versions (To current, From previous). Workloads already on To are left
// alone, so a retry or a compensation that finds nothing to do is a no-op.
func (k *Kube) Promote(ctx context.Context, in PromoteInput) (PromoteResult, error) {
	wl := k.workloads()
	var res PromoteResult
	// What preflight saw is used on the first attempt only: after that the
	// workload may have been patched by the attempt before.
	var seen map[Workload]Seen
	if activity.GetInfo(ctx).Attempt <= 1 {
		seen = make(map[Workload]Seen, len(in.Seen))
		for _, s := range in.Seen {
			seen[s.Workload] = s
		}
	}
	for _, c := range in.Consumers {
		if s, ok := seen[c]; ok && len(s.Paths) > 0 {
			r, err := k.promoteSeen(ctx, in, s)
			if err == nil {
				res.Rollouts = append(res.Rollouts, r)
				continue
			}
			if !isTestFailed(err) && !apierrors.IsNotFound(err) {
				return res, classify(fmt.Errorf("repoint %s from %s to %s: %w", c, in.From.Name, in.To.Name, err))
			}
			// Changed or gone since preflight: read it and decide afresh.
		}
		w, err := wl.get(ctx, in.Namespace, c)
		if apierrors.IsNotFound(err) {
			return res, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s was deleted during the rotation: restore it or remove it from the target's consumers", c), ErrBadInput, err)
		}
		if err != nil {
			return res, classify(fmt.Errorf("get %s: %w", c, err))
		}
		patch, n, err := repointPatch("/spec/template", &w.template.Spec, w.meta.GetAnnotations(), in.From.Name, in.To.Name, in.Reason)
		if err != nil {
			return res, err
		}
		if n == 0 {
			if len(secretRefPaths(&w.template.Spec, in.To.Name)) == 0 {
				return res, temporal.NewNonRetryableApplicationError(
					fmt.Sprintf("%s references neither %s nor %s any more: someone edited it during the rotation", c, in.From.Name, in.To.Name),
					ErrConflict, nil)
			}
			res.Rollouts = append(res.Rollouts, Rollout{Workload: c, Generation: w.meta.GetGeneration(), From: in.From.Name, To: in.To.Name})
			continue
		}
		patched, err := wl.patch(ctx, in.Namespace, c, patch)
		if err != nil {
			// A failed test op (a concurrent edit) is an Invalid error;
			// the retry re-reads the workload and builds a fresh patch.
			return res, classify(fmt.Errorf("repoint %s from %s to %s: %w", c, in.From.Name, in.To.Name, err), isTestFailed)
		}
		activity.GetLogger(ctx).Info("repointed workload", "workload", c.String(), "from", in.From.Name,
			"to", in.To.Name, "references", n, "generation", patched.meta.GetGeneration())
		res.Rollouts = append(res.Rollouts, Rollout{Workload: c, Generation: patched.meta.GetGeneration(), Patched: true,
			ResourceVersion: patched.meta.GetResourceVersion(), From: in.From.Name, To: in.To.Name})
	}
	for _, name := range in.Ingresses {
		n, err := (ingresses{k.Client}).repoint(ctx, in.Namespace, name, in.From.Name, in.To.Name, in.Reason)
		if err != nil {
			return res, err
		}
		if n > 0 {
			activity.GetLogger(ctx).Info("repointed ingress", "ingress", name, "from", in.From.Name, "to", in.To.Name, "entries", n)
		}
	}
	if err := k.setStage(ctx, in.Namespace, in.To, StageCurrent, in.Target); err != nil {
		return res, err
	}
	if err := k.setStage(ctx, in.Namespace, in.From, StagePrevious, in.Target); err != nil {
		return res, err
	}
	return res, nil
}

// promoteSeen repoints a consumer with the patch built from what
// preflight saw of it; the patch fails as a failed test if the workload
// changed since.
func (k *Kube) promoteSeen(ctx context.Context, in PromoteInput, s Seen) (Rollout, error) {
	patch, err := seenPatch(s, in.From.Name, in.To.Name, in.Reason)
	if err != nil {
		return Rollout{}, err
	}
	patched, err := k.workloads().patch(ctx, in.Namespace, s.Workload, patch)
	if err != nil {
		return Rollout{}, err
	}
	activity.GetLogger(ctx).Info("repointed workload", "workload", s.Workload.String(), "from", in.From.Name,
		"to", in.To.Name, "references", len(s.Paths), "generation", patched.meta.GetGeneration())
	return Rollout{Workload: s.Workload, Generation: patched.meta.GetGeneration(), Patched: true,
		ResourceVersion: patched.meta.GetResourceVersion(), From: in.From.Name, To: in.To.Name}, nil
}

// setStage labels a Secret version with its stage. Given the target, it
// also writes the version labels, which adopts a Secret rotator did not
// create (the unversioned original becomes version 1) in the same patch.
func (k *Kube) setStage(ctx context.Context, ns string, ref SecretRef, stage, target string) error {
	meta := map[string]any{"labels": map[string]string{LabelStage: stage}}
	if target != "" {
		meta["labels"] = map[string]string{LabelStage: stage, LabelManagedBy: ManagedByValue, LabelTarget: target,
			LabelVersion: strconv.Itoa(ref.Version)}
		if ref.Fingerprint != "" {
			meta["annotations"] = map[string]string{AnnotationFingerprint: ref.Fingerprint}
		}
	}
	patch, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return fmt.Errorf("encode label patch: %w", err)
	}
	_, err = k.Client.CoreV1().Secrets(ns).Patch(ctx, ref.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: ManagedByValue})
	if err != nil && !apierrors.IsNotFound(err) {
		return classify(fmt.Errorf("label Secret %s %s=%s: %w", ref.Name, LabelStage, stage, err))
	}
	return nil
}

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

// VerifyConsumers proves the promotion took: every consumer's template
// references the new version and none the old. A workload created during
// the rotation that still references the old version is reported too.
// When the rollout wait already checked the consumers' templates
// (CheckedInRollout), they are not read again: the namespace-wide check
// for stale references is then left to retire, which runs it anyway
// before it deletes the old version.
func (k *Kube) VerifyConsumers(ctx context.Context, in VerifyInput) error {
	var current []Workload
	if !in.CheckedInRollout {
		all, err := k.workloads().list(ctx, in.Namespace)
		if err != nil {
			return classify(err)
		}
		var stale []Workload
		for _, w := range all {
			if len(secretRefPaths(&w.template.Spec, in.Old.Name)) > 0 {
				stale = append(stale, w.ref)
			}
			if len(secretRefPaths(&w.template.Spec, in.New.Name)) > 0 {
				current = append(current, w.ref)
			}
		}
		if len(stale) > 0 {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s still reference%s the old Secret %s: add %s to the target's consumers or repoint it",
					joinWorkloads(stale), plural(len(stale)), in.Old.Name, joinWorkloads(stale)), ErrStillInUse, nil)
		}
	}
	if len(in.Ingresses) > 0 {
		served, err := (ingresses{k.Client}).serving(ctx, in.Namespace, in.Old.Name, in.New.Name)
		if err != nil {
			return err
		}
		if stale := served[in.Old.Name]; len(stale) > 0 {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("ingress %s still serve%s the old Secret %s: repoint it", strings.Join(stale, ", "), plural(len(stale)), in.Old.Name), ErrStillInUse, nil)
		}
		for _, name := range in.Ingresses {
			if !slices.Contains(served[in.New.Name], name) {
				return temporal.NewNonRetryableApplicationError(fmt.Sprintf("ingress/%s does not serve the new Secret %s", name, in.New.Name), ErrConflict, nil)
			}
		}
	}
	if in.CheckedInRollout {
		return nil
	}
	for _, c := range in.Consumers {
		if !slices.Contains(current, c) {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s does not reference the new Secret %s", c, in.New.Name), ErrConflict, nil)
		}
	}
	return nil
}

// RetireSecret deletes a Secret version once no workload references it.
// Deleting one that is already gone succeeds, so retries are safe.
func (k *Kube) RetireSecret(ctx context.Context, in RetireInput) (RetireResult, error) {
	users, err := k.workloads().referencing(ctx, in.Secret.Namespace, in.Secret.Name)
	if err != nil {
		return RetireResult{}, classify(err)
	}
	if len(users) > 0 {
		return RetireResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("Secret %s is still referenced by %s: it was kept; repoint %s, then delete it by hand",
				in.Secret.Name, joinWorkloads(users), joinWorkloads(users)), ErrStillInUse, nil)
	}
	secrets := k.Client.CoreV1().Secrets(in.Secret.Namespace)
	if in.StagedByRun == "" && in.Secret.UID != "" && !in.Secret.TLS {
		// The reference carries what a read would tell: which object it is,
		// and that no Ingress can serve it. The UID precondition keeps a
		// Secret recreated under the name since.
		return k.deleteSecret(ctx, in.Secret, in.Secret.UID)
	}
	s, err := secrets.Get(ctx, in.Secret.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return RetireResult{}, nil
	}
	if err != nil {
		return RetireResult{}, classify(fmt.Errorf("get Secret %s: %w", in.Secret.Name, err))
	}
	if s.Type == corev1.SecretTypeTLS {
		served, err := (ingresses{k.Client}).serving(ctx, in.Secret.Namespace, in.Secret.Name)
		if err != nil {
			return RetireResult{}, err
		}
		if names := served[in.Secret.Name]; len(names) > 0 {
			return RetireResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("Secret %s is still served by ingress %s: it was kept; repoint the Ingress, then delete it by hand",
					in.Secret.Name, strings.Join(names, ", ")), ErrStillInUse, nil)
		}
	}
	if in.StagedByRun != "" && s.Annotations[AnnotationRunID] != in.StagedByRun {
		activity.GetLogger(ctx).Info("kept Secret not staged by this run", "secret", in.Secret.Name)
		return RetireResult{}, nil
	}
	// The UID precondition makes sure the Secret checked above is the one deleted.
	return k.deleteSecret(ctx, in.Secret, string(s.UID))
}

// deleteSecret deletes a Secret version if it is still the object with
// that UID; gone already counts as done.
func (k *Kube) deleteSecret(ctx context.Context, ref SecretRef, uid string) (RetireResult, error) {
	err := k.Client.CoreV1().Secrets(ref.Namespace).Delete(ctx, ref.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(uid)})
	switch {
	case apierrors.IsNotFound(err):
		return RetireResult{}, nil
	case apierrors.IsConflict(err):
		activity.GetLogger(ctx).Warn("kept Secret recreated since the rotation read it", "secret", ref.Name)
		return RetireResult{}, nil
	case err != nil:
		return RetireResult{}, classify(fmt.Errorf("delete Secret %s: %w", ref.Name, err))
	}
	activity.GetLogger(ctx).Info("retired Secret version", "secret", ref.Name, "version", ref.Version)
	return RetireResult{Deleted: true}, nil
}

// refOf makes a reference from a Secret, with the fingerprint recorded at
// staging or computed from the key.
func refOf(s *corev1.Secret, key string) SecretRef {
	v, _ := strconv.Atoi(s.Labels[LabelVersion])
	if v == 0 {
		v = 1
	}
	fp := s.Annotations[AnnotationFingerprint]
	if fp == "" {
		fp = Fingerprint(s.Data[key])
	}
	vv, _ := strconv.Atoi(s.Annotations[AnnotationVaultVersion])
	return SecretRef{Namespace: s.Namespace, Name: s.Name, Version: v, Fingerprint: fp,
		Username: string(s.Data[postgres.UsernameKey]), VaultVersion: vv, UID: string(s.UID), TLS: s.Type == corev1.SecretTypeTLS}
}

// classify turns Kubernetes errors that retrying cannot fix (RBAC
// refusals, invalid objects, or any the caller names) into non-retryable
// errors; everything else (conflicts, timeouts, 5xx) is retried.
func classify(err error, retryable ...func(error) bool) error {
	for _, f := range retryable {
		if f(err) {
			return err
		}
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return err
	}
	switch {
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return temporal.NewNonRetryableApplicationError(err.Error()+": grant the worker's ServiceAccount this permission (see deploy/)", ErrBadInput, err)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsMethodNotSupported(err):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, err)
	}
	return err
}

// isTestFailed tells a failed JSON patch test op (the workload changed
// under us; retry) from a patch whose result fails validation. The
// apiserver answers both with 422 Invalid; a patch that cannot be applied
// (a failed test, a path a concurrent edit removed) carries no causes and
// a generic message, while validation names the fields it rejects.
func isTestFailed(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) {
		return false
	}
	d := status.Status().Details
	return d == nil || len(d.Causes) == 0
}

func joinWorkloads(ws []Workload) string {
	s := make([]string, 0, len(ws))
	for _, w := range ws {
		s = append(s, w.String())
	}
	return strings.Join(s, ", ")
}

func plural(n int) string {
	if n == 1 {
		return "s"
	}
	return ""
}

// secretType keeps a certificate a kubernetes.io/tls Secret, which is what
// Ingress controllers require.
func secretType(kind catalog.Kind) corev1.SecretType {
	if kind == catalog.KindTLS {
		return corev1.SecretTypeTLS
	}
	return corev1.SecretTypeOpaque
}
