package catalog

import (
	"fmt"
	"net"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// KindTLS renews a certificate that Vault's PKI engine issues, into a
// kubernetes.io/tls Secret.
const KindTLS Kind = "tls"

// Defaults of a tls target.
const (
	// DefaultRenewBefore is the runbook's "30 days before expiry".
	DefaultRenewBefore = 30 * 24 * time.Hour
	// DefaultCertTTL is how long a renewed certificate is valid unless
	// the target says otherwise; the PKI role may cap it.
	DefaultCertTTL = 90 * 24 * time.Hour
	// DefaultPKIMount is where Vault's PKI engine is usually mounted.
	DefaultPKIMount = "pki"
	// TLSCertKey is the data key of a kubernetes.io/tls Secret's chain.
	TLSCertKey = "tls.crt"
)

// TLS configures a tls target: what Vault's PKI engine issues, and when the
// daily scan renews it.
type TLS struct {
	// Mount is the PKI engine's mount (default pki).
	Mount string `json:"mount,omitempty"`
	// Role is the PKI role that issues the certificate.
	Role string `json:"role"`
	// CommonName is the certificate's CN; it is also a DNS SAN.
	CommonName string `json:"commonName"`
	// DNSNames are further DNS SANs.
	DNSNames []string `json:"dnsNames,omitempty"`
	// IPs are IP SANs.
	IPs []string `json:"ips,omitempty"`
	// TTL is the new certificate's lifetime (default 90 days).
	TTL Duration `json:"ttl,omitzero"`
	// RenewBefore is how long before NotAfter the scan renews (default 720h).
	RenewBefore Duration `json:"renewBefore,omitzero"`
	// Handshake, when set, is an address whose TLS server must present the
	// new certificate once consumers rolled out.
	Handshake *Handshake `json:"handshake,omitempty"`
}

// Handshake is where verify dials to see the served certificate.
type Handshake struct {
	// Address is host:port as the worker reaches it.
	Address string `json:"address"`
	// ServerName is the SNI name (default the common name).
	ServerName string `json:"serverName,omitempty"`
}

// tlsKind registers the tls kind: its section says what to issue, so it
// is required. It has no cadence: tls targets renew when the daily scan
// finds them due, not on a fixed schedule.
func tlsKind() kindSpec {
	return kindSpec{
		kind:     KindTLS,
		section:  "tls",
		example:  "tls: {role: ..., commonName: ...}",
		has:      func(t *Target) bool { return t.TLS != nil },
		defaults: tlsDefaults,
		check:    tlsCheck,
	}
}

func tlsDefaults(t *Target) {
	c := t.TLS
	if t.Key == "" {
		t.Key = TLSCertKey
	}
	if c.Mount == "" {
		c.Mount = DefaultPKIMount
	}
	if !c.TTL.set {
		c.TTL.Duration = DefaultCertTTL
	}
	if !c.RenewBefore.set {
		c.RenewBefore.Duration = DefaultRenewBefore
	}
	if c.Handshake != nil && c.Handshake.ServerName == "" {
		c.Handshake.ServerName = c.CommonName
	}
}

func tlsCheck(t *Target, fail failFunc) {
	// The Secret is of type kubernetes.io/tls, whose keys are fixed.
	if t.Key != TLSCertKey {
		fail("key", "a tls Secret holds tls.crt and tls.key: remove key")
	}
	t.TLS.check(fail)
}

func (c *TLS) check(fail failFunc) {
	mount := c.Mount
	if !isVaultMount(c.Mount) {
		fail("tls.mount", "%q is not a mount path: use the PKI engine's mount, e.g. pki", truncate(c.Mount))
		mount = DefaultPKIMount
	}
	if c.Role == "" {
		fail("tls.role", "is required: the Vault PKI role that issues the certificate (vault list %s/roles)", mount)
	} else if !isVaultName(c.Role) {
		fail("tls.role", "%q is not a Vault role name: use letters, digits, '-', '_' and '.' only, as listed by vault list %s/roles", truncate(c.Role), mount)
	}
	if c.CommonName == "" {
		fail("tls.commonName", "is required: the name clients connect to, e.g. orchestrator.llm-orchestrator.svc")
	}
	for i, n := range append([]string{c.CommonName}, c.DNSNames...) {
		if n == "" {
			continue
		}
		field := "tls.commonName"
		if i > 0 {
			field = fmt.Sprintf("tls.dnsNames[%d]", i-1)
		}
		if msgs := validation.IsDNS1123Subdomain(strings.TrimPrefix(n, "*.")); len(msgs) > 0 {
			fail(field, "%q is not a DNS name: %s", truncate(n), strings.Join(msgs, "; "))
		}
	}
	for i, ip := range c.IPs {
		if net.ParseIP(ip) == nil {
			fail(fmt.Sprintf("tls.ips[%d]", i), "%q is not an IP address", truncate(ip))
		}
	}
	checkDuration(fail, "tls.ttl", c.TTL, time.Hour, "e.g. ttl: 2160h (90 days)")
	checkDuration(fail, "tls.renewBefore", c.RenewBefore, time.Nanosecond, "e.g. renewBefore: 720h (30 days)")
	if c.TTL.bad == "" && c.RenewBefore.bad == "" && c.RenewBefore.Duration >= c.TTL.Duration {
		fail("tls.renewBefore", "%s is not shorter than tls.ttl %s: every scan would renew again; make renewBefore shorter than the ttl", c.RenewBefore, c.TTL)
	}
	if h := c.Handshake; h != nil {
		if _, port, err := net.SplitHostPort(h.Address); err != nil || port == "" {
			fail("tls.handshake.address", "%q is not host:port, e.g. orchestrator.llm-orchestrator.svc:443", truncate(h.Address))
		}
	}
}
