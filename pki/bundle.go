package pki

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// The data keys of a kubernetes.io/tls Secret: the same strings as
// corev1.TLSCertKey, corev1.TLSPrivateKeyKey and the "ca.crt" that
// cert-manager and ingress controllers read.
const (
	// DataCert holds the leaf certificate, then its intermediates, in PEM.
	DataCert = "tls.crt"
	// DataKey holds the leaf's private key in PEM.
	DataKey = "tls.key"
	// DataCA holds the CA certificates clients trust the leaf through.
	DataCA = "ca.crt"
)

// pemCertificate is the PEM block type of an X.509 certificate.
const pemCertificate = "CERTIFICATE"

// Bundle is what a kubernetes.io/tls Secret holds. It carries a private
// key, so it prints redacted and refuses JSON encoding: keep it inside the
// activity that reads or issues it, and pass Info around instead.
type Bundle struct {
	// CertPEM is tls.crt: the leaf certificate first, then the
	// intermediates up to (not including) the root.
	CertPEM []byte
	// KeyPEM is tls.key: the leaf's private key.
	KeyPEM []byte
	// CAPEM is ca.crt: the CA certificates a client trusts the leaf
	// through, usually the root. Optional in a Secret; Verify needs it.
	CAPEM []byte
}

// FromSecretData reads a kubernetes.io/tls Secret's data. A missing key
// leaves its field empty: Inspect and Verify say which one is missing. The
// bytes are copied, so the caller may reuse the map.
func FromSecretData(data map[string][]byte) Bundle {
	return Bundle{
		CertPEM: bytes.Clone(data[DataCert]),
		KeyPEM:  bytes.Clone(data[DataKey]),
		CAPEM:   bytes.Clone(data[DataCA]),
	}
}

// SecretData is the data of a kubernetes.io/tls Secret holding b. tls.crt
// and tls.key are always present, as the API server requires for the type;
// ca.crt only when b has a CA, because an empty ca.crt would tell clients
// to trust nothing.
func (b Bundle) SecretData() map[string][]byte {
	data := map[string][]byte{
		DataCert: bytes.Clone(b.CertPEM),
		DataKey:  bytes.Clone(b.KeyPEM),
	}
	if len(b.CAPEM) > 0 {
		data[DataCA] = bytes.Clone(b.CAPEM)
	}
	return data
}

// String describes b without its key or certificate bodies, so that a
// Bundle passed to fmt or a logger by mistake leaks nothing.
func (b Bundle) String() string {
	serial := "none"
	if leaf, _, err := parseChain(b.CertPEM); err == "" {
		serial = serialString(leaf)
	}
	return fmt.Sprintf("pki.Bundle{tls.crt: %d certificate(s), leaf serial %s; tls.key: [redacted, %d bytes]; ca.crt: %d certificate(s)}",
		countCerts(b.CertPEM), serial, len(b.KeyPEM), countCerts(b.CAPEM))
}

// GoString is String, for %#v, which would otherwise print the key's
// bytes.
func (b Bundle) GoString() string { return b.String() }

// LogValue keeps the key out of log/slog output.
func (b Bundle) LogValue() slog.Value { return slog.StringValue(b.String()) }

// MarshalJSON refuses: a Bundle returned from a Temporal activity or
// passed to a workflow would be stored, key included, in the workflow's
// history, which Temporal keeps in clear and shows in its Web UI.
func (b Bundle) MarshalJSON() ([]byte, error) {
	return nil, errors.New("pki: a Bundle holds a private key and is never encoded: keep it inside the activity (write it with SecretData) and pass Info instead")
}

// Info describes a certificate without its key or body: what logs, status
// queries and workflow histories may hold.
type Info struct {
	// Serial is the serial number as Vault writes it (colon-separated hex
	// pairs), so `vault write <mount>/revoke serial_number=...` takes it.
	Serial string `json:"serial"`
	// Subject is the leaf's subject, e.g. "CN=app.llm-orchestrator.svc".
	Subject string `json:"subject"`
	// DNSNames and IPs are the leaf's subject alternative names.
	DNSNames []string `json:"dnsNames,omitempty"`
	IPs      []string `json:"ips,omitempty"`
	// NotBefore and NotAfter bound the leaf's validity.
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// Issuer is the subject of the CA that signed the leaf.
	Issuer string `json:"issuer"`
	// Fingerprint is "sha256:" and the first 12 hex digits of the SHA-256
	// of the leaf's DER: it tells certificates apart in status output,
	// and matches the start of what openssl x509 -fingerprint -sha256 and
	// certificate transparency logs show for the same certificate.
	Fingerprint string `json:"fingerprint"`
}

// Inspect parses the leaf of b's tls.crt: what the daily scan needs to
// decide whether a certificate is due. It checks nothing else; Verify does.
func Inspect(b Bundle) (Info, error) {
	leaf, _, msg := parseChain(b.CertPEM)
	if msg != "" {
		return Info{}, newError(kindInvalid, "inspect", "", "%s", msg)
	}
	return infoOf(leaf), nil
}

