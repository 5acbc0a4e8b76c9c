package activities

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"k8s.io/client-go/kubernetes"

	"rotator/catalog"
	"rotator/redisacl"
)

// Redis holds what the redis steps need: the Kubernetes client to read
// passwords from Secrets, and the catalog, which alone says which server
// and which user a step acts on. Passwords are read inside each call and
// never returned; the server receives only their SHA-256, except in the
// AUTH that proves one works, over TLS.
type Redis struct {
	Kube    kubernetes.Interface
	Catalog *catalog.Catalog
}

// RedisPlan is what a redis rotation changes, from the catalog: the
// server, the ACL user and how the server keeps its users.
type RedisPlan struct {
	Server  redisacl.Server `json:"server"`
	User    string          `json:"user"`
	URLKey  string          `json:"urlKey,omitempty"`
	Persist string          `json:"persist"`
}

// RedisInput names the versions a redis step reads passwords from.
type RedisInput struct {
	Plan Plan      `json:"plan"`
	Old  SecretRef `json:"old,omitzero"`
	New  SecretRef `json:"new,omitzero"`
}

// redisPlanOf is the plan the catalog gives the target.
func redisPlanOf(t catalog.Target) *RedisPlan {
	c := t.Redis
	if c == nil {
		return nil
	}
	srv := redisacl.Server{Addr: c.Address, TLS: !c.Plaintext}
	if c.TLS != nil {
		srv.CAFile, srv.ServerName = c.TLS.CAFile, c.TLS.ServerName
	}
	return &RedisPlan{Server: srv, User: c.User, URLKey: c.URLKey, Persist: c.Persist}
}

// checkRedisPlan refuses a plan whose redis part is not the catalog's:
// the server receives the passwords, the user gets them.
func checkRedisPlan(t catalog.Target, p Plan) error {
	got, want := p.Redis, redisPlanOf(t)
	switch {
	case got == nil:
		return nil
	case want == nil:
		return refused(t.Name, "redis", "a redis plan", "no redis section")
	}
	return firstRefused(t.Name, []fieldCheck{
		{"redis.address", got.Server.Addr, want.Server.Addr, got.Server.Addr == want.Server.Addr},
		{"redis.plaintext", !got.Server.TLS, !want.Server.TLS, got.Server.TLS == want.Server.TLS},
		{"redis.tls.caFile", got.Server.CAFile, want.Server.CAFile, got.Server.CAFile == want.Server.CAFile},
		{"redis.tls.serverName", got.Server.ServerName, want.Server.ServerName, got.Server.ServerName == want.Server.ServerName},
		{"redis.user", got.User, want.User, got.User == want.User},
		{"redis.urlKey", got.URLKey, want.URLKey, got.URLKey == want.URLKey},
		{"redis.persist", got.Persist, want.Persist, got.Persist == want.Persist},
	})
}

// redisMaterial is a new password for the target's user, with the
// username, and the URL when the target keeps one in the Secret.
func redisMaterial() kindMaterial {
	return kindMaterial{
		generate: func(_ context.Context, _ *Kube, p Plan) (map[string][]byte, error) {
			if p.Redis == nil {
				return nil, badInput("redis target %s has no redis plan: preflight did not run", p.Target)
			}
			// 26 base32 characters, 130 bits: no quoting needed in a URL,
			// a shell or redis-cli.
			c := redisacl.Credentials{Username: p.Redis.User, Password: rand.Text()}
			data := map[string][]byte{catalog.RedisUsernameKey: []byte(c.Username), catalog.RedisPasswordKey: []byte(c.Password)}
			if p.Redis.URLKey != "" {
				data[p.Redis.URLKey] = []byte(redisacl.URL(p.Redis.Server, c))
			}
			return data, nil
		},
		written: func(t catalog.Target, _ bool) []string {
			keys := []string{catalog.RedisUsernameKey, catalog.RedisPasswordKey}
			if t.Redis != nil && t.Redis.URLKey != "" {
				keys = append(keys, t.Redis.URLKey)
			}
			return keys
		},
		secret: []string{catalog.RedisPasswordKey},
		embeddedFix: func(key string) string {
			return fmt.Sprintf("set redis.urlKey: %s so that rotator writes it with the new password, or remove the key", key)
		},
		checkPlan: checkRedisPlan,
	}
}

