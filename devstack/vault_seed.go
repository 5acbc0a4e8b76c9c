package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// vaultClient calls Vault's HTTP API with a token, which travels only in the
// X-Vault-Token header: never in a URL, an argument or a message.
type vaultClient struct {
	addr  string
	token string
	http  *http.Client
}

// client reads the root token from its file.
func (v *vaultServer) client() (*vaultClient, error) {
	data, err := os.ReadFile(v.tokenFile())
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	return &vaultClient{addr: v.addr(), token: strings.TrimSpace(string(data)), http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// vaultError is a non-2xx answer; Vault's messages never contain the token.
type vaultError struct {
	method, path string
	status       int
	errors       []string
}

// Error implements error.
func (e *vaultError) Error() string {
	msg := strings.Join(e.errors, "; ")
	if msg == "" {
		msg = http.StatusText(e.status)
	}
	return fmt.Sprintf("vault: %s /v1/%s: %d %s", e.method, e.path, e.status, strings.TrimSpace(msg))
}

// do sends body (JSON, if not nil) to /v1/<path> and decodes the response's
// data field into out (if not nil). Non-2xx answers are *vaultError.
func (c *vaultClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	// LIST is Vault's own verb; GET with list=true is the same request
	// without a method that proxies and Go's client may not expect.
	query := ""
	if method == "LIST" {
		method, query = http.MethodGet, "?list=true"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.addr+"/v1/"+path+query, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-Vault-Token", c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("vault: %s /v1/%s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("vault: %s /v1/%s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &vaultError{method: method, path: path, status: resp.StatusCode}
		var eb struct{ Errors []string }
		if json.Unmarshal(raw, &eb) == nil {
			e.errors = eb.Errors
		}
		return e
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	var env struct{ Data json.RawMessage }
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("vault: %s /v1/%s: %w", method, path, err)
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return fmt.Errorf("vault: %s /v1/%s: no data in the response", method, path)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("vault: %s /v1/%s: %w", method, path, err)
	}
	return nil
}

// isStatus reports whether err is a Vault answer with the given status.
func isStatus(err error, status int) bool {
	var ve *vaultError
	return errors.As(err, &ve) && ve.status == status
}

// vaultMount is one entry of sys/mounts.
type vaultMount struct {
	Type    string            `json:"type"`
	Options map[string]string `json:"options"`
}

// seed makes Vault hold what rotator expects, creating only what is absent:
// KV v2 at secret/ (dev mode mounts it already), the PKI engine at pki/ with
// a root CA and the devstack role. Then it blanks the secrets Vault printed
// in its log.
func (v *vaultServer) seed(ctx context.Context) error {
	c, err := v.client()
	if err != nil {
		return err
	}
	var mounts map[string]json.RawMessage
	if err := c.do(ctx, http.MethodGet, "sys/mounts", nil, &mounts); err != nil {
		if isStatus(err, http.StatusForbidden) {
			return fmt.Errorf("%w: the running Vault was started with another root token than %s; `devstack down && devstack up` restarts it", err, v.tokenFile())
		}
		return err
	}
	mount := func(path string) (*vaultMount, error) {
		raw, ok := mounts[path+"/"]
		if !ok {
			return nil, nil
		}
		var m vaultMount
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("vault: sys/mounts %s/: %w", path, err)
		}
		return &m, nil
	}
	var done []string

	// KV v2: rotator records secret versions (and custom_metadata) there.
	kv, err := mount("secret")
	switch {
	case err != nil:
		return err
	case kv == nil:
		if err := c.do(ctx, http.MethodPost, "sys/mounts/secret", map[string]any{
			"type": "kv", "options": map[string]string{"version": "2"},
			"description": "key/value secret storage (devstack)",
		}, nil); err != nil {
			return err
		}
		done = append(done, "KV v2 enabled at secret/")
	case kv.Type != "kv" || kv.Options["version"] != "2":
		return fmt.Errorf("vault: secret/ is a %s mount (options %v), rotator needs KV version 2: `devstack down && devstack up` starts a fresh dev Vault", kv.Type, kv.Options)
	default:
		done = append(done, "KV v2 at secret/ (present)")
	}

	pki, err := mount(vaultPKIMount)
	switch {
	case err != nil:
		return err
	case pki == nil:
		if err := c.do(ctx, http.MethodPost, "sys/mounts/"+vaultPKIMount, map[string]any{
			"type": "pki", "description": "TLS certificates (devstack)",
			"config": map[string]string{"max_lease_ttl": vaultPKIMaxTTL},
		}, nil); err != nil {
			return err
		}
		done = append(done, "PKI enabled at "+vaultPKIMount+"/")
	case pki.Type != "pki":
		return fmt.Errorf("vault: %s/ is a %s mount, not pki: `devstack down && devstack up` starts a fresh dev Vault", vaultPKIMount, pki.Type)
	default:
		// Tuning to the same value is a no-op; it repairs a hand-tuned mount.
		if err := c.do(ctx, http.MethodPost, "sys/mounts/"+vaultPKIMount+"/tune", map[string]string{"max_lease_ttl": vaultPKIMaxTTL}, nil); err != nil {
			return err
		}
		done = append(done, "PKI at "+vaultPKIMount+"/ (present)")
	}

	var issuers struct {
		KeyInfo map[string]struct {
			IssuerName string `json:"issuer_name"`
		} `json:"key_info"`
	}
	if err := c.do(ctx, "LIST", vaultPKIMount+"/issuers", nil, &issuers); err != nil && !isStatus(err, http.StatusNotFound) {
		return err // 404 means no issuer yet
	}
	haveRoot := false
	for _, info := range issuers.KeyInfo {
		haveRoot = haveRoot || info.IssuerName == vaultRootIssuer
	}
	if haveRoot {
		done = append(done, fmt.Sprintf("root CA %q (present)", vaultRootCN))
	} else {
		if err := c.do(ctx, http.MethodPost, vaultPKIMount+"/root/generate/internal", map[string]any{
			"common_name": vaultRootCN,
			"issuer_name": vaultRootIssuer,
			"ttl":         vaultPKIMaxTTL,
		}, nil); err != nil {
			return err
		}
		// An earlier issuer (made by hand) would otherwise stay the default
		// that roles issue from.
		if err := c.do(ctx, http.MethodPost, vaultPKIMount+"/config/issuers", map[string]string{"default": vaultRootIssuer}, nil); err != nil {
			return err
		}
		done = append(done, fmt.Sprintf("root CA %q generated", vaultRootCN))
	}

	// Writing a role replaces it, so this is idempotent and also restores
	// a role edited by hand.
	if err := c.do(ctx, http.MethodPost, vaultPKIMount+"/roles/"+vaultPKIRole, vaultRoleConfig(), nil); err != nil {
		return err
	}
	done = append(done, fmt.Sprintf("role %s: %s and their subdomains, max %s", vaultPKIRole, strings.Join(vaultPKIDomains, ", "), vaultRoleMaxTTL))

	for _, d := range done {
		fmt.Fprintf(v.out, "  %s\n", d)
	}
	return redactVaultLog(ctx, v.logFile, 10*time.Second)
}

// vaultRoleConfig is the devstack PKI role: server and client certificates
// for in-cluster Service names and localhost, IP SANs allowed (127.0.0.1).
func vaultRoleConfig() map[string]any {
	return map[string]any{
		"issuer_ref":         vaultRootIssuer,
		"allowed_domains":    vaultPKIDomains,
		"allow_subdomains":   true,
		"allow_bare_domains": true,
		"allow_localhost":    true,
		"allow_ip_sans":      true,
		"max_ttl":            vaultRoleMaxTTL,
	}
}
