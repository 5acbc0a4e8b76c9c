package vault

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	kubeauth "github.com/hashicorp/vault/api/auth/kubernetes"
	"rotator/internal/loopback"
	"rotator/internal/vaulterr"
)

// The auth methods Connect supports.
const (
	// MethodToken uses a token given by the environment: for development
	// and for tokens issued by an agent outside rotator.
	MethodToken = "token"
	// MethodKubernetes logs in with the worker's ServiceAccount token: the
	// method for a worker running in a cluster, with no long-lived secret.
	MethodKubernetes = "kubernetes"
)

// Defaults of the kubernetes method, the same as Vault's own.
const (
	// DefaultKubernetesMountPath is where `vault auth enable kubernetes`
	// mounts the method.
	DefaultKubernetesMountPath = "kubernetes"
	// DefaultServiceAccountTokenPath is where deploy/base mounts the
	// worker's projected ServiceAccount token for Vault: audience
	// DefaultAudience, short-lived, rotated by the kubelet.
	DefaultServiceAccountTokenPath = "/var/run/secrets/vault/token"
	// APIServerTokenPath is where Kubernetes mounts a pod's own token, whose
	// audience is the API server: sent to Vault, it would let Vault, or
	// whoever reads what Vault received, call the API server as the worker.
	// The kubernetes method refuses it.
	APIServerTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	// DefaultAudience is the audience the worker's token for Vault must
	// carry, and the Vault role's audience setting (deploy/vault/setup.sh).
	DefaultAudience = "vault"
)

// The environment variables the token method reads, in this order, after
// Vault's own VAULT_TOKEN; ~/.vault-token (what `vault login` writes) is
// the last resort.
const (
	// EnvToken is Vault's own variable for a token.
	EnvToken = "VAULT_TOKEN"
	// EnvTokenFile names a file holding a token: the devstack's convention,
	// which keeps the token out of the process environment and ps output.
	EnvTokenFile = "VAULT_TOKEN_FILE"
)

// loginTimeout bounds one background re-login attempt.
const loginTimeout = 30 * time.Second

// Auth says how the worker authenticates to Vault. The address, namespace
// and TLS settings are not here: they come from Vault's own environment
// variables (VAULT_ADDR, VAULT_NAMESPACE, VAULT_CACERT, VAULT_CAPATH,
// VAULT_CLIENT_CERT, VAULT_CLIENT_KEY, VAULT_SKIP_VERIFY,
// VAULT_TLS_SERVER_NAME, ...), so the worker is configured like every
// other Vault client.
type Auth struct {
	// Method is MethodToken (the default when empty) or MethodKubernetes.
	Method string
	// Role is the Vault role of the kubernetes method, bound to the
	// worker's ServiceAccount.
	Role string
	// MountPath is where the kubernetes method is enabled; default
	// DefaultKubernetesMountPath.
	MountPath string
	// TokenPath is the ServiceAccount token file of the kubernetes method;
	// default DefaultServiceAccountTokenPath. It is read at every login,
	// because Kubernetes rotates projected tokens.
	TokenPath string
	// Audience is the audience the token must carry (default
	// DefaultAudience); a token without it is never sent.
	Audience string
}

