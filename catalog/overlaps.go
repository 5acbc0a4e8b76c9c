package catalog

import (
	"fmt"
	"strconv"
	"strings"
)

// checkOverlaps refuses targets that would rotate the same thing: each
// rotation would undo the other's, one Secret or one role's password at a
// time, and retire would delete a version the other target still uses.
func (c *Catalog) checkOverlaps() []error {
	var errs []error
	secrets := map[string]int{}
	roles := map[string]int{}
	for i, t := range c.Targets {
		id := fmt.Sprintf("targets[%d]", i)
		if t.Name != "" {
			id = fmt.Sprintf("%s (%s)", id, truncate(t.Name))
		}
		other := func(j int) string { return fmt.Sprintf("targets[%d] (%s)", j, truncate(c.Targets[j].Name)) }
		if t.Namespace != "" && t.Secret != "" {
			key := t.Namespace + "/" + t.Secret
			if j, dup := secrets[key]; dup {
				errs = append(errs, &FieldError{Target: id, Field: "secret", Detail: fmt.Sprintf(
					"%s is also the Secret of %s: two targets on one Secret undo each other's rotations; keep one of them", key, other(j))})
			} else {
				secrets[key] = i
			}
		}
		for _, r := range t.passwordRoles() {
			if j, dup := roles[r.key]; dup && j != i {
				errs = append(errs, &FieldError{Target: id, Field: r.field, Detail: fmt.Sprintf(
					"role %q on %s is also rotated by %s: two targets setting one role's password undo each other; rotate it from one target",
					truncate(r.name), r.server, other(j))})
			} else if !dup {
				roles[r.key] = i
			}
		}
	}
	// A base name that is another target's version or staging name would
	// be created, relabelled or deleted by the other target's rotations.
	for i, t := range c.Targets {
		for j, u := range c.Targets {
			if i == j || t.Namespace != u.Namespace || u.Secret == "" {
				continue
			}
			suffix, ok := strings.CutPrefix(t.Secret, u.Secret+"-")
			if !ok {
				continue
			}
			if _, err := strconv.Atoi(suffix); err == nil || suffix == "staged" {
				errs = append(errs, &FieldError{Target: fmt.Sprintf("targets[%d] (%s)", i, truncate(t.Name)), Field: "secret", Detail: fmt.Sprintf(
					"%s is a name that targets[%d] (%s) gives its own versions (%s-<n>, %s-staged): rename this Secret or the other target's",
					truncate(t.Secret), j, truncate(u.Name), truncate(u.Secret), truncate(u.Secret))})
			}
		}
	}
	return errs
}

// passwordRole is a PostgreSQL role whose password a target sets.
type passwordRole struct {
	key, name, server, field string
}

// passwordRoles are the roles whose password the target's rotations set:
// the role itself (single-user) or the two login roles (alternating-users).
func (t Target) passwordRoles() []passwordRole {
	p := t.Postgres
	if t.Kind != KindPostgres || p == nil || p.Host == "" {
		return nil
	}
	server := fmt.Sprintf("%s:%d", strings.ToLower(strings.TrimSuffix(p.Host, ".")), p.Port)
	role := func(field, name string) passwordRole {
		return passwordRole{key: server + "/" + name, name: name, server: server, field: field}
	}
	if p.Strategy == StrategyAlternating {
		var out []passwordRole
		for i, u := range p.Users {
			out = append(out, role(fmt.Sprintf("postgres.users[%d]", i), u))
		}
		return out
	}
	if p.Role == "" {
		return nil
	}
	return []passwordRole{role("postgres.role", p.Role)}
}
