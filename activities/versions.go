package activities

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.temporal.io/sdk/activity"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"rotator/catalog"
)

// targetVersions is what preflight knows of a target's Secret versions.
type targetVersions struct {
	// current is the version the consumers use, and secret the same
	// Secret as read, for the checks on its data.
	current SecretRef
	secret  *corev1.Secret
	// next is the version the rotation stages.
	next int
	// others are the target's other labelled versions.
	others []corev1.Secret
	// promoted is the version this rotation staged and promoted already,
	// when a reset run does preflight again: consumers on it are the
	// rotation's too.
	promoted string
}

// rotationKey is what marks the objects a rotation creates as its own. It
// is the workflow's original run ID, which `temporal workflow reset` keeps,
// so a reset run finds what the run it replaces created; without one (a
// workflow older than the key), the run ID.
func rotationKey(ctx context.Context, key string) string {
	if key != "" {
		return key
	}
	return activity.GetInfo(ctx).WorkflowExecution.RunID
}

// versions finds the current version of the target's Secret and the next
// free version number. A Secret never managed before is the base name,
// adopted as version 1. A version this rotation already staged is the next
// one again: preflight and stage run as local activities in one workflow
// task, and a worker that dies before that task completes leaves the
// staged Secret behind for the next worker to run both again. So does a
// reset run, which may find its version promoted already: it then starts
// from the version that one replaces.
func (k *Kube) versions(ctx context.Context, t catalog.Target, key string) (targetVersions, error) {
	secrets := k.Client.CoreV1().Secrets(t.Namespace)
	list, err := secrets.List(ctx, metav1.ListOptions{LabelSelector: labels.Set{LabelTarget: t.Name}.String()})
	if err != nil {
		return targetVersions{}, classify(fmt.Errorf("list Secrets of %s: %w", t.Name, err))
	}
	var v targetVersions
	maxVersion := 0
	var current []corev1.Secret
	var own *corev1.Secret
	for i, s := range list.Items {
		n, _ := strconv.Atoi(s.Labels[LabelVersion])
		maxVersion = max(maxVersion, n)
		switch {
		case key != "" && s.Annotations[AnnotationRunID] == key && s.Labels[LabelStage] != StageStaged:
			own = &list.Items[i]
		case s.Labels[LabelStage] == StageCurrent:
			current = append(current, s)
		case s.Labels[LabelStage] != StageStaged:
			v.others = append(v.others, s)
		}
	}
	var cur *corev1.Secret
	switch {
	case own != nil && own.Labels[LabelStage] == StageCurrent:
		cur, err = k.replaced(ctx, t, own)
		if err != nil {
			return targetVersions{}, err
		}
		v.others = slices.DeleteFunc(v.others, func(s corev1.Secret) bool { return s.Name == cur.Name })
		v.promoted = own.Name
	case own != nil && own.Labels[LabelStage] != StagePending:
		return targetVersions{}, badInput("target %s: Secret %s, which this rotation staged, is labelled %s=%s: a later rotation replaced it; start a new rotation instead",
			t.Name, own.Name, LabelStage, own.Labels[LabelStage])
	case len(current) == 0:
		base, err := secrets.Get(ctx, t.Secret, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			// The namespace is not read on its own: that would need a
			// cluster-wide permission, and a missing namespace shows here.
			return targetVersions{}, badInput("target %s: secret: Secret %s/%s does not exist: create it, or fix secret or namespace in rotator.yaml",
				t.Name, t.Namespace, t.Secret)
		}
		if err != nil {
			return targetVersions{}, classify(fmt.Errorf("get Secret %s: %w", t.Secret, err))
		}
		cur = base
		maxVersion = max(maxVersion, 1)
	case len(current) == 1:
		cur = &current[0]
	default:
		names := make([]string, 0, len(current))
		for _, s := range current {
			names = append(names, s.Name)
		}
		slices.Sort(names)
		return targetVersions{}, badInput("target %s: Secrets %s are all labelled %s=%s: keep the one the consumers use and relabel the others %s",
			t.Name, strings.Join(names, ", "), LabelStage, StageCurrent, StagePrevious)
	}
	if _, ok := cur.Data[t.Key]; !ok {
		return targetVersions{}, badInput("target %s: key: Secret %s has no data key %q: fix key in rotator.yaml", t.Name, cur.Name, t.Key)
	}
	v.current, v.secret, v.next = k.refOf(cur, t.Key), cur, maxVersion+1
	if own != nil {
		v.next, _ = strconv.Atoi(own.Labels[LabelVersion])
	}
	return v, nil
}

// replaced reads the version that a version this rotation promoted
// replaced, from the annotation stage wrote on it.
func (k *Kube) replaced(ctx context.Context, t catalog.Target, own *corev1.Secret) (*corev1.Secret, error) {
	name := own.Annotations[AnnotationReplaces]
	if name == "" {
		return nil, badInput("target %s: Secret %s, which this rotation staged, is current already and does not say which version it replaced: start a new rotation instead",
			t.Name, own.Name)
	}
	s, err := k.Client.CoreV1().Secrets(t.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, badInput("target %s: this rotation promoted %s and retired %s already: there is nothing left to redo", t.Name, own.Name, name)
	}
	if err != nil {
		return nil, classify(fmt.Errorf("get Secret %s: %w", name, err))
	}
	return s, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
