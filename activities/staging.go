package activities

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	vaultapi "github.com/hashicorp/vault/api"
	"go.temporal.io/sdk/temporal"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"rotator/catalog"
	"rotator/vault"
)

// AnnotationExpiresAt tells a person who finds a staging Secret when its
// keys should have been picked up; the rotation deletes it as soon as it
// has copied them, or when it fails.
const AnnotationExpiresAt = "rotator.dev/expires-at"

// MaxAPIKeyBytes bounds a staged key: provider keys are about 200 bytes,
// so anything near this is a paste of the wrong thing.
const MaxAPIKeyBytes = 1024

// Staging is where the new API keys an engineer obtained from the provider
// consoles wait for the rotation: Vault at <path>/staged when the target
// has a Vault path, else a short-lived Secret <base>-staged. Keys go there
// from stdin (`starter stage-keys`) or the vault CLI, never through
// Temporal.
type Staging struct {
	Kube  kubernetes.Interface
	Vault *vaultapi.Client
}

func (k *Kube) staging() Staging { return Staging{Kube: k.Client, Vault: k.Vault} }

// StagingSecretName is the Secret that holds staged keys of a target
// without a Vault path.
func StagingSecretName(base string) string { return base + "-staged" }

// CheckKeys validates staged keys against the target's providers: each
// provider's key present, nothing else, no blanks or line breaks. Errors
// name the data key, never the value.
func CheckKeys(t catalog.Target, keys map[string][]byte) error {
	if t.APIKeys == nil {
		return fmt.Errorf("target %s is of kind %s: only apikeys targets take staged keys", t.Name, t.Kind)
	}
	var want []string
	for _, p := range t.APIKeys.Providers {
		want = append(want, p.Key)
	}
	var errs []string
	for _, k := range want {
		v, ok := keys[k]
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("%s: is missing: give one line %s=<new key>", k, k))
		case len(v) == 0:
			errs = append(errs, fmt.Sprintf("%s: is empty", k))
		case len(v) > MaxAPIKeyBytes:
			errs = append(errs, fmt.Sprintf("%s: is %d bytes, more than any provider key (%d at most): check what was pasted", k, len(v), MaxAPIKeyBytes))
		case strings.ContainsFunc(string(v), unicode.IsSpace):
			errs = append(errs, fmt.Sprintf("%s: contains white space or a line break: paste the key alone", k))
		}
	}
	for k := range keys {
		if !slices.Contains(want, k) {
			errs = append(errs, fmt.Sprintf("%.64s: is not a key of target %s: use %s", k, t.Name, strings.Join(want, ", ")))
		}
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return fmt.Errorf("staged keys for %s: %s", t.Name, strings.Join(errs, "; "))
	}
	return nil
}

// Write stores keys for the target, replacing any staged before. It
// returns where they went, for the engineer.
func (s Staging) Write(ctx context.Context, t catalog.Target, keys map[string][]byte, ttl time.Duration) (string, error) {
	if err := CheckKeys(t, keys); err != nil {
		return "", err
	}
	if t.Vault != nil {
		if s.Vault == nil {
			return "", fmt.Errorf("target %s has a Vault path but there is no Vault connection: set VAULT_ADDR and VAULT_TOKEN", t.Name)
		}
		store := vault.NewStore(s.Vault, t.Vault.Mount)
		if _, err := store.WriteStaged(ctx, t.Vault.Path, toStrings(keys)); err != nil {
			return "", err
		}
		return fmt.Sprintf("Vault %s/%s", t.Vault.Mount, vault.StagedPath(t.Vault.Path)), nil
	}
	name := StagingSecretName(t.Secret)
	secrets := s.Kube.CoreV1().Secrets(t.Namespace)
	// Staged keys are replaced whole: delete, then create, so a Secret
	// never mixes an old and a new paste.
	if err := secrets.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("replace staging Secret %s/%s: %w", t.Namespace, name, err)
	}
	immutable := true
	_, err := secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: t.Namespace,
			Labels: map[string]string{LabelManagedBy: ManagedByValue, LabelTarget: t.Name, LabelStage: StageStaged},
			Annotations: map[string]string{
				AnnotationExpiresAt: time.Now().Add(ttl).UTC().Format(time.RFC3339),
			},
		},
		Type: corev1.SecretTypeOpaque, Immutable: &immutable, Data: keys,
	}, metav1.CreateOptions{FieldManager: ManagedByValue})
	if err != nil {
		return "", fmt.Errorf("create staging Secret %s/%s: %w", t.Namespace, name, err)
	}
	return fmt.Sprintf("Secret %s/%s", t.Namespace, name), nil
}

// read returns the staged keys of the plan's target, checked. No keys yet
// is ErrNotStaged.
func (s Staging) read(ctx context.Context, p Plan, t catalog.Target) (map[string][]byte, error) {
	var keys map[string][]byte
	if p.Vault != nil {
		data, ok, err := vault.NewStore(s.Vault, p.Vault.Mount).ReadStaged(ctx, p.Vault.Path)
		if err != nil {
			return nil, vaultError(err)
		}
		if !ok {
			return nil, notStaged(p, fmt.Sprintf("Vault %s/%s", p.Vault.Mount, vault.StagedPath(p.Vault.Path)))
		}
		keys = toBytes(data)
	} else {
		name := StagingSecretName(p.Base)
		sec, err := s.Kube.CoreV1().Secrets(p.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, notStaged(p, "Secret "+p.Namespace+"/"+name)
		}
		if err != nil {
			return nil, classify(fmt.Errorf("read staging Secret %s: %w", name, err))
		}
		if sec.Labels[LabelTarget] != p.Target || sec.Labels[LabelStage] != StageStaged {
			return nil, badInput("Secret %s/%s is not a staging Secret of %s (labels %s=%s, %s=%s): delete it and stage the keys with starter stage-keys %s",
				p.Namespace, name, p.Target, LabelTarget, p.Target, LabelStage, StageStaged, p.Target)
		}
		keys = sec.Data
	}
	if err := CheckKeys(t, keys); err != nil {
		return nil, badInput("%v: stage them again with starter stage-keys %s", err, p.Target)
	}
	return keys, nil
}

func notStaged(p Plan, where string) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
		"no keys are staged for %s at %s: obtain new keys in the provider consoles, run starter stage-keys %s and pipe them in, then signal keys-staged",
		p.Target, where, p.Target), ErrNotStaged, nil)
}

// discard deletes what the plan's kind staged for a new version once it
// is in a version (or the rotation ended): staged keys live no longer
// than they are needed. Kinds that stage nothing have nothing to delete.
func (s Staging) discard(ctx context.Context, p Plan) error {
	m, ok := kindMaterials(p.Kind)
	if !ok || m.discard == nil {
		return nil
	}
	return m.discard(ctx, s, p)
}

// discardStaged deletes the staged keys of an apikeys plan, wherever
// Staging put them.
func (s Staging) discardStaged(ctx context.Context, p Plan) error {
	if p.Vault != nil {
		if err := vault.NewStore(s.Vault, p.Vault.Mount).DeleteStaged(ctx, p.Vault.Path); err != nil {
			return vaultError(err)
		}
		return nil
	}
	name := StagingSecretName(p.Base)
	err := s.Kube.CoreV1().Secrets(p.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return classify(fmt.Errorf("delete staging Secret %s: %w", name, err))
	}
	return nil
}

func toStrings(m map[string][]byte) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

func toBytes(m map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}