// PreflightRedis checks the redis side of a target before anything
// changes: the current Secret logs in as the catalog's user with one of
// its passwords, the admin user may change that user's passwords, and the
// server keeps its users the way the catalog says.
func (r *Redis) PreflightRedis(ctx context.Context, plan Plan) (Plan, error) {
	t, err := checkRedisInput(r.Catalog, RedisInput{Plan: plan})
	if err != nil {
		return plan, err
	}
	rp := redisPlanOf(t)
	cur, err := r.version(ctx, t, plan.Current.Name)
	if err != nil {
		return plan, err
	}
	if cur.Username != rp.User {
		return plan, badInput("target %s: Secret %s logs in as %q, not redis.user %q: fix the catalog or the Secret", t.Name, plan.Current.Name, cur.Username, rp.User)
	}
	admin, adminUser, err := r.admin(ctx, t, rp)
	if err != nil {
		return plan, err
	}
	defer admin.Close()
	if err := redisacl.CanManage(ctx, admin, adminUser, rp.User); err != nil {
		return plan, redisError(err, fmt.Sprintf("grant the admin user %s +acl (ACL SETUSER %s +acl)", adminUser, adminUser))
	}
	hashes, err := redisacl.PasswordHashes(ctx, admin, rp.User)
	if err != nil {
		return plan, redisError(err, "fix redis.user")
	}
	if !slices.Contains(hashes, redisacl.Hash(cur.Password)) {
		return plan, badInput("target %s: the password in Secret %s is not one of user %s's passwords, so its consumers cannot log in now: fix the Secret, then rotate", t.Name, plan.Current.Name, rp.User)
	}
	// Retire leaves the user the new password alone: a password no
	// version holds belongs to a consumer rotator does not know, which
	// retire would lock out.
	if len(hashes) > 1 {
		return plan, badInput("target %s: user %s has %d other password(s) besides the one in Secret %s, and retire keeps only the new one, which would lock out whoever uses them: give those consumers a user of their own, or remove the passwords (ACL SETUSER %s resetpass, then the current one), then rotate", t.Name, rp.User, len(hashes)-1, plan.Current.Name, rp.User)
	}
	if err := redisacl.Persist(ctx, admin, rp.Persist); err != nil {
		return plan, redisError(err, persistFix(rp.Persist))
	}
	plan.Redis = rp
	activity.GetLogger(ctx).Info("redis preflight passed", "target", t.Name, "user", rp.User, "persist", rp.Persist)
	return plan, nil
}

// ApplyRedisPassword adds the staged password to the user, beside the
// current one, which keeps working: no consumer is refused while they
// move. The server keeps it across a restart before the consumers move,
// and a login with it proves it first. Adding it twice changes nothing.
func (r *Redis) ApplyRedisPassword(ctx context.Context, in RedisInput) error {
	t, rp, staged, err := r.staged(ctx, in)
	if err != nil {
		return err
	}
	if err := r.change(ctx, t, rp, func(admin *redis.Client) error {
		return redisacl.AddPassword(ctx, admin, rp.User, staged.Password)
	}); err != nil {
		return err
	}
	activity.GetLogger(ctx).Info("password added to the ACL user", "user", rp.User, "fingerprint", in.New.Fingerprint)
	return r.login(ctx, rp, staged, in.New.Name)
}

// VerifyRedisLogin logs in with the new version, as a consumer does. A
// refused login is retried for RefusedLoginBudget (a replica may not have
// the change yet), then fails for good.
func (r *Redis) VerifyRedisLogin(ctx context.Context, in RedisInput) error {
	_, rp, staged, err := r.staged(ctx, in)
	if err != nil {
		return err
	}
	return r.login(ctx, rp, staged, in.New.Name)
}

// RemoveNewRedisPassword undoes ApplyRedisPassword during compensation,
// once the consumers are back on the previous version: the staged
// password stops working. The previous one was never touched.
func (r *Redis) RemoveNewRedisPassword(ctx context.Context, in RedisInput) error {
	return r.removeNew(ctx, in)
}

