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
					"%s %q on %s is also rotated by %s: two targets setting one %s's password undo each other; rotate it from one target",
					r.noun, truncate(r.name), r.server, other(j), r.noun)})
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

// passwordRole is a login of a backing system whose password a target
// sets: a PostgreSQL role, a Redis user.
type passwordRole struct {
	key, name, server, field string
	// noun is what the system calls it, for errors.
	noun string
}

// passwordRoles are the logins whose password the target's rotations set,
// as its kind's spec lists them.
func (t Target) passwordRoles() []passwordRole {
	s, ok := specOf(t.Kind)
	if !ok || s.logins == nil || (s.has != nil && !s.has(&t)) {
		return nil
	}
	return s.logins(t)
}

// loginOn is the login name on server (host:port, compared without case
// and a trailing dot), set by the target's field.
func loginOn(noun, host string, port int, field, name string) passwordRole {
	server := fmt.Sprintf("%s:%d", strings.ToLower(strings.TrimSuffix(host, ".")), port)
	return passwordRole{key: noun + "@" + server + "/" + name, name: name, server: server, field: field, noun: noun}
}
