// The worker trusts only its catalog: whoever can reach the Temporal
// frontend can schedule these activities with any input, from a workflow of
// their own on a task queue of their own. So every activity that acts takes
// the target's name, re-derives from the catalog what the plan says
// (namespace, Secret names, database server and roles, provider URLs,
// Vault paths, certificate names), and checks the Secrets it reads carry
// the target's labels. An input that disagrees fails, non-retryable, before
// anything changes.

package activities

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"rotator/catalog"
)

// refused is the error of an input that disagrees with the catalog. It names
// the field, what the input says and what the catalog has; none of them is
// ever a secret value.
func refused(target, field string, got, want any) error {
	return badInput("target %s: %s: the input says %s, the catalog has %s: input refused, nothing was changed "+
		"(activities act only on what rotator.yaml and the target's labelled objects say; start a rotation instead)",
		target, field, shown(got), shown(want))
}

// shown quotes a value of an input for an error, cut short: an input is
// anybody's, and may be long.
func shown(v any) string {
	s := fmt.Sprintf("%v", v)
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return strconv.Quote(s)
}

// checkPlan re-derives from the catalog every field of a plan that decides
// what an activity touches, and returns the target. The plan need not be
// complete (preflight fills it in step by step), but what it has must be
// what the catalog says.
func checkPlan(c *catalog.Catalog, p Plan) (catalog.Target, error) {
	t, err := catalogTarget(c, p.Target)
	if err != nil {
		return t, err
	}
	switch {
	case p.Kind != t.Kind:
		return t, refused(t.Name, "kind", p.Kind, t.Kind)
	case p.Namespace != t.Namespace:
		return t, refused(t.Name, "namespace", p.Namespace, t.Namespace)
	case p.Base != t.Secret:
		return t, refused(t.Name, "secret (base)", p.Base, t.Secret)
	case p.Key != t.Key:
		return t, refused(t.Name, "key", p.Key, t.Key)
	case p.NextVersion < 2:
		return t, refused(t.Name, "nextVersion", p.NextVersion, "2 or more (version 1 is the original Secret)")
	}
	if err := checkRef(t, "current", p.Current); err != nil {
		return t, err
	}
	if err := checkConsumers(t, p.Consumers, p.Ingresses); err != nil {
		return t, err
	}
	size, dual := 0, false
	if t.JWT != nil {
		size, dual = t.JWT.Bytes, t.JWT.DualKey
	}
	if p.JWTBytes != size {
		return t, refused(t.Name, "jwt.bytes", p.JWTBytes, size)
	}
	if p.DualKey != dual {
		return t, refused(t.Name, "jwt.dualKey", p.DualKey, dual)
	}
	if want := vaultPlanOf(t); !sameVault(p.Vault, want) {
		return t, refused(t.Name, "vault", vaultShown(p.Vault), vaultShown(want))
	}
	for _, k := range catalog.Kinds() {
		if m, ok := kindMaterials(k); ok && m.checkPlan != nil {
			if err := m.checkPlan(t, p); err != nil {
				return t, err
			}
		}
	}
	return t, nil
}

func catalogTarget(c *catalog.Catalog, name string) (catalog.Target, error) {
	if c == nil {
		return catalog.Target{}, badInput("target %s: this worker was started without a catalog, so it acts on no target: pass --catalog", name)
	}
	if name == "" {
		return catalog.Target{}, badInput("target: is required: an activity acts only on a target of rotator.yaml, named in its input")
	}
	t, err := c.Target(name)
	if err != nil {
		return t, badInput("target: %v", err)
	}
	return t, nil
}

