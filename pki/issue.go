package pki

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// DefaultMount is where Vault's PKI engine is mounted unless a Request
// says otherwise, as `vault secrets enable pki` does.
const DefaultMount = "pki"

// ttlSlack is how much shorter than asked a certificate may be before
// Issue calls its TTL capped. Vault starts the lifetime at its own clock,
// which may lag the worker's; a real cap (role max_ttl, mount
// max_lease_ttl, CA expiry) is far more than this.
const ttlSlack = 5 * time.Minute

// Request says what to issue.
type Request struct {
	// Mount is the PKI engine's mount path; empty means DefaultMount.
	Mount string
	// Role is the PKI role that issues the certificate; it decides which
	// names and TTLs are allowed.
	Role string
	// CommonName is the certificate's CN. Vault also writes it as a DNS
	// SAN. Empty means the first of DNSNames.
	CommonName string
	// DNSNames are further DNS SANs.
	DNSNames []string
	// IPs are IP SANs, e.g. "127.0.0.1".
	IPs []string
	// TTL is the certificate's lifetime; 0 leaves it to the role's ttl.
	TTL time.Duration
}

// Issuer issues certificates from Vault's PKI engine.
type Issuer struct {
	// Client is a Vault client logged in with a token whose policy grants
	// "update" on <mount>/issue/<role> (vault.Connect returns one).
	Client *vaultapi.Client
}

// Issue has Vault issue a new certificate and key for r (POST
// <mount>/issue/<role>) and returns them as a kubernetes.io/tls bundle:
// tls.crt holds the leaf then the intermediates of Vault's ca_chain, ca.crt
// the root(s) of that chain, or its topmost CA when Vault does not hold the
// root. The Info describes the leaf.
//
// Before returning, Issue checks the bundle as Verify does (at Vault's
// issue time rather than the worker's clock), so a bundle that would fail
// later fails here. It also fails when Vault issued a certificate shorter
// than r.TTL: Vault caps the TTL at the role's max_ttl with only a warning,
// and a certificate shorter than the catalog expects would be due again at
// the next scan, rotating every day.
//
// Errors are *Error. IsPermanent is true for a role that does not allow
// the names or the TTL (the message has Vault's reason and the fix), a
// missing role or mount, and a policy without "update" on
// <mount>/issue/<role>; false for Vault unreachable, sealed or answering
// 5xx, and for ctx ending.
func (i *Issuer) Issue(ctx context.Context, r Request) (Bundle, Info, error) {
	mount, cn, body, err := r.body()
	if err != nil {
		return Bundle{}, Info{}, err
	}
	path := mount + "/issue/" + r.Role
	if i == nil || i.Client == nil {
		return Bundle{}, Info{}, newError(kindInvalid, "issue", path, "the Issuer has no Vault client: build it with a client from vault.Connect")
	}
	start := time.Now()
	sec, err := i.Client.Logical().WriteWithContext(ctx, path, body)
	if err != nil {
		return Bundle{}, Info{}, issueFailure(mount, r.Role, err)
	}
	if sec == nil || sec.Data == nil {
		return Bundle{}, Info{}, newError(kindInvalid, "issue", path,
			"Vault answered without a certificate: check that %q is a PKI engine (vault secrets list)", mount)
	}
	b, msg := assemble(sec.Data)
	if msg != "" {
		return Bundle{}, Info{}, newError(kindInvalid, "issue", path, "%s", msg)
	}

	leaf, _, _ := parseChain(b.CertPEM)
	// Vault's clock, not the worker's, decides when the certificate
	// starts; checking at the worker's clock could find it not yet valid.
	at := start
	if at.Before(leaf.NotBefore) {
		at = leaf.NotBefore
	}
	info, err := Verify(b, append(append([]string{cn}, r.DNSNames...), r.IPs...), at)
	var e *Error
	if errors.As(err, &e) {
		e.Op, e.Path = "issue", path
		e.detail = fmt.Sprintf("Vault issued a certificate (serial %s) that fails the check: %s", info.Serial, e.detail)
		return Bundle{}, Info{}, e
	}

	if r.TTL > 0 && info.NotAfter.Before(start.Add(r.TTL-ttlSlack)) {
		said := ""
		if len(sec.Warnings) > 0 {
			said = " (Vault: " + strings.Join(sec.Warnings, "; ") + ")"
		}
		granted := info.NotAfter.Sub(start).Round(time.Minute)
		return Bundle{}, Info{}, newError(kindInvalid, "issue", path,
			"Vault issued serial %s valid until %s, about %s, not the %s asked for%s: the role's max_ttl, the mount's max_lease_ttl or the CA's expiry caps it, and a shorter certificate would be due again at the next scan; set the target's tls.ttl to at most %s (with tls.renewBefore well below it), or raise the cap: vault write %s/roles/%s max_ttl=%s",
			info.Serial, info.NotAfter.UTC().Format(time.RFC3339), granted, r.TTL, said, granted, mount, r.Role, r.TTL)
	}
	return b, info, nil
}