// Connect returns a Vault client logged in as a says, and a func that stops
// keeping its token alive; call it when the worker shuts down.
//
// ctx bounds the first login only. The token is then kept alive in the
// background until the returned func is called: a renewable token is
// renewed with a LifetimeWatcher; with the kubernetes method, rotator logs
// in again when renewal is no longer possible (max TTL reached, token
// revoked), retrying with backoff. A token given by the environment cannot
// be replaced: when it can no longer be renewed, Connect's goroutine logs
// a warning saying so.
//
// The token and the ServiceAccount token are never logged.
func Connect(ctx context.Context, a Auth, log *slog.Logger) (*vaultapi.Client, func(), error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch a.Method {
	case "", MethodToken:
		if a.Role != "" || a.MountPath != "" || a.TokenPath != "" || a.Audience != "" {
			return nil, nil, errors.New("vault: auth role, mount path, token path and audience are only used by the kubernetes method: remove them or set the method to kubernetes")
		}
	case MethodKubernetes:
		if strings.TrimSpace(a.Role) == "" {
			return nil, nil, errors.New("vault: auth role is empty: the kubernetes method needs the Vault role bound to the worker's ServiceAccount (vault write auth/kubernetes/role/<role> ...)")
		}
	default:
		return nil, nil, fmt.Errorf("vault: auth method %q is not supported: use %q or %q", truncate(a.Method), MethodToken, MethodKubernetes)
	}

	cfg := vaultapi.DefaultConfig()
	if cfg.Error != nil {
		return nil, nil, fmt.Errorf("vault: read the VAULT_* environment (TLS settings): %w", cfg.Error)
	}
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("vault: create a client for %s (check VAULT_ADDR and the VAULT_* TLS settings): %w", cfg.Address, err)
	}
	if err := checkAddress(c.Address()); err != nil {
		return nil, nil, err
	}
	log = log.With("vault_addr", c.Address())
	if ns := c.Namespace(); ns != "" {
		log = log.With("vault_namespace", ns)
	}

	bg, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}

	if a.Method == MethodKubernetes {
		k := &kubeLogin{c: c, log: log, role: a.Role,
			mount:     cleanMount(a.MountPath),
			tokenPath: cmp.Or(a.TokenPath, DefaultServiceAccountTokenPath),
			audience:  cmp.Or(a.Audience, DefaultAudience)}
		sec, err := k.login(ctx)
		if err != nil {
			cancel()
			return nil, nil, err
		}
		log.Info("vault: logged in", "method", MethodKubernetes, "role", k.role, "mount", "auth/"+k.mount,
			"policies", sec.Auth.Policies, "ttl", seconds(sec.Auth.LeaseDuration), "renewable", sec.Auth.Renewable)
		go func() {
			defer close(done)
			k.keepAlive(bg, sec)
		}()
		return c, stop, nil
	}

	tok, source, err := tokenFromEnv()
	if err != nil {
		cancel()
		return nil, nil, err
	}
	c.SetToken(tok)
	sec, err := lookupSelf(ctx, c, source)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	go func() {
		defer close(done)
		if !sec.Auth.Renewable || sec.Auth.LeaseDuration <= 0 {
			return
		}
		if watch(bg, c, sec, log) {
			log.Warn("vault: the token can no longer be renewed and will expire; give the worker a new one and restart it, or use the kubernetes method",
				"source", source)
		}
	}()
	return c, stop, nil
}

// tokenFromEnv finds the token method's token and says where it came from.
func tokenFromEnv() (token, source string, err error) {
	if t := strings.TrimSpace(os.Getenv(EnvToken)); t != "" {
		return t, EnvToken, nil
	}
	if f := os.Getenv(EnvTokenFile); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", "", fmt.Errorf("vault: read the token file named by %s: %w", EnvTokenFile, err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", "", fmt.Errorf("vault: the token file %s (from %s) is empty: write the token into it", f, EnvTokenFile)
		}
		return t, EnvTokenFile + " " + f, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		f := filepath.Join(home, ".vault-token")
		b, err := os.ReadFile(f)
		switch {
		case err == nil && strings.TrimSpace(string(b)) != "":
			return strings.TrimSpace(string(b)), f, nil
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return "", "", fmt.Errorf("vault: read %s: %w", f, err)
		}
	}
	return "", "", fmt.Errorf("vault: no token: set %s, or %s to a file holding one, or run `vault login` (it writes ~/.vault-token); in a cluster use the kubernetes auth method",
		EnvToken, EnvTokenFile)
}

// lookupSelf checks the token now, so a wrong one fails at startup with a
// clear message instead of at the first rotation, and returns what Vault
// says about it as an auth Secret a LifetimeWatcher can renew.
func lookupSelf(ctx context.Context, c *vaultapi.Client, source string) (*vaultapi.Secret, error) {
	op := "check the token from " + source
	info, err := c.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		err = call{op: op, capability: "read", apiPath: "auth/token/lookup-self"}.fail(err)
		if IsPermissionDenied(err) {
			return nil, newError(kindPermission, op, "", "Vault refused the token: it is invalid, expired or revoked (or its policies lack auth/token/lookup-self, which the default policy grants); set a valid one")
		}
		return nil, err
	}
	if info == nil || info.Data == nil {
		return nil, newError(kindInvalid, op, "", "Vault returned nothing for the token lookup")
	}
	renewable, _ := info.TokenIsRenewable()
	ttl, _ := info.TokenTTL()
	policies, _ := info.TokenPolicies()
	return &vaultapi.Secret{Auth: &vaultapi.SecretAuth{
		ClientToken:   c.Token(),
		Policies:      policies,
		Renewable:     renewable,
		LeaseDuration: int(ttl.Seconds()),
	}}, nil
}

