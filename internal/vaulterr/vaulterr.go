// Package vaulterr reads the failures of Vault API calls the way both of
// rotator's Vault users (the KV store and the PKI issuer) report them: what
// Vault said, whether the network failed, and which TLS check refused the
// server, without request URLs' queries.
package vaulterr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// Said is Vault's own error text, on one line and bounded. A raw body is
// whatever a proxy in front of Vault sent, so it is not copied.
func Said(re *vaultapi.ResponseError) string {
	if len(re.Errors) == 0 || re.RawError {
		return "no error text"
	}
	said := strings.Join(strings.Fields(strings.Join(re.Errors, "; ")), " ")
	const max = 300
	if len(said) > max {
		said = said[:max] + "..."
	}
	return said
}

// Context returns the context error inside err (Canceled or
// DeadlineExceeded), or nil.
func Context(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	}
	return nil
}

// TLS describes a failed TLS verification of the server, or "".
func TLS(err error) string {
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		verify   *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &unknown):
		return "certificate signed by an unknown authority"
	case errors.As(err, &invalid):
		return "invalid certificate: " + invalid.Error()
	case errors.As(err, &hostname):
		return hostname.Error()
	case errors.As(err, &verify):
		return verify.Err.Error()
	}
	return ""
}

// IsNetwork reports whether err is a failure to reach or read from Vault.
func IsNetwork(err error) bool {
	var (
		ue *url.Error
		ne net.Error
		oe *net.OpError
	)
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.As(err, &oe) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// NetworkCause is the innermost network error's text: the dial or read
// that failed, without the request URL's query.
func NetworkCause(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + " " + RedactURL(ue.URL) + ": " + ue.Err.Error()
	}
	return err.Error()
}

// RedactURL drops the query string, the only part of a request URL that
// could carry anything but the address and path.
func RedactURL(u string) string {
	s, _, _ := strings.Cut(u, "?")
	return s
}
