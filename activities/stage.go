package activities

import (
	"context"
	"fmt"
	"maps"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StageSecret generates the new material and stores it in an immutable
// Secret <base>-<n>, which also carries every other data key of the
// current version (a database Secret's host and port, a JWT Secret's
// issuer): consumers that read them must find them in the new version.
// Run twice by the same rotation (a retry, a reset run), it finds the
// Secret it created and returns the same reference.
func (k *Kube) StageSecret(ctx context.Context, in StageInput) (SecretRef, error) {
	p := in.Plan
	t, err := checkPlan(k.Catalog, p)
	if err != nil {
		return SecretRef{}, err
	}
	secrets := k.Client.CoreV1().Secrets(p.Namespace)
	info := activity.GetInfo(ctx)
	run := rotationKey(ctx, in.Rotation)
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

	// The current version is read before any material is made or
	// recorded: one that is not the target's stops the step here.
	cur, err := secrets.Get(ctx, p.Current.Name, metav1.GetOptions{})
	if err != nil {
		return SecretRef{}, classify(fmt.Errorf("read current Secret %s for the keys it carries: %w", p.Current.Name, err))
	}
	if err := checkLabels(t, cur); err != nil {
		return SecretRef{}, err
	}
	data, err := k.material(ctx, p)
	if err != nil {
		return SecretRef{}, err
	}
	annotations := map[string]string{AnnotationRunID: run, AnnotationReplaces: p.Current.Name}
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
	if ids := cur.Annotations[AnnotationKeyIDs]; ids != "" {
		// The ids of the keys this version replaces, as the worker found
		// them at preflight: the only ids retire may revoke.
		annotations[AnnotationReplacedKeyIDs] = ids
	}
	kept := carried(t, cur.Data)
	maps.Copy(kept, data)
	data = kept
	if p.DualKey && !in.Emergency {
		data[PreviousKey] = cur.Data[p.Key]
	}
	if fp := k.Fingerprints.Of(value); fp != "" {
		annotations[AnnotationFingerprint] = fp
	}
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
	return k.refOf(created, p.Key), nil
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
	return k.refOf(existing, p.Key), true, nil
}

// StageWithoutPrevious stages, at retire of a dual-key target with
// jwt.previous: dropAtRetire, the version after in.From: the same key and
// every other data key, without the previous key, which then stops being
// trusted once the consumers roll out onto it. Run twice by the same
// rotation, it returns the Secret it created.
func (k *Kube) StageWithoutPrevious(ctx context.Context, in DropPreviousInput) (SecretRef, error) {
	p := in.Plan
	t, err := checkPlan(k.Catalog, p)
	if err != nil {
		return SecretRef{}, err
	}
	if err := checkRef(t, "from", in.From); err != nil {
		return SecretRef{}, err
	}
	if !t.DropsPrevious() {
		return SecretRef{}, badInput("target %s does not drop the previous key at retire (jwt.previous)", t.Name)
	}
	run := rotationKey(ctx, in.Rotation)
	secrets := k.Client.CoreV1().Secrets(p.Namespace)
	from, err := secrets.Get(ctx, in.From.Name, metav1.GetOptions{})
	if err != nil {
		return SecretRef{}, classify(fmt.Errorf("read Secret %s: %w", in.From.Name, err))
	}
	if from.Labels[LabelTarget] != p.Target {
		return SecretRef{}, badInput("Secret %s is not a version of target %s", in.From.Name, p.Target)
	}
	version, _ := strconv.Atoi(from.Labels[LabelVersion])
	name := fmt.Sprintf("%s-%d", p.Base, version+1)
	data := maps.Clone(from.Data)
	delete(data, PreviousKey)
	annotations := map[string]string{AnnotationRunID: run, AnnotationReplaces: from.Name,
		AnnotationFingerprint: k.fingerprintOf(from, p.Key)}
	if v := from.Annotations[AnnotationVaultVersion]; v != "" {
		annotations[AnnotationVaultVersion] = v
	}
	immutable := true
	created, err := secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace, Annotations: annotations,
			Labels: map[string]string{LabelManagedBy: ManagedByValue, LabelTarget: p.Target,
				LabelVersion: strconv.Itoa(version + 1), LabelStage: StagePending}},
		Type: from.Type, Immutable: &immutable, Data: data,
	}, metav1.CreateOptions{FieldManager: ManagedByValue})
	if apierrors.IsAlreadyExists(err) {
		if ref, ok, err := k.ownStaged(ctx, p, name, run); err != nil || ok {
			return ref, err
		}
	}
	if err != nil {
		return SecretRef{}, classify(fmt.Errorf("create Secret %s: %w", name, err))
	}
	activity.GetLogger(ctx).Info("staged the version without the previous key", "secret", name, "replaces", from.Name)
	return k.refOf(created, p.Key), nil
}
