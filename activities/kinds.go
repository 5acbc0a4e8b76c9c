package activities

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"rotator/catalog"
)

// kindMaterial is what one kind contributes to the Kubernetes steps: how
// the data of a new version is made, which data keys of the Secret the
// rotation owns, and what the worker must have for it. Each kind builds
// its own in its own file; the generic steps (material.go, Preflight,
// StageSecret, discard) only ever ask kindMaterials, so a new kind adds a
// file and one case below instead of a case in every step.
type kindMaterial struct {
	// generate makes the data of a new version. Required.
	generate func(ctx context.Context, k *Kube, p Plan) (map[string][]byte, error)
	// written are the data keys a new version gets from the rotation
	// itself; every other key of the current version is carried over as
	// it is. Required.
	written func(t catalog.Target, emergency bool) []string
	// replaced are keys of the current version a new one never carries
	// over, even when written leaves them out (jwt's PreviousKey: an
	// emergency drops it rather than keeping the compromised key).
	replaced []string
	// secret are the keys, among the rotated ones, whose values are
	// secret, so a carried key that embeds one would keep the old secret
	// alive. Nil means every rotated key.
	secret []string
	// secretType is the type of every version's Secret; zero is Opaque.
	secretType corev1.SecretType
	// ingresses says an Ingress that serves the current Secret is a
	// consumer the rotation repoints (a certificate); for any other kind
	// it is left on the old version and reported.
	ingresses bool
	// embeddedFix is the fix for a carried key that embeds a secret
	// value; nil gives the generic fix.
	embeddedFix func(key string) string
	// missingKeyFix is the fix for a consumer that reads a key the new
	// version would not have, when the kind knows a better one than the
	// generic fix; "" falls back to it.
	missingKeyFix func(key string, emergency bool) string
	// ready refuses a target the worker cannot rotate as configured
	// (tls without Vault), at preflight before anything changes.
	ready func(k *Kube, t catalog.Target) error
	// checkPlan refuses a plan whose part of this kind is not what the
	// catalog gives the target (the server, user or provider an activity
	// would act on); nil when the kind's plan has nothing of its own.
	// Every kind's check runs on every plan, so a plan cannot carry the
	// part of a kind the target is not.
	checkPlan func(t catalog.Target, p Plan) error
	// discard deletes what the kind staged for a new version once it is
	// in one or the rotation ended (apikeys' staged keys); nil when the
	// kind stages nothing.
	discard func(ctx context.Context, s Staging, p Plan) error
}

// kindMaterials is the registry of kinds this worker rotates: the one
// shared place a new kind is added. The values are built on each call, so
// there is no package state to share or mutate.
func kindMaterials(kind catalog.Kind) (kindMaterial, bool) {
	switch kind {
	case catalog.KindJWT:
		return jwtMaterial(), true
	case catalog.KindPostgres:
		return postgresMaterial(), true
	case catalog.KindAPIKeys:
		return apiKeysMaterial(), true
	case catalog.KindTLS:
		return tlsMaterial(), true
	case catalog.KindRedis:
		return redisMaterial(), true
	}
	return kindMaterial{}, false
}

// materialOf is kindMaterials for a step that cannot go on without the
// kind: a kind this worker does not know is bad input, never retried.
func materialOf(kind catalog.Kind) (kindMaterial, error) {
	m, ok := kindMaterials(kind)
	if !ok {
		return kindMaterial{}, badInput("kind %s has no stage step in this worker", kind)
	}
	return m, nil
}

// KindPlans are the parts of a Plan that only one kind uses. Plan embeds
// it without a JSON name, so its fields stay top-level keys of the plan
// as Temporal history has them.
type KindPlans struct {
	// JWTBytes is the size of a new jwt key, before base64.
	JWTBytes int `json:"jwtBytes,omitempty"`
	// DualKey has a new jwt version carry the key it replaces as
	// PreviousKey.
	DualKey bool `json:"dualKey,omitempty"`
	// Postgres is set for postgres targets by PreflightDatabase.
	Postgres *PostgresPlan `json:"postgres,omitempty"`
	// APIKeys is set for apikeys targets by PreflightKeys.
	APIKeys *APIKeysPlan `json:"apiKeys,omitempty"`
	// TLS is what a tls target's new certificate must be.
	TLS *TLSPlan `json:"tls,omitempty"`
	// Redis is set for redis targets by PreflightRedis.
	Redis *RedisPlan `json:"redis,omitempty"`
}