// versionOf returns the version a Secret name stands for: the base name is
// version 1 (the original, adopted at the first promote), <base>-<n> is n.
// Any other name is no version of the target.
func versionOf(t catalog.Target, name string) (int, bool) {
	if name == t.Secret {
		return 1, true
	}
	rest, ok := strings.CutPrefix(name, t.Secret+"-")
	if !ok || rest == "" || rest[0] == '0' || strings.Trim(rest, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}

// checkRef checks that a reference names a version of the target, in its
// namespace.
func checkRef(t catalog.Target, field string, r SecretRef) error {
	if r.Namespace != "" && r.Namespace != t.Namespace {
		return refused(t.Name, field+".namespace", r.Namespace, t.Namespace)
	}
	if _, ok := versionOf(t, r.Name); !ok {
		return refused(t.Name, field+".name", r.Name, t.Secret+" or "+t.Secret+"-<n>")
	}
	return nil
}

// checkLabels checks that a Secret read as a version of the target is one:
// labelled as the target's, or the target's original Secret, which carries
// no rotator labels until the first promote adopts it.
func checkLabels(t catalog.Target, s *corev1.Secret) error {
	got := s.Labels[LabelTarget]
	if got == t.Name || (got == "" && s.Name == t.Secret) {
		return nil
	}
	return badInput("target %s: Secret %s/%s is labelled %s=%q, not %q, so it is no version of the target: input refused, nothing was changed",
		t.Name, s.Namespace, s.Name, LabelTarget, got, t.Name)
}

// checkConsumers checks that what a step repoints is the target's: in its
// namespace by construction, one of the catalog's consumers when it lists
// them, and Ingresses only for tls targets (preflight repoints no other
// Ingress).
func checkConsumers(t catalog.Target, consumers []Workload, ingresses []string) error {
	if len(t.Consumers) > 0 {
		for i, c := range consumers {
			if !slices.ContainsFunc(t.Consumers, func(cc catalog.Consumer) bool { return cc.Kind == c.Kind && cc.Name == c.Name }) {
				return refused(t.Name, fmt.Sprintf("consumers[%d]", i), c, "only the consumers it lists")
			}
		}
	}
	if len(ingresses) > 0 && t.Kind != catalog.KindTLS {
		return refused(t.Name, "ingresses", strings.Join(ingresses, ","), "none: only tls targets repoint Ingresses")
	}
	return nil
}

// versionTargets are the targets of which a Secret is a version, by its
// namespace and name alone: what a step that names no target may touch.
func versionTargets(c *catalog.Catalog, ref SecretRef) ([]catalog.Target, error) {
	if c == nil {
		return nil, badInput("secret: this worker was started without a catalog, so it acts on no Secret: pass --catalog")
	}
	var out []catalog.Target
	for _, t := range c.Targets {
		if _, ok := versionOf(t, ref.Name); ok && t.Namespace == ref.Namespace {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, badInput("secret: Secret %s/%s is no version of a target in the catalog (<secret> or <secret>-<n> in the target's namespace): input refused, nothing was changed",
			ref.Namespace, ref.Name)
	}
	return out, nil
}

// labelledFor checks a Secret read by a step that names no target against
// the targets its name makes it a version of.
func labelledFor(targets []catalog.Target, s *corev1.Secret) error {
	var err error
	for _, t := range targets {
		if err = checkLabels(t, s); err == nil {
			return nil
		}
	}
	return err
}

// checkNamespace checks that a read-only step looks only into a target's
// namespace: the named target's, or any target's.
func checkNamespace(c *catalog.Catalog, target, ns string) error {
	if target != "" {
		t, err := catalogTarget(c, target)
		if err != nil {
			return err
		}
		if ns != t.Namespace {
			return refused(t.Name, "namespace", ns, t.Namespace)
		}
		return nil
	}
	if c == nil {
		return badInput("namespace: this worker was started without a catalog, so it acts on no namespace: pass --catalog")
	}
	if !slices.ContainsFunc(c.Targets, func(t catalog.Target) bool { return t.Namespace == ns }) {
		return badInput("namespace: %s is the namespace of no target in the catalog: input refused, nothing was changed", shown(ns))
	}
	return nil
}

// checkPromote checks that a promote, or the rollback that uses it, moves
// the target's consumers between two versions of the target, in its
// namespace.
func checkPromote(c *catalog.Catalog, in PromoteInput) (catalog.Target, error) {
	t, err := catalogTarget(c, in.Target)
	if err != nil {
		return t, err
	}
	if in.Namespace != t.Namespace {
		return t, refused(t.Name, "namespace", in.Namespace, t.Namespace)
	}
	if err := checkRef(t, "from", in.From); err != nil {
		return t, err
	}
	if err := checkRef(t, "to", in.To); err != nil {
		return t, err
	}
	return t, checkConsumers(t, in.Consumers, in.Ingresses)
}
