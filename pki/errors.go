package pki

import (
	"errors"
	"fmt"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"rotator/internal/vaulterr"
)

// kind sorts failures by what the caller should do about them.
type kind int

const (
	// kindInvalid: the request, the role or the bundle is wrong; retrying
	// the same call fails the same way.
	kindInvalid kind = iota
	// kindPermission: the token's policy lacks a capability; fix the policy.
	kindPermission
	// kindUnavailable: Vault or the server could not answer now; retry.
	kindUnavailable
)

// The checks Verify makes, in the order it makes them; Error.Check names
// the one that failed.
const (
	// CheckCertificate: tls.crt holds a parsable X.509 leaf certificate.
	CheckCertificate = "certificate"
	// CheckKey: tls.key is the private key of the leaf's public key.
	CheckKey = "key"
	// CheckNames: the leaf covers every name and IP the target needs.
	CheckNames = "names"
	// CheckValidity: the leaf is valid at the time asked about.
	CheckValidity = "validity"
	// CheckChain: the leaf chains, through the intermediates in tls.crt,
	// to a CA in ca.crt, for server authentication.
	CheckChain = "chain"
)

// Error is the error every function of this package returns. Its message
// says what rotator was doing, what failed and the fix. It never holds a
// private key or a certificate body; Vault's own messages are copied (they
// name domains, TTLs and roles, never keys), and the Vault client's error is
// not kept in the chain (its text carries the request URL), except for
// context errors, which errors.Is finds.
type Error struct {
	// Op is what rotator was doing: "issue", "inspect", "verify" or
	// "handshake".
	Op string
	// Path is the Vault API path of an issue (pki/issue/<role>) or the
	// address of a handshake; empty otherwise.
	Path string
	// Check is the Verify check that failed (CheckKey, ...); empty for
	// other operations.
	Check string
	// Status is Vault's HTTP status code, 0 when Vault did not answer.
	Status int
	kind   kind
	detail string
	cause  error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pki: ")
	b.WriteString(e.Op)
	if e.Path != "" {
		b.WriteString(" " + e.Path)
	}
	if e.Check != "" {
		b.WriteString(": " + e.Check + " check failed")
	}
	b.WriteString(": " + e.detail)
	return b.String()
}

// Unwrap returns the context error that ended the call, if any.
func (e *Error) Unwrap() error { return e.cause }

// IsPermanent reports whether retrying the same call cannot succeed: a
// role that does not allow the names or the TTL, a policy that lacks the
// capability, a bundle that fails a check. The message says what to fix.
// Anything else from this package (Vault unreachable, sealed or answering
// 5xx, a timeout, a server that refused the connection) is worth retrying,
// and so is an error this package did not make.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.kind != kindUnavailable
}

// newError builds an Error from rotator's own words; args must not hold a
// key or a certificate body.
func newError(k kind, op, path, format string, args ...any) *Error {
	return &Error{Op: op, Path: path, kind: k, detail: fmt.Sprintf(format, args...)}
}

// checkError is a failed Verify check: permanent, because the bundle does
// not change by itself.
func checkError(check, format string, args ...any) *Error {
	e := newError(kindInvalid, "verify", "", format, args...)
	e.Check = check
	return e
}

// issueFailure turns a Vault client error from POST <mount>/issue/<role>
// into an *Error that says what to change.
func issueFailure(mount, role string, err error) error {
	path := mount + "/issue/" + role
	e := &Error{Op: "issue", Path: path}
	if ctxErr := vaulterr.Context(err); ctxErr != nil {
		e.kind, e.cause = kindUnavailable, ctxErr
		e.detail = "the call was cut short (" + ctxErr.Error() + "): retry"
		return e
	}
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		e.Status = re.StatusCode
		said := vaulterr.Said(re)
		switch {
		case re.StatusCode == 403:
			e.kind = kindPermission
			e.detail = fmt.Sprintf("permission denied: the token's policy needs the %q capability on %q, or the token expired (%s)", "update", path, said)
		case re.StatusCode == 404 || strings.Contains(said, "no handler for route"):
			e.kind = kindInvalid
			e.detail = fmt.Sprintf("no PKI engine answers at %q (%s): set the target's tls.mount to where the PKI engine is mounted (vault secrets list), or enable it: vault secrets enable -path=%s pki", mount, said, mount)
		case strings.Contains(said, "unknown role"):
			e.kind = kindInvalid
			e.detail = fmt.Sprintf("the PKI engine at %q has no role %q (%s): set the target's tls.role to an existing role (vault list %s/roles) or create it", mount, role, said, mount)
		case strings.Contains(said, "not allowed by this role"):
			e.kind = kindInvalid
			e.detail = fmt.Sprintf("role %q refused a name (%s): ask only for names the role allows, or let the role allow it: vault write %s/roles/%s allowed_domains=... allow_subdomains=true (and allow_ip_sans=true for IPs)", role, said, mount, role)
		case strings.Contains(said, "beyond the expiration of the CA"):
			e.kind = kindInvalid
			e.detail = fmt.Sprintf("the certificate would outlive its CA (%s): lower the target's tls.ttl, or renew the CA of %s", said, mount)
		case re.StatusCode == 503 && strings.Contains(said, "sealed"):
			e.kind = kindUnavailable
			e.detail = "Vault is sealed: unseal it; rotator retries (" + said + ")"
		case re.StatusCode == 412 || re.StatusCode == 429 || re.StatusCode >= 500:
			e.kind = kindUnavailable
			e.detail = fmt.Sprintf("Vault answered %d; rotator retries (%s)", re.StatusCode, said)
		case re.StatusCode == 400:
			e.kind = kindInvalid
			e.detail = fmt.Sprintf("role %q refused the request (%s): change the target's tls settings or the role (vault read %s/roles/%s)", role, said, mount, role)
		default:
			e.kind = kindInvalid
			e.detail = fmt.Sprintf("Vault refused the request (%d): %s", re.StatusCode, said)
		}
		return e
	}
	if msg := vaulterr.TLS(err); msg != "" {
		e.kind = kindInvalid
		e.detail = "TLS to Vault: " + msg + ": set VAULT_CACERT (or VAULT_CAPATH) to the CA that signed Vault's certificate, or VAULT_TLS_SERVER_NAME to the name in it"
		return e
	}
	if vaulterr.IsNetwork(err) {
		e.kind = kindUnavailable
		e.detail = "cannot reach Vault (" + vaulterr.NetworkCause(err) + "): check VAULT_ADDR and that Vault is running; rotator retries"
		return e
	}
	// What is left is an answer the client could not decode. An issue
	// answer holds a private key, so the decoder's text is not copied;
	// a proxy in front of Vault is the usual cause, and it may recover.
	e.kind = kindUnavailable
	e.detail = fmt.Sprintf("Vault's answer could not be read (%T): check what answers at VAULT_ADDR; rotator retries", err)
	return e
}
