package vault

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"rotator/internal/vaulterr"

	kubeauth "github.com/hashicorp/vault/api/auth/kubernetes"
)

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
