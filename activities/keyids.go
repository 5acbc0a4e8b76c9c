package activities

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"rotator/catalog"
)

// A provider key id in a plan is only a claim: anybody who can reach
// Temporal can put any id there, and the admin key would revoke any key of
// its project. So the ids retire revokes are the ones the worker found
// itself, through the admin API, for the key in the target's current
// version (PreflightKeys records them on that version, stage carries them
// to the new version, whose Secret outlives the old one), never the plan's
// alone.

// recordKeyIDs writes the key ids preflight found onto the version that
// holds those keys. The patch carries the resourceVersion read, so ids
// never land on a version whose keys changed since.
func (a *APIKeys) recordKeyIDs(ctx context.Context, cur *corev1.Secret, kp *APIKeysPlan) error {
	ids := map[string]string{}
	for _, p := range kp.Providers {
		if p.OldKeyID != "" {
			ids[p.Name] = p.OldKeyID
		}
	}
	if len(ids) == 0 {
		return nil
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("encode key ids: %w", err)
	}
	if cur.Annotations[AnnotationKeyIDs] == string(b) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": cur.ResourceVersion,
		"annotations":     map[string]string{AnnotationKeyIDs: string(b)},
	}})
	if err != nil {
		return fmt.Errorf("encode key ids patch: %w", err)
	}
	_, err = a.Kube.CoreV1().Secrets(cur.Namespace).Patch(ctx, cur.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: ManagedByValue})
	if err != nil {
		return classify(fmt.Errorf("record the provider key ids on Secret %s: %w", cur.Name, err))
	}
	return nil
}

// checkKeyIDs refuses a plan whose old key ids are not the ones the worker
// recorded for the version the rotation replaced: the record is on the new
// version, <base>-<nextVersion>, read with the target's labels.
func (a *APIKeys) checkKeyIDs(ctx context.Context, t catalog.Target, plan Plan) error {
	var claimed []int
	for i, p := range plan.APIKeys.Providers {
		if p.Admin && p.OldKeyID != "" {
			claimed = append(claimed, i)
		}
	}
	if len(claimed) == 0 {
		return nil
	}
	name := fmt.Sprintf("%s-%d", t.Secret, plan.NextVersion)
	s, err := a.Kube.CoreV1().Secrets(t.Namespace).Get(ctx, name, metav1.GetOptions{})
	var recorded map[string]string
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return classify(fmt.Errorf("read Secret %s for the key ids it replaced: %w", name, err))
	default:
		if err := checkLabels(t, s); err != nil {
			return err
		}
		// An annotation that does not parse records nothing.
		_ = json.Unmarshal([]byte(s.Annotations[AnnotationReplacedKeyIDs]), &recorded)
	}
	for _, i := range claimed {
		p := plan.APIKeys.Providers[i]
		if got := recorded[p.Name]; got != p.OldKeyID {
			return badInput("target %s: apiKeys.providers[%d].oldKeyID: the input says %s, the worker recorded %s for %s (annotation %s on Secret %s/%s): input refused, nothing was revoked; if the old key is still active, revoke it in the %s console",
				t.Name, i, shown(p.OldKeyID), shown(got), p.Name, AnnotationReplacedKeyIDs, t.Namespace, name, p.Name)
		}
	}
	return nil
}
