package activities

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.temporal.io/sdk/activity"
	corev1 "k8s.io/api/core/v1"

	"rotator/catalog"
	"rotator/postgres"
	"rotator/vault"
)

// Preflight checks the target and the cluster and returns the plan. It
// changes nothing, so any bad input fails here before a change is made:
// every problem it finds is in one error, each with its fix.
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
	m, err := materialOf(t.Kind)
	if err != nil {
		return Plan{}, err
	}
	if m.ready != nil {
		if err := m.ready(k, t); err != nil {
			return Plan{}, err
		}
	}
	// The namespace is scanned while the versions are looked up: neither
	// needs the other, and each waits on the apiserver.
	var scan *namespaceScan
	var scanErr error
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		scan, scanErr = k.scan(ctx, t.Namespace)
	}()
	v, err := k.versions(ctx, t, rotationKey(ctx, in.Rotation))
	<-scanned
	if err != nil {
		return Plan{}, err
	}
	if scanErr != nil {
		return Plan{}, classify(scanErr)
	}
	found, err := findConsumers(t, scan, v.current.Name, v.promoted)
	if err != nil {
		return Plan{}, err
	}
	problems := found.problems(t, v.current.Name)
	problems = append(problems, checkSecret(t, v.secret, in.Emergency, found.consumers)...)
	if len(problems) > 0 {
		return Plan{}, badInput("target %s: %s", t.Name, strings.Join(problems, "; "))
	}
	plan := Plan{
		Target:      t.Name,
		Kind:        t.Kind,
		Namespace:   t.Namespace,
		Base:        t.Secret,
		Key:         t.Key,
		Current:     v.current,
		NextVersion: v.next,
		Grace:       t.Grace.Duration,
		MinGrace:    t.MinGrace.Duration,
		Unmoved:     found.unmoved,
		Lingering:   lingering(scan, v.others),

		OldStopsAtApply: t.OldStopsAtApply(),
		DropPrevious:    t.DropsPrevious(),
		Notify:          NotifyRoutes(k.Catalog, t),
		Window:          k.Catalog.WindowFor(t),
	}
	for _, c := range found.consumers {
		if c.ref.Kind == "Ingress" {
			plan.Ingresses = append(plan.Ingresses, c.ref.Name)
			continue
		}
		plan.Consumers = append(plan.Consumers, c.ref)
		plan.Seen = append(plan.Seen, Seen{Workload: c.ref, ResourceVersion: c.resourceVersion,
			Paths: c.secrets[v.current.Name].paths, Annotated: c.annotated})
	}
	plan.TLS = tlsPlanOf(t)
	if t.JWT != nil {
		plan.JWTBytes, plan.DualKey = t.JWT.Bytes, t.JWT.DualKey
	}
	if v.secret != nil {
		plan.Keys = slices.Sorted(maps.Keys(v.secret.Data))
		if plan.DualKey && !in.Emergency && !slices.Contains(plan.Keys, PreviousKey) {
			plan.Keys = slices.Insert(plan.Keys, 0, PreviousKey)
			slices.Sort(plan.Keys)
		}
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
		plan.Vault = vaultPlanOf(t)
	}
	activity.GetLogger(ctx).Info("preflight passed", "target", t.Name, "current", v.current.Name,
		"next_version", v.next, "consumers", len(plan.Consumers)+len(plan.Ingresses), "not_repointed", len(plan.Unmoved))
	return plan, nil
}

// consumersFound is what preflight found that uses the current version.
type consumersFound struct {
	// consumers are the workloads and Ingresses rotator repoints.
	consumers []use
	// unmoved are the live objects that keep the current version: ones
	// rotator cannot repoint, and workloads left out of the catalog's
	// consumers.
	unmoved []Holder
}

// findConsumers sorts the users of the current version: the catalog's
// consumers, each checked to exist and to use it, or else every workload
// (and for tls, every Ingress) that uses it; the rest is left on it. A
// reset run's consumers may be on the version it promoted already.
func findConsumers(t catalog.Target, scan *namespaceScan, current, promoted string) (consumersFound, error) {
	var f consumersFound
	users := scan.users(current)
	if promoted != "" {
		for _, u := range scan.users(promoted) {
			if u.movable && !slices.ContainsFunc(users, func(o use) bool { return o.ref == u.ref }) {
				users = append(users, u)
			}
		}
	}
	m, _ := kindMaterials(t.Kind)
	repoints := func(u use) bool { return u.movable && (u.ref.Kind != "Ingress" || m.ingresses) }
	if len(t.Consumers) > 0 {
		for i, c := range t.Consumers {
			ref := Workload{Kind: c.Kind, Name: c.Name}
			u, ok := scan.find(ref)
			if !ok {
				return f, badInput("target %s: consumers[%d]: %s does not exist in namespace %s: fix or remove it in rotator.yaml",
					t.Name, i, ref, t.Namespace)
			}
			if _, uses := u.secrets[current]; !uses && (promoted == "" || u.secrets[promoted].paths == nil) {
				return f, badInput("target %s: consumers[%d]: %s does not reference Secret %s: fix or remove it in rotator.yaml",
					t.Name, i, ref, current)
			}
			f.consumers = append(f.consumers, u)
		}
		// Ingresses are never listed as consumers: they follow the
		// certificate they serve.
		for _, u := range users {
			if u.ref.Kind == "Ingress" && repoints(u) {
				f.consumers = append(f.consumers, u)
			}
		}
	} else {
		for _, u := range users {
			if repoints(u) {
				f.consumers = append(f.consumers, u)
			}
		}
	}
	for _, u := range users {
		if slices.ContainsFunc(f.consumers, func(c use) bool { return c.ref == u.ref }) {
			continue
		}
		h := u.holder()
		switch {
		case u.ref.Kind == "Ingress":
			h.Why = "an Ingress serves it, but the target is not of kind tls"
		case u.movable:
			h.Why = "not in the target's consumers"
		}
		f.unmoved = append(f.unmoved, h)
	}
	if len(f.consumers) == 0 {
		return f, badInput("target %s: nothing in namespace %s that rotator can repoint references Secret %s (no Deployment, StatefulSet, DaemonSet, CronJob%s): check namespace and secret in rotator.yaml",
			t.Name, t.Namespace, current, map[bool]string{true: " or Ingress", false: ""}[m.ingresses])
	}
	return f, nil
}