// kubeLogin logs in with the kubernetes method, again whenever needed.
type kubeLogin struct {
	c         *vaultapi.Client
	log       *slog.Logger
	role      string
	mount     string
	tokenPath string
	audience  string
}

// login reads the ServiceAccount token, logs in on a clone of the client
// (so requests running meanwhile keep the old token rather than none) and
// sets the new token on the client.
func (k *kubeLogin) login(ctx context.Context) (*vaultapi.Secret, error) {
	op := fmt.Sprintf("log in as role %q at auth/%s", k.role, k.mount)
	b, err := os.ReadFile(k.tokenPath)
	if err != nil {
		return nil, newError(kindInvalid, op, "",
			"read the ServiceAccount token: %v: set the token path to the pod's token file, or let Kubernetes mount it (automountServiceAccountToken, or a projected serviceAccountToken volume)", err)
	}
	jwt := strings.TrimSpace(string(b))
	if jwt == "" {
		return nil, newError(kindInvalid, op, "", "the ServiceAccount token file %s is empty", k.tokenPath)
	}
	if err := checkAudience(jwt, k.audience); err != nil {
		return nil, newError(kindInvalid, op, "", "the ServiceAccount token in %s: %v", k.tokenPath, err)
	}
	method, err := kubeauth.NewKubernetesAuth(k.role, kubeauth.WithServiceAccountToken(jwt), kubeauth.WithMountPath(k.mount))
	if err != nil {
		return nil, newError(kindInvalid, op, "", "%v", err)
	}
	lc, err := k.c.CloneWithHeaders()
	if err != nil {
		return nil, newError(kindInvalid, op, "", "clone the client: %v", err)
	}
	lc.ClearToken()
	sec, err := method.Login(ctx, lc)
	if err != nil {
		return nil, k.fail(op, jwt, err)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return nil, newError(kindInvalid, op, "", "Vault answered the login without a token: is auth/%s a kubernetes auth method?", k.mount)
	}
	k.c.SetToken(sec.Auth.ClientToken)
	return sec, nil
}

// fail explains a refused login with the setting to change.
func (k *kubeLogin) fail(op, jwt string, err error) error {
	c := call{op: op, capability: "update", apiPath: "auth/" + k.mount + "/login", secrets: map[string]string{"jwt": jwt}}
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		said := c.redact(vaulterr.Said(re))
		switch {
		case strings.Contains(said, "invalid role name"):
			return newError(kindInvalid, op, "",
				"Vault has no role %q (%s): set the role to an existing one, or create it: vault write auth/%s/role/%s bound_service_account_names=<sa> bound_service_account_namespaces=<namespace> policies=<policy>",
				k.role, said, k.mount, k.role)
		case re.StatusCode == 404 || strings.Contains(said, "no handler for route"):
			return newError(kindInvalid, op, "",
				"no auth method is enabled at auth/%s (%s): set the mount path to where the kubernetes method is enabled, or enable it: vault auth enable -path=%s kubernetes",
				k.mount, said, k.mount)
		case said == "permission denied":
			// Vault says no more than this for a login to a mount that
			// does not exist, and the plugin for a token that fails
			// review or a bound CIDR that does not match.
			e := newError(kindPermission, op, "",
				"Vault refused the login without a reason: check that the kubernetes method is enabled at auth/%s (fix the mount path, or vault auth enable -path=%s kubernetes), that Vault can review the ServiceAccount token from %s (the reviewer needs the system:auth-delegator ClusterRole; an expired token or an audience the role does not accept fails review), and the role's token_bound_cidrs",
				k.mount, k.mount, k.tokenPath)
			e.Status = re.StatusCode
			return e
		case re.StatusCode == 403 || strings.Contains(said, "not authorized"):
			e := newError(kindPermission, op, "",
				"Vault refused the ServiceAccount token from %s (%s): the role must bind this ServiceAccount's name and namespace (bound_service_account_names, bound_service_account_namespaces)",
				k.tokenPath, said)
			e.Status = re.StatusCode
			return e
		}
	}
	return c.fail(err)
}

