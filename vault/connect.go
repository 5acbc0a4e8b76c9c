package vault

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"rotator/internal/loopback"
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
