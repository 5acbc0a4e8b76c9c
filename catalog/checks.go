package catalog

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"rotator/internal/loopback"
	"rotator/vault"
)

// isHost accepts an IP address or a DNS host name (letters, digits, '-',
// '_' and dots, labels of at most 63 characters).
func isHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

func checkSecretRef(field string, r SecretRef, fail failFunc) {
	if msgs := validation.IsDNS1123Label(r.Namespace); len(msgs) > 0 {
		fail(field+".namespace", "%q is not a valid namespace: %s", truncate(r.Namespace), strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Subdomain(r.Name); len(msgs) > 0 {
		fail(field+".name", "%q is not a valid Secret name: %s", truncate(r.Name), strings.Join(msgs, "; "))
	}
}

// checkVaultPath refuses paths Vault would read differently from how they
// are written; vault.CheckPath says which and how to fix them.
func checkVaultPath(v *VaultPath, fail failFunc) {
	if err := vault.CheckPath(v.Path); err != nil {
		fail("vault.path", "%v", err)
	}
	if !isVaultMount(v.Mount) {
		fail("vault.mount", "%q is not a mount path: use the KV v2 mount, e.g. secret", truncate(v.Mount))
	}
}

// isVaultMount accepts a mount path Vault reads as written: no empty,
// relative or odd segments.
func isVaultMount(m string) bool {
	m = strings.Trim(m, "/")
	if m == "" || len(m) > 256 {
		return false
	}
	for seg := range strings.SplitSeq(m, "/") {
		if seg == "." || seg == ".." || !isVaultName(seg) {
			return false
		}
	}
	return true
}

// isVaultName accepts a role or mount segment: it becomes part of a Vault
// API path, so '/', '..' and characters that need escaping are refused.
func isVaultName(s string) bool {
	if s == "" || len(s) > 128 || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@", r)) {
			return false
		}
	}
	return true
}

func (v *Vault) check() error {
	switch v.Auth.Method {
	case "", VaultAuthToken:
		if v.Auth.Role != "" || v.Auth.MountPath != "" || v.Auth.TokenPath != "" {
			return errors.New("vault.auth: role, mountPath and tokenPath are only used by method kubernetes: remove them or set method: kubernetes")
		}
	case VaultAuthKubernetes:
		var errs []error
		switch {
		case v.Auth.Role == "":
			errs = append(errs, errors.New("vault.auth.role: is required for method kubernetes: the Vault role bound to the worker's ServiceAccount"))
		case !isVaultName(v.Auth.Role):
			errs = append(errs, fmt.Errorf("vault.auth.role: %q is not a Vault role name: use letters, digits, '-', '_' and '.' only, as listed by vault list auth/kubernetes/role", truncate(v.Auth.Role)))
		}
		if v.Auth.MountPath != "" && !isVaultMount(v.Auth.MountPath) {
			errs = append(errs, fmt.Errorf("vault.auth.mountPath: %q is not a mount path: use where the kubernetes auth method is enabled, e.g. kubernetes", truncate(v.Auth.MountPath)))
		}
		if strings.ContainsRune(v.Auth.TokenPath, 0) || len(v.Auth.TokenPath) > 4096 {
			errs = append(errs, errors.New("vault.auth.tokenPath: is not a file path: remove it to use the projected ServiceAccount token"))
		}
		return errors.Join(errs...)
	default:
		return fmt.Errorf("vault.auth.method: %q is not supported: use token or kubernetes", truncate(v.Auth.Method))
	}
	return nil
}

// encryptedOrLoopback accepts https, and plain http only where the
// connection never leaves the machine.
func encryptedOrLoopback(u *url.URL) bool {
	return u.Scheme == "https" || loopback.Is(u.Hostname())
}