// problems are the reasons the consumers found keep the rotation from
// finishing cleanly, each with its fix.
func (f consumersFound) problems(t catalog.Target, current string) []string {
	var out []string
	for _, c := range f.consumers {
		if c.blocker != "" {
			out = append(out, fmt.Sprintf("%s %s", c.ref, c.blocker))
		}
		for _, m := range unacknowledged(c.managers, t.Acknowledges) {
			out = append(out, fmt.Sprintf("%s is managed by %s: %s; rotate through %s instead, or add %s to the target's acknowledgedManagers if it leaves the Secret's name alone",
				c.ref, m.Name, managerRisk(m, false, current), m.Name, m.ID))
		}
	}
	// Where the old credential stops working at apply, anything left on
	// it would lose its login.
	if t.OldStopsAtApply() && len(f.unmoved) > 0 {
		out = append(out, fmt.Sprintf("%s keep%s Secret %s, whose password stops working when the rotation sets the new one: delete %s or add %s to consumers, or switch to strategy alternating-users",
			strings.Join(holderNames(f.unmoved), ", "), plural(len(f.unmoved)), current, them(len(f.unmoved)), them(len(f.unmoved))))
	}
	return out
}

// checkSecret refuses a current version that a new one could not stand in
// for: one another tool manages, one whose other keys embed the rotated
// value (they would be carried over unchanged), or one a consumer reads a
// key of that the new version would not have.
func checkSecret(t catalog.Target, s *corev1.Secret, emergency bool, consumers []use) []string {
	var out []string
	for _, m := range unacknowledged(managersOf(s), t.Acknowledges) {
		out = append(out, fmt.Sprintf("Secret %s is managed by %s: %s; rotate through %s instead, or add %s to the target's acknowledgedManagers",
			s.Name, m.Name, managerRisk(m, true, s.Name), m.Name, m.ID))
	}
	keep := carried(t, s.Data)
	for _, k := range sortedKeys(keep) {
		for _, r := range secretKeys(t) {
			if v := s.Data[r]; len(v) >= 8 && strings.Contains(string(keep[k]), string(v)) {
				out = append(out, fmt.Sprintf("data key %q of Secret %s contains the value of %q, so a new version would carry the old value in it: %s",
					k, s.Name, r, embeddedFix(t, k)))
				break
			}
		}
	}
	have := append(sortedKeys(keep), writtenKeys(t, emergency)...)
	for _, c := range consumers {
		for _, kr := range c.secrets[s.Name].keys {
			if slices.Contains(have, kr.Key) {
				continue
			}
			out = append(out, fmt.Sprintf("%s reads key %q of Secret %s (%s), which the new version would not have, so its new pods would not start: %s",
				c.ref, kr.Key, s.Name, kr.Where, missingKeyFix(t, s, kr.Key, emergency)))
		}
	}
	return out
}

// embeddedFix is the fix for a carried key that embeds a secret value: the
// kind's, if it can write the key itself, else to move the key out.
func embeddedFix(t catalog.Target, key string) string {
	if m, ok := kindMaterials(t.Kind); ok && m.embeddedFix != nil {
		return m.embeddedFix(key)
	}
	return "remove the key from the Secret, or keep it in a Secret of its own"
}

// missingKeyFix is the fix for a consumer that reads a key the new
// version would not have: the kind's, if it knows the key, else the
// reference's or the Secret's.
func missingKeyFix(t catalog.Target, s *corev1.Secret, key string, emergency bool) string {
	if m, ok := kindMaterials(t.Kind); ok && m.missingKeyFix != nil {
		if fix := m.missingKeyFix(key, emergency); fix != "" {
			return fix
		}
	}
	switch {
	case s.Data[key] == nil:
		return fmt.Sprintf("Secret %s has no such key either: fix the reference or add the key to the Secret", s.Name)
	}
	return "fix the reference"
}

// lingering lists the target's other versions that live objects still
// use: a retire kept them (approve --keep-old) or a person repointed
// something back. Their logins must keep working.
func lingering(scan *namespaceScan, others []corev1.Secret) []Lingering {
	var out []Lingering
	for _, s := range others {
		if us := scan.users(s.Name); len(us) > 0 {
			out = append(out, Lingering{Name: s.Name, Username: string(s.Data[postgres.UsernameKey]), UsedBy: holderNames(holders(us))})
		}
	}
	return out
}

func them(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}