// RemoveOldRedisPassword leaves the user only the current version's
// password at retire, once nothing uses the previous one. Retire deletes
// the previous Secret first, so its password is not there to remove by:
// every password but the current one goes, which preflight made sure
// were this target's alone.
func (r *Redis) RemoveOldRedisPassword(ctx context.Context, in RedisInput) error {
	t, err := checkRedisInput(r.Catalog, in)
	if err != nil {
		return err
	}
	rp, err := redisPlan(in.Plan)
	if err != nil {
		return err
	}
	if in.New.Name == "" {
		return badInput("target %s: new: is required: the version that is current after promote", t.Name)
	}
	current, err := currentVersions(ctx, r.Kube, t)
	if err != nil {
		return err
	}
	if len(current) != 1 || current[0].Name != in.New.Name {
		return badInput("target %s: %s is not the one version labelled current (%d are): refused to remove the other passwords, nothing was changed", t.Name, in.New.Name, len(current))
	}
	v, err := r.version(ctx, t, in.New.Name)
	if err != nil {
		return err
	}
	if v.Username != rp.User {
		return badInput("target %s: new: Secret %s logs in as %q, not as redis.user %q: input refused, nothing was changed", t.Name, in.New.Name, v.Username, rp.User)
	}
	var removed int
	err = r.change(ctx, t, rp, func(admin *redis.Client) error {
		removed, err = redisacl.KeepOnly(ctx, admin, rp.User, v.Password)
		if errors.Is(err, redisacl.ErrNotAPassword) {
			return badInput("target %s: the current version %s's password is not one of user %s's: refused to remove the others, which would lock out every consumer; nothing was changed", t.Name, in.New.Name, rp.User)
		}
		return err
	})
	if err != nil {
		return err
	}
	activity.GetLogger(ctx).Info("previous passwords removed", "user", rp.User, "removed", removed, "kept", in.New.Fingerprint)
	return nil
}

// removeNew takes the staged version's password from the user, unless
// the version labelled current holds the same password: which version to
// remove comes from the input, and removing the consumers' password would
// be an outage. Its Secret may be gone (a retry after it was deleted):
// then there is nothing left to remove by.
func (r *Redis) removeNew(ctx context.Context, in RedisInput) error {
	t, err := checkRedisInput(r.Catalog, in)
	if err != nil {
		return err
	}
	rp, err := redisPlan(in.Plan)
	if err != nil {
		return err
	}
	ref := in.New
	if ref.Name == "" {
		return badInput("target %s: new: is required: the version whose password to remove", t.Name)
	}
	v, err := r.version(ctx, t, ref.Name)
	if errors.Is(err, errNoSecret) {
		activity.GetLogger(ctx).Warn("version gone; its password cannot be removed by this rotation", "secret", ref.Name)
		return nil
	}
	if err != nil {
		return err
	}
	current, err := currentVersions(ctx, r.Kube, t)
	if err != nil {
		return err
	}
	for _, s := range current {
		if s.Name == ref.Name {
			return badInput("target %s: %s is the current version, which the consumers use: refused to remove its password, nothing was changed", t.Name, ref.Name)
		}
		if string(s.Data[catalog.RedisPasswordKey]) == v.Password {
			return badInput("target %s: the password of %s is also that of the current version %s, which the consumers use: refused to remove it, nothing was changed", t.Name, ref.Name, s.Name)
		}
	}
	if err := r.change(ctx, t, rp, func(admin *redis.Client) error {
		return redisacl.RemovePassword(ctx, admin, rp.User, v.Password)
	}); err != nil {
		return err
	}
	activity.GetLogger(ctx).Info("password of the rolled-back version removed", "user", rp.User, "fingerprint", ref.Fingerprint)
	return nil
}

// change runs one change of the user's passwords as the target's admin,
// then has the server keep its users the catalog's way: a change only the
// running server knew would be undone by its next restart.
func (r *Redis) change(ctx context.Context, t catalog.Target, rp *RedisPlan, do func(admin *redis.Client) error) error {
	admin, _, err := r.admin(ctx, t, rp)
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := do(admin); err != nil {
		return redisError(err, "check the admin user's ACL rights")
	}
	if err := redisacl.Persist(ctx, admin, rp.Persist); err != nil {
		return redisError(err, persistFix(rp.Persist))
	}
	return nil
}

