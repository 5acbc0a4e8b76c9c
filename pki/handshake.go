package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"rotator/internal/vaulterr"
)

// handshakeTimeout bounds a handshake whose ctx has no deadline: a server
// that accepts and then says nothing must not hold the activity forever.
const handshakeTimeout = 30 * time.Second

// Handshake dials addr (host:port), does a TLS handshake as a client that
// trusts only the CA certificates in roots and asks for serverName (SNI,
// and the name the certificate must cover; empty means addr's host), and
// returns the leaf the server presented, so the caller can check that the
// server serves the new certificate (compare Info.Serial).
//
// When the server presents a certificate that does not verify, the error
// says why and the Info still describes what it presented. Such errors,
// and a server that cannot be reached, are not permanent: during and just
// after a rollout the server may still be loading the new certificate, so
// the caller retries within its own deadline. Only bad arguments (no CA in
// roots, an address without a port) are permanent.
func Handshake(ctx context.Context, addr, serverName string, roots []byte) (Info, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return Info{}, newError(kindInvalid, "handshake", addr, "the address is not host:port (%v): give it as e.g. orchestrator.llm-orchestrator.svc:443", err)
	}
	if serverName == "" {
		serverName = strings.Trim(host, "[]")
	}
	cas, msg := parseCAs(roots)
	if msg != "" {
		return Info{}, newError(kindInvalid, "handshake", addr, "the CA to trust: %s", msg)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, handshakeTimeout)
		defer cancel()
	}
	d := tls.Dialer{Config: &tls.Config{
		ServerName: serverName,
		RootCAs:    pool,
		MinVersion: tls.VersionTLS12,
	}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return handshakeFailure(addr, serverName, cas, err)
	}
	defer conn.Close()
	peers := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(peers) == 0 {
		// crypto/tls fails the handshake first; this guards the index.
		return Info{}, newError(kindUnavailable, "handshake", addr, "the server presented no certificate; rotator retries")
	}
	return infoOf(peers[0]), nil
}

// handshakeFailure explains a failed dial or handshake.
func handshakeFailure(addr, serverName string, cas []*x509.Certificate, err error) (Info, error) {
	e := &Error{Op: "handshake", Path: addr, kind: kindUnavailable}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) && len(cve.UnverifiedCertificates) > 0 {
		info := infoOf(cve.UnverifiedCertificates[0])
		var (
			hostname x509.HostnameError
			unknown  x509.UnknownAuthorityError
			invalid  x509.CertificateInvalidError
		)
		switch {
		case errors.As(cve.Err, &hostname):
			e.detail = fmt.Sprintf("the server presents a certificate (%s) that does not cover %q (it covers DNS %v and IPs %v): the server may not have loaded the new certificate yet, or the handshake's serverName is not a name of the target; rotator retries",
				describe(info), serverName, info.DNSNames, info.IPs)
		case errors.As(cve.Err, &unknown):
			e.detail = fmt.Sprintf("the server presents a certificate (%s, issuer %q) that does not chain to the CA of the new bundle (%s): the server may still serve an old certificate from another CA, or lacks the intermediates in tls.crt; rotator retries",
				describe(info), info.Issuer, subjects(cas))
		case errors.As(cve.Err, &invalid) && invalid.Reason == x509.Expired:
			e.detail = fmt.Sprintf("the server presents a certificate (%s) that is expired or not yet valid (valid %s to %s): it may not have loaded the new certificate yet; rotator retries",
				describe(info), info.NotBefore.UTC().Format(time.RFC3339), info.NotAfter.UTC().Format(time.RFC3339))
		default:
			e.detail = fmt.Sprintf("the server presents a certificate (%s) that does not verify (%v); rotator retries", describe(info), cve.Err)
		}
		return info, e
	}
	if ctxErr := vaulterr.Context(err); ctxErr != nil {
		e.cause = ctxErr
		e.detail = "no handshake before the deadline (" + ctxErr.Error() + "): check that a TLS server listens at the address; rotator retries"
		return Info{}, e
	}
	// Network errors and TLS alerts ("remote error: tls: ...") name
	// addresses and alerts, never certificate contents.
	e.detail = fmt.Sprintf("no TLS handshake (%v): check that the server listens there and speaks TLS without requiring a client certificate; rotator retries", err)
	return Info{}, e
}
