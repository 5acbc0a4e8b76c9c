package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"rotator/devstack/temporal"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// renewBefore is how close to expiry a certificate is reissued by up.
	renewBefore = 30 * 24 * time.Hour
)

// leafSpec describes one certificate signed by one of the devstack CAs.
type leafSpec struct {
	name     string // file base name: <name>.crt, <name>.key
	ca       string // file base name of the signing CA
	cn       string
	org      []string
	usage    []x509.ExtKeyUsage
	dnsNames []string
	ips      []net.IP
}

// Certificate authorities of the cluster: the main one, and the one the API
// server's aggregation layer (front proxy) authenticates with, kept apart as
// kubeadm does so that no ordinary client certificate can act as the proxy.
const (
	clusterCA    = "ca"
	frontProxyCA = "front-proxy-ca"
)

// clusterLeaves lists the certificates the control plane needs.
func clusterLeaves(serviceIP net.IP) []leafSpec {
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return []leafSpec{
		{
			name:  "apiserver",
			ca:    clusterCA,
			cn:    "kube-apiserver",
			usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			dnsNames: []string{
				"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc.cluster.local",
			},
			ips: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), serviceIP},
		},
		{name: "admin", ca: clusterCA, cn: "devstack-admin", org: []string{"system:masters"}, usage: client},
		{name: "controller-manager", ca: clusterCA, cn: "system:kube-controller-manager", usage: client},
		{name: "scheduler", ca: clusterCA, cn: "system:kube-scheduler", usage: client},
		{name: "front-proxy-client", ca: frontProxyCA, cn: "front-proxy-client", usage: client},
	}
}

// servicesCA signs the certificates of the services beside Kubernetes
// (Temporal, PostgreSQL) and of their clients: a CA of its own, so that
// no certificate it signs is valid for the API server.
const servicesCA = "services-ca"

// serviceLeaves lists the services' certificates: the Temporal frontend's
// PostgreSQL's and Redis's, the client certificate of rotator's worker and CLI,
// and the one Temporal's own system worker presents to its frontend.
func serviceLeaves() []leafSpec {
	server := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	loopback := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	return []leafSpec{
		{name: "temporal", ca: servicesCA, cn: "localhost", usage: server, dnsNames: []string{"localhost"}, ips: loopback},
		{name: "temporal-client", ca: servicesCA, cn: "rotator", usage: client},
		{name: "temporal-system-worker", ca: servicesCA, cn: temporal.SystemWorkerName, usage: client},
		{name: "postgres", ca: servicesCA, cn: "localhost", usage: server, dnsNames: []string{"localhost"}, ips: loopback},
		{name: "redis", ca: servicesCA, cn: "localhost", usage: server, dnsNames: []string{"localhost"}, ips: loopback},
	}
}

// ensurePKI creates, under dir, the certificate authorities, the leaf
// certificates and the service-account key pair, keeping whatever exists and
// is still valid. A new CA reissues every leaf it signs.
func ensurePKI(dir string, cas []string, leaves []leafSpec) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	type authority struct {
		cert  *x509.Certificate
		key   crypto.Signer
		fresh bool
	}
	authorities := make(map[string]authority, len(cas))
	for _, name := range cas {
		cert, key, err := loadPair(dir, name)
		fresh := false
		if err != nil || time.Until(cert.NotAfter) < renewBefore {
			if cert, key, err = newCA(dir, name); err != nil {
				return err
			}
			fresh = true
		}
		authorities[name] = authority{cert: cert, key: key, fresh: fresh}
	}
	for _, l := range leaves {
		ca, ok := authorities[l.ca]
		if !ok {
			return fmt.Errorf("pki: %s: unknown CA %q", l.name, l.ca)
		}
		cert, _, err := loadPair(dir, l.name)
		if err == nil && !ca.fresh && time.Until(cert.NotAfter) > renewBefore && cert.CheckSignatureFrom(ca.cert) == nil {
			continue
		}
		if err := newLeaf(dir, l, ca.cert, ca.key); err != nil {
			return err
		}
	}
	return ensureServiceAccountKey(dir)
}

// loadPair reads <name>.crt and <name>.key from dir.
func loadPair(dir, name string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, name+".crt"))
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, name+".key"))
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("pki: %s: not PEM", name)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %s: %w", name, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %s: %w", name, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("pki: %s: key is not a signer", name)
	}
	return cert, signer, nil
}

// newCA creates a self-signed CA as <name>.crt and <name>.key.
func newCA(dir, name string) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %s key: %w", name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "devstack-" + name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %s: %w", name, err)
	}
	if err := writePair(dir, name, der, key); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %s: %w", name, err)
	}
	return cert, key, nil
}

// newLeaf issues the certificate l from ca.
func newLeaf(dir string, l leafSpec, ca *x509.Certificate, caKey crypto.Signer) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: %s key: %w", l.name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: l.cn, Organization: l.org},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  l.usage,
		DNSNames:     l.dnsNames,
		IPAddresses:  l.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return fmt.Errorf("pki: %s: %w", l.name, err)
	}
	return writePair(dir, l.name, der, key)
}

// writePair writes a certificate and its PKCS#8 key, the key readable by the
// owner only.
func writePair(dir, name string, der []byte, key crypto.Signer) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: %s: %w", name, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return fmt.Errorf("pki: %s: %w", name, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("pki: %s: %w", name, err)
	}
	return nil
}

// ensureServiceAccountKey creates sa.key and sa.pub, the RSA key pair that
// signs and verifies service-account tokens, unless both exist. It is never
// rotated by devstack: tokens stored in the cluster stay valid.
func ensureServiceAccountKey(dir string) error {
	keyPath, pubPath := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	_, errKey := os.Stat(keyPath)
	_, errPub := os.Stat(pubPath)
	if errKey == nil && errPub == nil {
		return nil
	}
	if errKey != nil && !errors.Is(errKey, os.ErrNotExist) {
		return fmt.Errorf("pki: %w", errKey)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("pki: service-account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("pki: service-account key: %w", err)
	}
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := writeFileAtomic(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// serial returns a random 127-bit certificate serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand does not fail on Linux; a fixed serial is still valid.
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}