// body checks r and builds the request Vault's issue endpoint takes.
// Names are checked here because Vault reads alt_names and ip_sans as
// comma-separated lists: a comma in a name would ask for another name.
func (r Request) body() (mount, cn string, body map[string]any, err error) {
	mount = strings.Trim(r.Mount, "/")
	if mount == "" {
		mount = DefaultMount
	}
	fail := func(format string, args ...any) (string, string, map[string]any, error) {
		return "", "", nil, newError(kindInvalid, "issue", mount+"/issue/"+r.Role, format, args...)
	}
	switch {
	case r.Role == "":
		return fail("no role: name the PKI role that issues the certificate (vault list %s/roles)", mount)
	case strings.ContainsAny(r.Role, "/ \t\n"):
		return fail("role %q is not a role name: give the name only, as in vault list %s/roles", r.Role, mount)
	case r.TTL < 0 || r.TTL > 0 && r.TTL < time.Second:
		return fail("TTL %s is not a lifetime: give a positive TTL of at least a second, or 0 for the role's default", r.TTL)
	}
	cn = r.CommonName
	if cn == "" && len(r.DNSNames) > 0 {
		cn = r.DNSNames[0]
	}
	if cn == "" {
		return fail("no common name and no DNS names: say which names the certificate is for")
	}
	for _, n := range append([]string{cn}, r.DNSNames...) {
		if n == "" || strings.ContainsAny(n, ", \t\n") {
			return fail("%q is not a DNS name: give each name on its own, without commas or spaces", n)
		}
	}
	for _, ip := range r.IPs {
		if net.ParseIP(ip) == nil {
			return fail("%q is not an IP address", ip)
		}
	}
	body = map[string]any{
		"common_name": cn,
		"format":      "pem",
	}
	if len(r.DNSNames) > 0 {
		body["alt_names"] = strings.Join(r.DNSNames, ",")
	}
	if len(r.IPs) > 0 {
		body["ip_sans"] = strings.Join(r.IPs, ",")
	}
	if r.TTL > 0 {
		body["ttl"] = strconv.FormatInt(int64(r.TTL/time.Second), 10) + "s"
	}
	return mount, cn, body, nil
}

// assemble builds the bundle from Vault's answer: certificate,
// private_key, issuing_ca and ca_chain (the issuer's chain, issuer first,
// root last when Vault holds it). It returns a message instead of an error
// when a field is missing or does not parse; the message never quotes the
// answer, which holds the private key.
func assemble(data map[string]any) (Bundle, string) {
	field := func(name string) string {
		s, _ := data[name].(string)
		return s
	}
	certPEM, keyPEM := field("certificate"), field("private_key")
	if certPEM == "" || keyPEM == "" {
		return Bundle{}, "Vault's answer has no certificate or no private_key: rotator asks for format pem; check that the mount is a PKI engine"
	}
	certs, _, msg := parseCerts([]byte(certPEM), "Vault's certificate")
	if msg == "" && len(certs) == 0 {
		msg = "Vault's certificate holds no PEM certificate"
	}
	if msg != "" {
		return Bundle{}, msg
	}

	var chainPEM []string
	if list, ok := data["ca_chain"].([]any); ok {
		for _, c := range list {
			if s, ok := c.(string); ok {
				chainPEM = append(chainPEM, s)
			}
		}
	}
	if len(chainPEM) == 0 && field("issuing_ca") != "" {
		// Vault before 1.11 left ca_chain empty for a root issuer.
		chainPEM = []string{field("issuing_ca")}
	}
	var chain []*x509.Certificate
	for _, s := range chainPEM {
		cs, _, msg := parseCerts([]byte(s), "Vault's ca_chain")
		if msg != "" {
			return Bundle{}, msg
		}
		chain = append(chain, cs...)
	}
	if len(chain) == 0 {
		return Bundle{}, "Vault's answer has no issuing_ca or ca_chain: rotator cannot tell clients which CA to trust; check the issuer of the role"
	}

	// Roots go to ca.crt only: a server sending its root wastes bytes, and
	// a client must not trust a root because the server sent it.
	var inter, roots []*x509.Certificate
	for _, c := range chain {
		if selfSigned(c) {
			roots = append(roots, c)
		} else {
			inter = append(inter, c)
		}
	}
	if len(roots) == 0 {
		// Vault does not hold the root (an intermediate imported without
		// it): trust the topmost CA it knows, which clients verify
		// against as they would the root.
		roots = chain[len(chain)-1:]
	}
	leafChain := append(certs, inter...)
	key := []byte(strings.TrimSpace(keyPEM) + "\n")
	return Bundle{CertPEM: encodeCerts(dedupe(leafChain)), KeyPEM: key, CAPEM: encodeCerts(dedupe(roots))}, ""
}

// selfSigned reports whether c is a root: issued by itself, with a valid
// signature of its own key.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// dedupe drops repeated certificates, keeping the first, because Vault's
// certificate field and ca_chain may overlap.
func dedupe(certs []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	seen := map[string]bool{}
	for _, c := range certs {
		if !seen[string(c.Raw)] {
			seen[string(c.Raw)] = true
			out = append(out, c)
		}
	}
	return out
}