// login proves a password works for the plan's user, on a connection of
// its own.
func (r *Redis) login(ctx context.Context, rp *RedisPlan, c redisacl.Credentials, secret string) error {
	cfg, err := redisacl.TLSConfig(rp.Server)
	if err != nil {
		return badInput("redis.tls: %v", err)
	}
	if err := redisacl.CanLogin(ctx, rp.Server, c, cfg); err != nil {
		err = fmt.Errorf("log in as %s with %s: %w", c.Username, secret, err)
		if redisacl.IsAuthFailure(err) && time.Since(activity.GetInfo(ctx).ScheduledTime) >= RefusedLoginBudget {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%v: refused for %s", err, RefusedLoginBudget), ErrBadInput, err)
		}
		return err
	}
	return nil
}

// admin connects as the target's admin user, from its Secret.
func (r *Redis) admin(ctx context.Context, t catalog.Target, rp *RedisPlan) (*redis.Client, string, error) {
	ref := t.Redis.AdminSecret
	l, err := secretLogin(ctx, r.Kube, ref.Namespace, ref.Name, catalog.RedisUsernameKey, catalog.RedisPasswordKey)
	if err != nil {
		return nil, "", err
	}
	cfg, err := redisacl.TLSConfig(rp.Server)
	if err != nil {
		return nil, "", badInput("target %s: redis.tls: %v", t.Name, err)
	}
	c, err := redisacl.Connect(ctx, rp.Server, redisacl.Credentials{Username: l.username, Password: l.password}, cfg)
	if err != nil {
		return nil, "", redisError(err, "fix the admin Secret "+ref.Namespace+"/"+ref.Name)
	}
	return c, l.username, nil
}

// version reads the login of a version of the target.
func (r *Redis) version(ctx context.Context, t catalog.Target, name string) (redisacl.Credentials, error) {
	l, err := versionLogin(ctx, r.Kube, t, name, catalog.RedisUsernameKey, catalog.RedisPasswordKey)
	return redisacl.Credentials{Username: l.username, Password: l.password}, err
}

// staged returns the target, its plan and the new version's login, which
// must be the plan's user.
func (r *Redis) staged(ctx context.Context, in RedisInput) (catalog.Target, *RedisPlan, redisacl.Credentials, error) {
	t, err := checkRedisInput(r.Catalog, in)
	if err != nil {
		return t, nil, redisacl.Credentials{}, err
	}
	rp, err := redisPlan(in.Plan)
	if err != nil {
		return t, nil, redisacl.Credentials{}, err
	}
	if in.New.Name == "" {
		return t, nil, redisacl.Credentials{}, badInput("target %s: new: is required: the staged version", t.Name)
	}
	c, err := r.version(ctx, t, in.New.Name)
	if err == nil && c.Username != rp.User {
		err = badInput("target %s: new: Secret %s logs in as %q, not as redis.user %q: input refused, nothing was changed", t.Name, in.New.Name, c.Username, rp.User)
	}
	return t, rp, c, err
}

// checkRedisInput is checkPlan for the redis steps, with the versions
// they read passwords from.
func checkRedisInput(c *catalog.Catalog, in RedisInput) (catalog.Target, error) {
	return checkKindInput(c, in.Plan, catalog.KindRedis, in.Old, in.New)
}

func redisPlan(plan Plan) (*RedisPlan, error) {
	if plan.Redis == nil {
		return nil, badInput("target %s has no redis plan: PreflightRedis did not run", plan.Target)
	}
	return plan.Redis, nil
}

// redisError makes a refused login, a missing right or a server that
// cannot keep its users permanent, with the fix; an unreachable server
// stays retryable.
func redisError(err error, fix string) error {
	if err == nil {
		return nil
	}
	if redisacl.IsAuthFailure(err) || redisacl.IsPermissionDenied(err) || errors.Is(err, redisacl.ErrNotPersisted) || errors.Is(err, redisacl.ErrNotAllowed) || errors.Is(err, redisacl.ErrNoSuchUser) {
		return temporal.NewNonRetryableApplicationError(err.Error()+": "+fix, ErrBadInput, err)
	}
	return err
}

// persistFix is what to do when the server cannot keep its users the
// catalog's way.
func persistFix(mode string) string {
	switch mode {
	case redisacl.PersistACLSave:
		return "start the server with an aclfile, or set redis.persist: config-rewrite (users in redis.conf) or none (a managed service)"
	case redisacl.PersistConfigRewrite:
		return "start the server with a redis.conf, or set redis.persist: acl-save (an aclfile) or none (a managed service)"
	}
	return "fix redis.persist"
}
