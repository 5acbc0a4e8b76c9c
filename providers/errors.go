package providers

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error types set by this package when the failure is not an HTTP error
// answered by the provider (Status is then 0).
const (
	// TypeNetwork: the request did not get an answer (connection,
	// timeout, cancelled context). Retryable.
	TypeNetwork = "network_error"
	// TypeInvalidArgument: the call was given something unusable (an
	// empty key, a missing project id). Permanent.
	TypeInvalidArgument = "invalid_argument"
	// TypeInvalidResponse: the answer was not the provider's documented
	// JSON. Permanent: it means baseURL points at the wrong service.
	TypeInvalidResponse = "invalid_response"
	// TypeNoMatch: no key listed by the admin API matches. Permanent.
	TypeNoMatch = "no_matching_key"
	// TypeAmbiguous: several keys listed by the admin API match. Permanent.
	TypeAmbiguous = "ambiguous_key"
)

// Error is a failed call to a provider. Message never holds a key: whatever
// the provider wrote is scrubbed before it is stored here.
type Error struct {
	// Provider is OpenAI or Anthropic.
	Provider string
	// Op is what was attempted: "verify key", "find key id", "revoke key".
	Op string
	// Status is the HTTP status, or 0 when there was no HTTP answer.
	Status int
	// Type is the provider's error code or type (invalid_api_key,
	// authentication_error, rate_limit_error...) or one of the Type
	// constants of this package.
	Type string
	// Message is the provider's message, scrubbed of keys.
	Message string

	cause error
}

// Error renders e as "openai: verify key: 401 invalid_api_key: <message>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	b.WriteString(": ")
	b.WriteString(e.Op)
	if e.Status != 0 || e.Type != "" {
		b.WriteString(": ")
	}
	if e.Status != 0 {
		b.WriteString(strconv.Itoa(e.Status))
		if e.Type != "" {
			b.WriteByte(' ')
		}
	}
	b.WriteString(e.Type)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap exposes a cancelled or expired context, so that callers can tell
// their own deadline from the provider's failure.
func (e *Error) Unwrap() error { return e.cause }

// Permanent reports whether retrying the same call cannot succeed: the key
// or admin key is wrong, lacks permission, or names something that does not
// exist. Rate limits, overload, server errors and network errors pass with
// time, so they are not permanent.
func (e *Error) Permanent() bool {
	if e.Status == 0 {
		return e.Type != TypeNetwork
	}
	switch {
	case e.Status == 429:
		// OpenAI answers 429 insufficient_quota when billing is
		// exhausted; that does not clear with a retry.
		return e.Type == "insufficient_quota"
	case e.Status == 408, e.Status == 409, e.Status == 425:
		// Timeout, concurrent modification, too early: Anthropic's
		// docs say to retry conflict_error.
		return false
	case e.Status >= 500:
		// Includes Anthropic's 529 overloaded_error.
		return false
	default:
		// 400, 401, 402, 403, 404, 413, 422..., and 3xx, which is a
		// refused redirect: a misconfigured base URL.
		return true
	}
}

// IsPermanent reports whether err is an *Error that retrying cannot fix.
// Other errors are treated as transient, since nothing is known of them.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent()
}

const redacted = "[REDACTED]"

var (
	// sk- is the prefix of OpenAI (sk-, sk-proj-, sk-svcacct-,
	// sk-admin-) and Anthropic (sk-ant-api03-, sk-ant-admin01-) keys;
	// providers echo keys in this form, whole or masked. Dots belong to
	// the token only inside it ("sk-abc...xyz"), not as the full stop
	// after it.
	skToken = regexp.MustCompile(`sk-(?:[A-Za-z0-9_\-*…•]|\.+[A-Za-z0-9_\-*…•])*`)
	// A masked key as providers print it: "abc***xyz", "abc...xyz". The
	// dots need characters on both sides so that a sentence ending in
	// "..." keeps its last word.
	maskedToken = regexp.MustCompile(`[A-Za-z0-9_\-]*(?:\*{3,}|•{3,})[A-Za-z0-9_\-]*|[A-Za-z0-9_\-]+(?:\.{3}|…)[A-Za-z0-9_\-]+`)
)

// windowLen is the length of the fragments of a secret that scrub looks for:
// long enough that an innocent word does not match, short enough to catch a
// provider quoting the first or last characters of a key.
const windowLen = 8

// scrub removes from s every secret, every token sharing windowLen
// characters with a secret, and anything shaped like a provider key or a
// masked key, whichever secret it came from.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	s = skToken.ReplaceAllString(s, redacted)
	s = maskedToken.ReplaceAllString(s, redacted)
	// Partial echoes of keys that are not sk- shaped.
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '"' || r == '\'' || r == ',' || r == ';' || r == '(' || r == ')'
	})
	for _, f := range fields {
		if f != redacted && sharesWindow(f, secrets) {
			s = strings.ReplaceAll(s, f, redacted)
		}
	}
	return s
}

// sharesWindow reports whether token and some secret have a common
// substring of windowLen bytes.
func sharesWindow(token string, secrets []string) bool {
	for _, sec := range secrets {
		if len(sec) < windowLen {
			continue
		}
		for i := 0; i+windowLen <= len(token); i++ {
			if strings.Contains(sec, token[i:i+windowLen]) {
				return true
			}
		}
	}
	return false
}

// maxMessage bounds a message kept in an Error: errors are stored in
// workflow histories, and a provider's message is useful in its first lines.
const maxMessage = 512

// clip shortens s to maxMessage bytes on a rune boundary.
func clip(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