// keepAlive renews the token until renewal is no longer possible, then
// logs in again, until ctx ends.
func (k *kubeLogin) keepAlive(ctx context.Context, sec *vaultapi.Secret) {
	for {
		if !watch(ctx, k.c, sec, k.log) {
			return
		}
		sec = k.relogin(ctx)
		if sec == nil {
			return
		}
	}
}

// relogin logs in until it succeeds or ctx ends; it returns nil then.
func (k *kubeLogin) relogin(ctx context.Context) *vaultapi.Secret {
	delay := time.Second
	for {
		lctx, cancel := context.WithTimeout(ctx, loginTimeout)
		sec, err := k.login(lctx)
		cancel()
		if err == nil {
			k.log.Info("vault: logged in again", "method", MethodKubernetes, "role", k.role,
				"ttl", seconds(sec.Auth.LeaseDuration), "renewable", sec.Auth.Renewable)
			return sec
		}
		if ctx.Err() != nil {
			return nil
		}
		k.log.Error("vault: logging in again failed; requests fail until it succeeds", "error", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Minute)
	}
}

// watch renews sec's token with a LifetimeWatcher. It returns true when
// the token needs replacing (renewal refused, or its max TTL is near) and
// false when ctx ended first. A token without a TTL never expires.
func watch(ctx context.Context, c *vaultapi.Client, sec *vaultapi.Secret, log *slog.Logger) bool {
	if sec.Auth == nil || sec.Auth.LeaseDuration <= 0 {
		<-ctx.Done()
		return false
	}
	w, err := c.NewLifetimeWatcher(&vaultapi.LifetimeWatcherInput{Secret: sec})
	if err != nil {
		log.Warn("vault: cannot watch the token's lifetime", "error", err)
		return true
	}
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case err := <-w.DoneCh():
			if err != nil {
				log.Warn("vault: token renewal failed", "error", err)
			} else {
				log.Info("vault: token renewal is over (max TTL near or not renewable)")
			}
			return true
		case r := <-w.RenewCh():
			if r.Secret != nil && r.Secret.Auth != nil {
				log.Debug("vault: token renewed", "ttl", seconds(r.Secret.Auth.LeaseDuration))
			}
		}
	}
}

// cleanMount accepts "kubernetes", "/kubernetes/" and "auth/kubernetes".
func cleanMount(m string) string {
	m = strings.Trim(m, "/")
	m = strings.TrimPrefix(m, "auth/")
	return cmp.Or(m, DefaultKubernetesMountPath)
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }

// checkAddress refuses a Vault address in plain http to a host other than
// loopback: tokens and secret values would cross the network in clear.
func checkAddress(addr string) error {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return fmt.Errorf("vault: VAULT_ADDR %q is not a URL: set it to e.g. https://vault.vault.svc:8200", addr)
	}
	if u.Scheme == "https" || (u.Scheme == "http" && loopback.Is(u.Hostname())) {
		return nil
	}
	return fmt.Errorf("vault: VAULT_ADDR %s is %s to a host that is not loopback: tokens and secret values would travel in clear text; use https:// (with VAULT_CACERT for a private CA)", u.Redacted(), u.Scheme)
}

// checkAudience reads the token's aud claim (Vault and the API server
// verify the signature; here it is only read) and refuses a token that is
// not for audience, such as the API server's own token.
func checkAudience(jwt, audience string) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return errors.New("is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("is not a JWT: %w", err)
	}
	var claims struct {
		Aud audiences `json:"aud"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return fmt.Errorf("is not a JWT: %w", err)
	}
	if slices.Contains(claims.Aud, audience) {
		return nil
	}
	return fmt.Errorf("is for audience %q, not %q, so it is not sent: mount a projected serviceAccountToken with audience %q (deploy/base does, at %s) and give the Vault role audience=%s; the API server's token (%s) would let Vault act as the worker on the API server",
		strings.Join(claims.Aud, ","), audience, audience, DefaultServiceAccountTokenPath, audience, APIServerTokenPath)
}

// audiences is a JWT aud claim, a string or a list of strings.
type audiences []string

// UnmarshalJSON accepts both forms of the claim.
func (a *audiences) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audiences{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}
