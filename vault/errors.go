package vault

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"rotator/internal/vaulterr"
)

// kind sorts failures by what the caller should do about them.
type kind int

const (
	// kindInvalid: bad input or configuration; retrying changes nothing.
	kindInvalid kind = iota
	// kindConflict: someone else changed the path; re-read and decide.
	kindConflict
	// kindUnavailable: Vault could not answer now; retry.
	kindUnavailable
	// kindPermission: the token's policy lacks a capability; fix the policy.
	kindPermission
	// kindNotFound: the path or version is not there.
	kindNotFound
)

// Error is the error every function of this package returns. Its message
// names what rotator was doing, the Vault path and the fix. It never holds
// secret values: Vault's own messages are copied with any value rotator was
// writing redacted, and the Vault client's error is not kept in the chain
// (its text could be echoed by a proxy), except for context errors, which
// errors.Is finds.
type Error struct {
	// Op is what rotator was doing, e.g. "stage pending version".
	Op string
	// Path is the mount-qualified KV path, e.g. secret/app/db.
	Path string
	// Status is Vault's HTTP status code, 0 when there was no answer.
	Status int
	kind   kind
	detail string
	cause  error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Path == "" {
		return "vault: " + e.Op + ": " + e.detail
	}
	return "vault: " + e.Op + " " + e.Path + ": " + e.detail
}

// Unwrap returns the context error that ended the call, if any.
func (e *Error) Unwrap() error { return e.cause }

// IsConflict reports whether err is a check-and-set conflict or labels that
// are not what the caller expected: another writer changed the path. The
// caller re-reads the labels and decides; retrying the same call blindly
// fails the same way.
func IsConflict(err error) bool { return hasKind(err, kindConflict) }

// IsUnavailable reports whether err is transient: Vault unreachable,
// sealed, overloaded (5xx, 429, 412) or the call timed out. A Temporal
// activity retries these. A permission denial (403) is not transient: the
// message names the capability the token's policy lacks.
func IsUnavailable(err error) bool { return hasKind(err, kindUnavailable) }

// IsNotFound reports whether err says the path, or the version asked for,
// does not exist or was deleted.
func IsNotFound(err error) bool { return hasKind(err, kindNotFound) }

// IsPermissionDenied reports whether Vault refused the call (403): the
// token's policy lacks a capability, or the token expired.
func IsPermissionDenied(err error) bool { return hasKind(err, kindPermission) }

func hasKind(err error, k kind) bool {
	var e *Error
	return errors.As(err, &e) && e.kind == k
}

// newError builds an Error from rotator's own words; args must not hold
// secret values.
func newError(k kind, op, path, format string, args ...any) *Error {
	return &Error{Op: op, Path: path, kind: k, detail: fmt.Sprintf(format, args...)}
}

// call describes one Vault request, so a failure can say which capability
// on which API path the policy needs.
type call struct {
	op         string // rotator's words
	path       string // mount-qualified KV path, for the message
	capability string // the policy capability the request needs
	apiPath    string // the API path the capability applies to
	// secrets are values being written; they are redacted from any text
	// Vault sends back.
	secrets map[string]string
}

// fail turns a Vault client error into an *Error that says what to do.
func (c call) fail(err error) error {
	if err == nil {
		return nil
	}
	var own *Error
	if errors.As(err, &own) {
		return own
	}
	e := &Error{Op: c.op, Path: c.path}
	if ctxErr := vaulterr.Context(err); ctxErr != nil {
		e.kind, e.cause = kindUnavailable, ctxErr
		e.detail = "the call was cut short (" + ctxErr.Error() + "): retry"
		return e
	}
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		e.Status = re.StatusCode
		said := c.redact(vaulterr.Said(re))
		switch {
		case re.StatusCode == 400 && strings.Contains(said, "check-and-set parameter required"):
			e.kind = kindInvalid
			e.detail = "Vault requires check-and-set here (cas_required on the mount or path): " + said
		case re.StatusCode == 400 && strings.Contains(said, "check-and-set"):
			e.kind = kindConflict
			e.detail = "check-and-set conflict: another writer added a version after rotator read the path; read the labels again and retry the step (" + said + ")"
		case re.StatusCode == 403:
			e.kind = kindPermission
			e.detail = fmt.Sprintf("permission denied: the token's policy needs the %q capability on %q, or the token expired (%s)", c.capability, c.apiPath, said)
		case re.StatusCode == 404:
			e.kind = kindNotFound
			e.detail = fmt.Sprintf("not found: check that a KV version 2 engine is mounted at %q (vault secrets enable -path=%s kv-v2) and the path is right (%s)",
				c.mount(), c.mount(), said)
		case re.StatusCode == 503 && strings.Contains(said, "sealed"):
			e.kind = kindUnavailable
			e.detail = "Vault is sealed: unseal it; rotator retries (" + said + ")"
		case re.StatusCode == 412 || re.StatusCode == 429 || re.StatusCode >= 500:
			e.kind = kindUnavailable
			e.detail = fmt.Sprintf("Vault answered %d; rotator retries (%s)", re.StatusCode, said)
		default:
			e.kind = kindInvalid
			e.detail = fmt.Sprintf("Vault refused the request (%d): %s", re.StatusCode, said)
		}
		return e
	}
	if errors.Is(err, vaultapi.ErrSecretNotFound) {
		e.kind, e.detail = kindNotFound, "nothing is stored there"
		return e
	}
	if tlsErr := vaulterr.TLS(err); tlsErr != "" {
		e.kind = kindInvalid
		e.detail = "TLS: " + tlsErr + ": set VAULT_CACERT (or VAULT_CAPATH) to the CA that signed Vault's certificate, or VAULT_TLS_SERVER_NAME to the name in it"
		return e
	}
	if vaulterr.IsNetwork(err) {
		e.kind = kindUnavailable
		e.detail = "cannot reach Vault (" + c.redact(vaulterr.NetworkCause(err)) + "): check VAULT_ADDR and that Vault is running; rotator retries"
		return e
	}
	e.kind = kindInvalid
	e.detail = c.redact(err.Error())
	return e
}

// mount is the first segment of the KV path in the message.
func (c call) mount() string {
	m, _, _ := strings.Cut(c.path, "/")
	return m
}

// minRedact is the shortest value redact replaces. Shorter values would
// garble messages (a value "1" would eat every digit) and are not what
// rotator writes: generated keys, passwords and API keys are far longer.
const minRedact = 6

// redact replaces every value being written, and its obvious encodings'
// raw form, in s.
func (c call) redact(s string) string {
	values := make([]string, 0, len(c.secrets))
	for _, v := range c.secrets {
		if len(v) >= minRedact {
			values = append(values, v)
		}
	}
	// Longest first, so a value that contains another is replaced whole.
	sort.Slice(values, func(i, j int) bool { return len(values[i]) > len(values[j]) })
	for _, v := range values {
		s = strings.ReplaceAll(s, v, "[redacted]")
	}
	return s
}
