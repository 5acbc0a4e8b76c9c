package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"k8s.io/client-go/kubernetes"

	"rotator/catalog"
	"rotator/postgres"
)

// Postgres holds what the database steps need: the Kubernetes client to
// read credentials from Secrets, and the catalog. Passwords are read from
// Secrets inside each call and never returned.
type Postgres struct {
	Kube    kubernetes.Interface
	Catalog *catalog.Catalog
}

// PreflightDatabase checks the database side of a postgres target and
// completes the plan with the role the new version logs in as.
func (p *Postgres) PreflightDatabase(ctx context.Context, plan Plan) (Plan, error) {
	t, err := checkPlan(p.Catalog, plan)
	if err != nil {
		return plan, err
	}
	if t.Postgres == nil {
		return plan, badInput("target %s: postgres: is required for kind postgres", t.Name)
	}
	c := t.Postgres
	pp := &PostgresPlan{
		Server:   postgres.Server{Host: c.Host, Port: c.Port, Database: c.Database, SSLMode: c.SSLMode},
		Strategy: c.Strategy, Role: c.Role, Users: c.Users, DSNKey: c.DSNKey, DSNSSLMode: c.DSNSSLMode,
	}
	cur, err := p.version(ctx, t, plan.Current.Name)
	if err != nil {
		return plan, err
	}
	switch c.Strategy {
	case catalog.StrategySingleUser:
		if cur.Username != c.Role {
			return plan, badInput("target %s: Secret %s logs in as %q, not postgres.role %q: fix the catalog or the Secret",
				t.Name, plan.Current.Name, cur.Username, c.Role)
		}
		// The role changes its own password with the current one, so it
		// must work now; if it does not, the consumers are broken already.
		if err := postgres.CanLogin(ctx, pp.Server, cur); err != nil {
			return plan, dbError(fmt.Errorf("target %s: the credentials in Secret %s: %w", t.Name, plan.Current.Name, err),
				"fix the Secret so it holds the role's current password")
		}
		pp.Username = c.Role
	case catalog.StrategyAlternating:
		conn, err := p.admin(ctx, t)
		if err != nil {
			return plan, err
		}
		defer conn.Close(context.Background())
		for _, r := range append([]string{c.Role}, c.Users...) {
			ok, err := postgres.RoleExists(ctx, conn, r)
			if err != nil {
				return plan, err
			}
			if !ok {
				return plan, badInput("target %s: role %q does not exist: run 'starter postgres setup %s' to create the login roles",
					t.Name, r, t.Name)
			}
		}
		for _, u := range c.Users {
			member, err := postgres.IsMember(ctx, conn, u, c.Role)
			if err != nil {
				return plan, err
			}
			if !member {
				return plan, badInput("target %s: role %q is not a member of %q: run 'starter postgres setup %s'", t.Name, u, c.Role, t.Name)
			}
		}
		if missing, err := postgres.MissingAdminRights(ctx, conn, c.Users); err != nil {
			return plan, dbError(err, "check the admin role")
		} else if missing != "" {
			return plan, badInput("target %s: postgres.adminSecret: %s", t.Name, missing)
		}
		switch cur.Username {
		case c.Users[0]:
			pp.Username = c.Users[1]
		case c.Users[1], c.Role:
			pp.Username = c.Users[0]
		default:
			return plan, badInput("target %s: Secret %s logs in as %q, which is neither %q nor one of %v: fix the Secret or the catalog",
				t.Name, plan.Current.Name, cur.Username, c.Role, c.Users)
		}
		// The other role takes the new password only if nothing still
		// logs in as it with an older one (a version retire kept).
		for _, l := range plan.Lingering {
			if l.Username == pp.Username {
				return plan, badInput("target %s: role %q would take the new password, but %s still log%s in as it with Secret %s: delete %s, or repoint %s to Secret %s, then rotate again",
					t.Name, pp.Username, strings.Join(l.UsedBy, ", "), plural(len(l.UsedBy)), l.Name, l.Name, them(len(l.UsedBy)), plan.Current.Name)
			}
		}
	}
	plan.Postgres = pp
	activity.GetLogger(ctx).Info("database preflight passed", "target", t.Name, "strategy", c.Strategy,
		"from_user", cur.Username, "to_user", pp.Username)
	return plan, nil
}

