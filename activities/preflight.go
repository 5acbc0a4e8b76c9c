package activities

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.temporal.io/sdk/activity"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"rotator/catalog"
	"rotator/vault"
)

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