// infoOf describes a parsed certificate.
func infoOf(c *x509.Certificate) Info {
	info := Info{
		Serial:      serialString(c),
		Subject:     c.Subject.String(),
		NotBefore:   c.NotBefore,
		NotAfter:    c.NotAfter,
		Issuer:      c.Issuer.String(),
		Fingerprint: fingerprint(c.Raw),
	}
	info.DNSNames = append(info.DNSNames, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		info.IPs = append(info.IPs, ip.String())
	}
	return info
}

// fingerprint is unkeyed, unlike the fingerprints of secret values
// (activities.Fingerprinter): a certificate is public, so its hash reveals
// nothing a dictionary could confirm, and a standard hash lets anyone
// match it with the certificate a server presents.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// serialString writes a serial number as Vault does: lower-case hex byte
// pairs joined by colons.
func serialString(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return ""
	}
	raw := c.SerialNumber.Bytes()
	if len(raw) == 0 {
		return "00"
	}
	parts := make([]string, len(raw))
	for i, x := range raw {
		parts[i] = hex.EncodeToString([]byte{x})
	}
	return strings.Join(parts, ":")
}

// isPrivateKeyBlock reports whether a PEM block type is a private key of any
// encoding (PKCS #1, SEC 1, PKCS #8, encrypted PKCS #8).
func isPrivateKeyBlock(typ string) bool { return strings.HasSuffix(typ, "PRIVATE KEY") }

// parseCerts parses every CERTIFICATE block of data, which the messages
// call name, and notes whether a private key block is there too. Messages
// name block types and positions, never the PEM's contents.
func parseCerts(data []byte, name string) (certs []*x509.Certificate, sawKey bool, msg string) {
	for n := 0; ; {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return certs, sawKey, ""
		}
		switch {
		case block.Type == pemCertificate:
			n++
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				// x509's parse errors name the field that is malformed,
				// not its contents.
				return nil, sawKey, fmt.Sprintf("certificate #%d of %s does not parse (%v): write the PEM certificate as Vault issued it, unaltered", n, name, err)
			}
			certs = append(certs, c)
		case isPrivateKeyBlock(block.Type):
			sawKey = true
		}
	}
}

// parseChain parses tls.crt: the first certificate is the leaf, the others
// its intermediates.
func parseChain(certPEM []byte) (leaf *x509.Certificate, rest []*x509.Certificate, msg string) {
	if len(bytes.TrimSpace(certPEM)) == 0 {
		return nil, nil, "tls.crt is empty or absent: the Secret needs the certificate in tls.crt (PEM)"
	}
	certs, sawKey, msg := parseCerts(certPEM, "tls.crt")
	switch {
	case msg != "":
		return nil, nil, msg
	case len(certs) == 0 && sawKey:
		return nil, nil, "tls.crt holds a private key and no certificate: tls.crt and tls.key look swapped; put the certificate in tls.crt and the key in tls.key"
	case len(certs) == 0:
		return nil, nil, "tls.crt holds no PEM certificate: a kubernetes.io/tls Secret's tls.crt is PEM, starting with -----BEGIN CERTIFICATE-----"
	}
	return certs[0], certs[1:], ""
}

// parseCAs parses ca.crt. A private key there is an error of its own:
// ca.crt is what every client of the Secret is meant to read.
func parseCAs(caPEM []byte) ([]*x509.Certificate, string) {
	if len(bytes.TrimSpace(caPEM)) == 0 {
		return nil, "ca.crt is empty or absent, so nothing says which CA the certificate chains to: write the issuing CA's chain into ca.crt (Issue does)"
	}
	cas, sawKey, msg := parseCerts(caPEM, "ca.crt")
	switch {
	case sawKey:
		return nil, "ca.crt holds a private key, and ca.crt is meant for every client to read: remove the key from ca.crt, and rotate that key"
	case msg != "":
		return nil, msg
	case len(cas) == 0:
		return nil, "ca.crt holds no PEM certificate: write the issuing CA's chain into ca.crt, starting with -----BEGIN CERTIFICATE-----"
	}
	return cas, ""
}

// countCerts counts the CERTIFICATE blocks of a PEM bundle.
func countCerts(data []byte) int {
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return n
		}
		if block.Type == pemCertificate {
			n++
		}
	}
}

// encodeCerts writes certificates as PEM, each ending in a newline, as
// tools that concatenate PEM files expect.
func encodeCerts(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: c.Raw})...)
	}
	return out
}

// subjects lists certificates' subjects for a message.
func subjects(certs []*x509.Certificate) string {
	s := make([]string, len(certs))
	for i, c := range certs {
		s[i] = fmt.Sprintf("%q", c.Subject.String())
	}
	return strings.Join(s, ", ")
}