// ApplyPassword makes the server accept the staged password, sending only
// its SCRAM verifier. If the staged password already logs in, it did so
// before (a retry), and nothing is sent.
func (p *Postgres) ApplyPassword(ctx context.Context, in DatabaseInput) error {
	t, err := checkDatabase(p.Catalog, in)
	if err != nil {
		return err
	}
	pp, staged, err := p.staged(ctx, t, in)
	if err != nil {
		return err
	}
	if postgres.CanLogin(ctx, pp.Server, staged) == nil {
		activity.GetLogger(ctx).Info("staged password already works; nothing to apply", "role", staged.Username)
		return nil
	}
	verifier, err := postgres.Verifier(staged.Password)
	if err != nil {
		return err
	}
	conn, err := p.changer(ctx, t, in.Plan, in.Old)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	alternating := pp.Strategy == catalog.StrategyAlternating
	if err := postgres.SetPassword(ctx, conn, staged.Username, verifier, alternating); err != nil {
		return dbError(err, "check the role's privileges (PostgreSQL 16 and later: the admin role needs ADMIN OPTION on it)")
	}
	activity.GetLogger(ctx).Info("password set from its SCRAM verifier", "role", staged.Username, "fingerprint", in.New.Fingerprint)
	// The consumers move only once the new login is proven: pg_hba.conf,
	// CONNECT on the database, an expiry (VALID UNTIL) or a connection
	// limit can refuse a password the server accepted.
	if err := postgres.CanLogin(ctx, pp.Server, staged); err != nil {
		return loginError(fmt.Errorf("the password of %s was set, but logging in with it fails, so no consumer was moved: %w: check pg_hba.conf, CONNECT on database %s, the role's VALID UNTIL and CONNECTION LIMIT",
			staged.Username, err, pp.Server.Database), time.Since(activity.GetInfo(ctx).ScheduledTime))
	}
	return nil
}

// RestorePassword undoes ApplyPassword during compensation. Single-user:
// the role gets its previous password back, so the previous Secret works
// again. Alternating-users: the previous role was never changed.
func (p *Postgres) RestorePassword(ctx context.Context, in DatabaseInput) error {
	t, err := checkDatabase(p.Catalog, in)
	if err != nil {
		return err
	}
	pp, err := pgPlan(in.Plan)
	if err != nil {
		return err
	}
	if pp.Strategy != catalog.StrategySingleUser {
		return nil
	}
	old, err := p.version(ctx, t, in.Old.Name)
	if err != nil {
		return err
	}
	if postgres.CanLogin(ctx, pp.Server, old) == nil {
		return nil
	}
	staged, err := p.version(ctx, t, in.New.Name)
	if err != nil {
		return err
	}
	conn, err := postgres.Connect(ctx, pp.Server, staged)
	if err != nil {
		return dbError(err, "the role's password is neither the previous nor the staged one: set it by hand")
	}
	defer conn.Close(context.Background())
	verifier, err := postgres.Verifier(old.Password)
	if err != nil {
		return err
	}
	if err := postgres.SetPassword(ctx, conn, old.Username, verifier, false); err != nil {
		return err
	}
	activity.GetLogger(ctx).Info("previous password restored", "role", old.Username, "fingerprint", in.Old.Fingerprint)
	return nil
}

// LockNewUser undoes ApplyPassword of an alternating-users rotation during
// compensation, once the consumers are back on the previous user: the user
// that was to become current loses LOGIN again, so the password that
// rotation set stops working. Single-user: nothing (RestorePassword undid
// it).
func (p *Postgres) LockNewUser(ctx context.Context, in DatabaseInput) error {
	t, err := checkDatabase(p.Catalog, in)
	if err != nil {
		return err
	}
	pp, err := pgPlan(in.Plan)
	if err != nil {
		return err
	}
	if pp.Strategy != catalog.StrategyAlternating || in.New.Username == "" || in.New.Username == in.Old.Username ||
		!slices.Contains(pp.Users, in.New.Username) {
		return nil
	}
	return p.lock(ctx, t, in.New.Username, "login role of the rolled-back version locked")
}

// RefusedLoginBudget is how long VerifyLogin keeps retrying a login the
// server refuses before it fails for good.
const RefusedLoginBudget = time.Minute

// VerifyLogin logs in with the new version and runs SELECT 1. A refused
// login is retried for RefusedLoginBudget, counted from the first attempt
// (a replica or pooler may not have the change yet), then fails for good.
// An unreachable server stays retryable however long it lasts: the retry
// policy bounds that, and the attempts an outage used must not count
// against the password.
func (p *Postgres) VerifyLogin(ctx context.Context, in DatabaseInput) error {
	t, err := checkDatabase(p.Catalog, in)
	if err != nil {
		return err
	}
	pp, staged, err := p.staged(ctx, t, in)
	if err != nil {
		return err
	}
	if err := postgres.CanLogin(ctx, pp.Server, staged); err != nil {
		return loginError(fmt.Errorf("log in with %s: %w", in.New.Name, err), time.Since(activity.GetInfo(ctx).ScheduledTime))
	}
	return nil
}

// loginError keeps a failed login check retryable, unless the server has
// refused the password for RefusedLoginBudget since the first attempt.
func loginError(err error, sinceFirstAttempt time.Duration) error {
	if postgres.IsLoginRefused(err) && sinceFirstAttempt >= RefusedLoginBudget {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%v: refused for %s", err, RefusedLoginBudget), ErrBadInput, err)
	}
	return err
}

