package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// MaxIdentifier is PostgreSQL's NAMEDATALEN-1: longer names are truncated
// by the server, so two distinct names could end up the same role.
const MaxIdentifier = 63

// ident quotes a role name with pgx, so quotes, semicolons and any other
// character stay part of the name.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// SetPassword sets a role's password to a verifier. With login it also
// grants LOGIN, which an alternating user lost when it was last retired
// (that takes CREATEROLE; a role changing its own password must not ask).
func SetPassword(ctx context.Context, conn *pgx.Conn, role, verifier string, login bool) error {
	lit, err := literal(verifier)
	if err != nil {
		return err
	}
	attrs := ""
	if login {
		attrs = " LOGIN"
	}
	if _, err := conn.Exec(ctx, "ALTER ROLE "+ident(role)+" WITH"+attrs+" PASSWORD "+lit); err != nil {
		return fmt.Errorf("set password of role %s: %w", role, err)
	}
	return nil
}

// Lock removes LOGIN from a role: the previous alternating user's password
// stops working, its objects and grants stay.
func Lock(ctx context.Context, conn *pgx.Conn, role string) error {
	if _, err := conn.Exec(ctx, "ALTER ROLE "+ident(role)+" NOLOGIN"); err != nil {
		return fmt.Errorf("lock role %s: %w", role, err)
	}
	return nil
}

// RoleExists reports whether a role exists.
func RoleExists(ctx context.Context, conn *pgx.Conn, role string) (bool, error) {
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", role).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up role %s: %w", role, err)
	}
	return ok, nil
}

// IsMember reports whether role is a member of group.
func IsMember(ctx context.Context, conn *pgx.Conn, role, group string) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, "SELECT pg_has_role($1, $2, 'MEMBER')", role, group).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("check membership of %s in %s: %w", role, group, err)
	}
	return ok, nil
}

// SetupAlternating creates the two login roles of the alternating-users
// strategy as members of the owning role, without LOGIN until a rotation
// gives one a password. Sessions of either role run as the owner (SET
// role), so objects they create belong to the owner and both users keep
// access to them. Running it again changes nothing; it returns what it did.
func SetupAlternating(ctx context.Context, conn *pgx.Conn, owner string, users [2]string) ([]string, error) {
	var did []string
	if ok, err := RoleExists(ctx, conn, owner); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("owning role %s does not exist: create it, or fix postgres.role in the catalog", owner)
	}
	for _, u := range users {
		ok, err := RoleExists(ctx, conn, u)
		if err != nil {
			return did, err
		}
		if !ok {
			if _, err := conn.Exec(ctx, "CREATE ROLE "+ident(u)+" NOLOGIN"); err != nil {
				return did, fmt.Errorf("create role %s: %w", u, err)
			}
			did = append(did, "created role "+u)
		}
		member, err := IsMember(ctx, conn, u, owner)
		if err != nil {
			return did, err
		}
		if !member {
			if _, err := conn.Exec(ctx, "GRANT "+ident(owner)+" TO "+ident(u)); err != nil {
				return did, fmt.Errorf("grant %s to %s: %w", owner, u, err)
			}
			did = append(did, fmt.Sprintf("granted %s to %s", owner, u))
		}
		var setting bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
			WHERE r.rolname = $1 AND s.setdatabase = 0 AND $2 = ANY (s.setconfig))`, u, "role="+owner).Scan(&setting); err != nil {
			return did, fmt.Errorf("read settings of %s: %w", u, err)
		}
		if !setting {
			if _, err := conn.Exec(ctx, "ALTER ROLE "+ident(u)+" SET role TO "+ident(owner)); err != nil {
				return did, fmt.Errorf("make %s act as %s: %w", u, owner, err)
			}
			did = append(did, fmt.Sprintf("sessions of %s run as %s", u, owner))
		}
	}
	return did, nil
}

// adminOptionVersion is the first server_version_num at which CREATEROLE
// alone no longer lets a role change another role's password: PostgreSQL
// 16 also asks for ADMIN OPTION on that role.
const adminOptionVersion = 160000

// MissingAdminRights says what the connected role lacks to set the
// passwords of the given roles, or "" when it lacks nothing: SUPERUSER, or
// CREATEROLE and, from PostgreSQL 16 on, ADMIN OPTION on each role.
func MissingAdminRights(ctx context.Context, conn *pgx.Conn, roles []string) (string, error) {
	var name string
	var super, createRole bool
	var version int
	if err := conn.QueryRow(ctx, `SELECT rolname, rolsuper, rolcreaterole, current_setting('server_version_num')::int
		FROM pg_roles WHERE rolname = current_user`).Scan(&name, &super, &createRole, &version); err != nil {
		return "", fmt.Errorf("read the rights of the connected role: %w", err)
	}
	return missingRights(name, super, createRole, version, func(role string) (bool, error) {
		var ok bool
		err := conn.QueryRow(ctx, "SELECT pg_has_role(current_user, $1, 'USAGE WITH ADMIN OPTION')", role).Scan(&ok)
		if err != nil {
			return false, fmt.Errorf("check ADMIN OPTION on %s: %w", role, err)
		}
		return ok, nil
	}, roles)
}

// missingRights is MissingAdminRights' rule, apart from the queries.
func missingRights(name string, super, createRole bool, version int, hasAdmin func(string) (bool, error), roles []string) (string, error) {
	switch {
	case super:
		return "", nil
	case !createRole:
		return fmt.Sprintf("role %s has neither CREATEROLE nor SUPERUSER, and setting another role's password takes one of them: ALTER ROLE %s CREATEROLE", name, ident(name)), nil
	case version < adminOptionVersion:
		return "", nil
	}
	var without []string
	for _, r := range roles {
		ok, err := hasAdmin(r)
		if err != nil {
			return "", err
		}
		if !ok {
			without = append(without, r)
		}
	}
	if len(without) == 0 {
		return "", nil
	}
	grants := make([]string, len(without))
	for i, r := range without {
		grants[i] = fmt.Sprintf("GRANT %s TO %s WITH ADMIN OPTION", ident(r), ident(name))
	}
	return fmt.Sprintf("role %s has CREATEROLE but no ADMIN OPTION on %s, which PostgreSQL 16 and later ask for to set a password: %s",
		name, strings.Join(without, ", "), strings.Join(grants, "; ")), nil
}