// LockPreviousUser removes LOGIN from the alternating user that the
// consumers left, at retire, so its password stops working.
func (p *Postgres) LockPreviousUser(ctx context.Context, in DatabaseInput) error {
	t, err := checkDatabase(p.Catalog, in)
	if err != nil {
		return err
	}
	pp, err := pgPlan(in.Plan)
	if err != nil {
		return err
	}
	if pp.Strategy != catalog.StrategyAlternating || !slices.Contains(pp.Users, in.Old.Username) || in.Old.Username == pp.Username {
		return nil
	}
	return p.lock(ctx, t, in.Old.Username, "previous login role locked")
}

// lock removes LOGIN from one of the target's login roles, as its admin,
// unless the version labelled current logs in as it: which role is the
// previous one comes from the input, and locking the one the consumers
// run on would be an outage.
func (p *Postgres) lock(ctx context.Context, t catalog.Target, role, done string) error {
	current, err := currentVersions(ctx, p.Kube, t)
	if err != nil {
		return err
	}
	for _, s := range current {
		if string(s.Data[postgres.UsernameKey]) == role {
			return badInput("target %s: role %s is the login of the current version %s, which the consumers use: refused to lock it, nothing was changed",
				t.Name, role, s.Name)
		}
	}
	conn, err := p.admin(ctx, t)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := postgres.Lock(ctx, conn, role); err != nil {
		return dbError(err, "check the admin role's privileges")
	}
	activity.GetLogger(ctx).Info(done, "role", role)
	return nil
}

// changer connects as whoever may change the new version's password: the
// role itself (single-user, with the previous Secret) or the admin.
func (p *Postgres) changer(ctx context.Context, t catalog.Target, plan Plan, old SecretRef) (*pgx.Conn, error) {
	pp := plan.Postgres
	if pp.Strategy == catalog.StrategySingleUser {
		cur, err := p.version(ctx, t, old.Name)
		if err != nil {
			return nil, err
		}
		conn, err := postgres.Connect(ctx, pp.Server, cur)
		return conn, dbError(err, "the current password no longer works: fix Secret "+old.Name)
	}
	return p.admin(ctx, t)
}

// admin connects with the target's admin Secret.
func (p *Postgres) admin(ctx context.Context, t catalog.Target) (*pgx.Conn, error) {
	ref := t.Postgres.AdminSecret
	c, err := p.credentials(ctx, ref.Namespace, ref.Name)
	if err != nil {
		return nil, err
	}
	conn, err := postgres.Connect(ctx, postgres.Server{Host: t.Postgres.Host, Port: t.Postgres.Port,
		Database: t.Postgres.Database, SSLMode: t.Postgres.SSLMode}, c)
	return conn, dbError(err, "fix the admin Secret "+ref.Namespace+"/"+ref.Name)
}

func (p *Postgres) credentials(ctx context.Context, ns, name string) (postgres.Credentials, error) {
	l, err := secretLogin(ctx, p.Kube, ns, name, postgres.UsernameKey, postgres.PasswordKey)
	return postgres.Credentials{Username: l.username, Password: l.password}, err
}

// version reads the credentials of a version of the target.
func (p *Postgres) version(ctx context.Context, t catalog.Target, name string) (postgres.Credentials, error) {
	l, err := versionLogin(ctx, p.Kube, t, name, postgres.UsernameKey, postgres.PasswordKey)
	return postgres.Credentials{Username: l.username, Password: l.password}, err
}

// staged returns the database plan and the new version's credentials,
// which log in as the role the plan says.
func (p *Postgres) staged(ctx context.Context, t catalog.Target, in DatabaseInput) (*PostgresPlan, postgres.Credentials, error) {
	pp, err := pgPlan(in.Plan)
	if err != nil {
		return nil, postgres.Credentials{}, err
	}
	c, err := p.version(ctx, t, in.New.Name)
	if err == nil && c.Username != pp.Username {
		err = badInput("target %s: new: Secret %s logs in as %q, not as %q, the role the plan gives the new version: input refused, nothing was changed",
			t.Name, in.New.Name, c.Username, pp.Username)
	}
	return pp, c, err
}

func pgPlan(plan Plan) (*PostgresPlan, error) {
	if plan.Postgres == nil {
		return nil, badInput("target %s has no database plan: PreflightDatabase did not run", plan.Target)
	}
	return plan.Postgres, nil
}

// dbError makes a refused login or a missing privilege permanent, with a
// hint; an unreachable server stays retryable.
func dbError(err error, fix string) error {
	if err == nil {
		return nil
	}
	if postgres.IsAuthFailure(err) || postgres.IsPermissionDenied(err) {
		return temporal.NewNonRetryableApplicationError(err.Error()+": "+fix, ErrBadInput, err)
	}
	if errors.Is(err, postgres.ErrNotEncrypted) {
		// Its message names the fix; another attempt gets the same server.
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, err)
	}
	return err
}
