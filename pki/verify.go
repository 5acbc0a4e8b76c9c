package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Verify proves b is usable by a TLS server for names at now, checking in
// order (Error.Check names the one that failed):
//
//   - CheckCertificate: tls.crt's leaf parses;
//   - CheckKey: tls.key is the leaf's private key, and crypto/tls loads
//     the pair as a server would;
//   - CheckNames: the leaf covers each of names, a DNS name or an IP, as
//     a client checks it (x509's VerifyHostname; the common name does not
//     count, only SANs do);
//   - CheckValidity: now is within the leaf's NotBefore and NotAfter;
//   - CheckChain: the leaf chains through the rest of tls.crt to a CA in
//     ca.crt, with every certificate valid at now and allowed for server
//     authentication.
//
// Empty names are ignored. Once the leaf parses, the returned Info
// describes it even when a later check fails, so that the caller can log
// which certificate failed. Every error is permanent (IsPermanent): the
// bundle does not change by itself.
func Verify(b Bundle, names []string, now time.Time) (Info, error) {
	leaf, inter, msg := parseChain(b.CertPEM)
	if msg != "" {
		return Info{}, checkError(CheckCertificate, "%s", msg)
	}
	info := infoOf(leaf)
	if err := checkKey(b, leaf, info); err != nil {
		return info, err
	}
	if err := checkNames(leaf, info, names); err != nil {
		return info, err
	}
	if err := checkValidity(info, now); err != nil {
		return info, err
	}
	if err := checkChain(b, leaf, inter, info, now); err != nil {
		return info, err
	}
	return info, nil
}

// describe names a certificate in a message.
func describe(info Info) string {
	return fmt.Sprintf("serial %s, subject %q", info.Serial, info.Subject)
}

// checkKey proves tls.key belongs to the leaf. It parses the key itself
// rather than reading crypto/tls's error, whose text quotes PEM block
// types ("PRIVATE KEY") and may change between Go releases; crypto/tls
// then loads the pair, as the server will.
func checkKey(b Bundle, leaf *x509.Certificate, info Info) error {
	key, msg := parseKey(b.KeyPEM)
	if msg != "" {
		return checkError(CheckKey, "%s (the certificate in tls.crt: %s)", msg, describe(info))
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return checkError(CheckKey,
			"tls.key is not the private key of the certificate in tls.crt (%s): the Secret mixes two issues; write the key issued with this certificate, or issue a new certificate",
			describe(info))
	}
	if _, err := tls.X509KeyPair(b.CertPEM, b.KeyPEM); err != nil {
		return checkError(CheckKey,
			"crypto/tls does not load tls.crt and tls.key as a key pair (%s), although the key matches: the key's algorithm or encoding is not one a Go TLS server accepts; issue a new certificate",
			describe(info))
	}
	return nil
}

// parseKey parses the first private key block of tls.key. Messages name
// what is wrong in rotator's words and never quote the PEM.
func parseKey(keyPEM []byte) (crypto.Signer, string) {
	if len(strings.TrimSpace(string(keyPEM))) == 0 {
		return nil, "tls.key is empty or absent: write the private key issued with the certificate into tls.key"
	}
	var block *pem.Block
	sawCert := false
	for data := keyPEM; ; {
		block, data = pem.Decode(data)
		if block == nil || isPrivateKeyBlock(block.Type) {
			break
		}
		// Other blocks (openssl's EC PARAMETERS) precede keys at times.
		sawCert = sawCert || block.Type == pemCertificate
	}
	switch {
	case block == nil && sawCert:
		return nil, "tls.key holds a certificate and no private key: tls.crt and tls.key look swapped; put the certificate in tls.crt and the key in tls.key"
	case block == nil:
		return nil, "tls.key holds no PEM private key: a kubernetes.io/tls Secret's tls.key is an unencrypted PEM key (PKCS #1, PKCS #8 or SEC 1)"
	case strings.Contains(block.Type, "ENCRYPTED") || block.Headers["Proc-Type"] != "":
		return nil, "tls.key is encrypted: TLS servers read tls.key without a passphrase; write the key unencrypted"
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, "tls.key does not parse as the private key its PEM header announces: write the key issued with the certificate, unaltered"
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, ""
	case *ecdsa.PrivateKey:
		return k, ""
	case ed25519.PrivateKey:
		return k, ""
	}
	return nil, fmt.Sprintf("tls.key holds a %T, which TLS servers cannot use: issue an RSA, ECDSA or Ed25519 key", key)
}

// checkNames checks that the leaf covers every name a client may dial.
func checkNames(leaf *x509.Certificate, info Info, names []string) error {
	var missing []string
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		if leaf.VerifyHostname(n) != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	covers := "has no subject alternative names (clients ignore the common name)"
	if len(info.DNSNames)+len(info.IPs) > 0 {
		covers = fmt.Sprintf("covers DNS %v and IPs %v", info.DNSNames, info.IPs)
	}
	return checkError(CheckNames,
		"the certificate in tls.crt (%s) does not cover %s; it %s: issue a certificate with every name clients use (the target's tls.commonName, tls.dnsNames and tls.ips)",
		describe(info), strings.Join(missing, ", "), covers)
}

// checkValidity checks the leaf's dates at now, before the chain, so that
// an expired certificate is reported as such rather than as a chain error.
func checkValidity(info Info, now time.Time) error {
	switch {
	case now.Before(info.NotBefore):
		return checkError(CheckValidity,
			"the certificate in tls.crt (%s) is not valid before %s (now %s): the clocks of Vault and the worker disagree, or it was issued for later; check the clocks, or issue a new certificate",
			describe(info), info.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case now.After(info.NotAfter):
		return checkError(CheckValidity,
			"the certificate in tls.crt (%s) expired at %s (now %s): issue a new certificate",
			describe(info), info.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkChain builds the chain a client builds, trusting only ca.crt.
func checkChain(b Bundle, leaf *x509.Certificate, inter []*x509.Certificate, info Info, now time.Time) error {
	cas, msg := parseCAs(b.CAPEM)
	if msg != "" {
		return checkError(CheckChain, "%s (the certificate in tls.crt: %s)", msg, describe(info))
	}
	opts := x509.VerifyOptions{
		Roots:         x509.NewCertPool(),
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		CurrentTime:   now,
	}
	for _, c := range cas {
		opts.Roots.AddCert(c)
	}
	for _, c := range inter {
		opts.Intermediates.AddCert(c)
	}
	_, err := leaf.Verify(opts)
	if err == nil {
		return nil
	}
	// x509's messages name subjects, usages and dates, never bodies.
	var (
		unknown x509.UnknownAuthorityError
		invalid x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &unknown):
		return checkError(CheckChain,
			"the certificate in tls.crt (%s, issuer %q) does not chain to the CA in ca.crt (%s): write the chain of the CA that issued it into ca.crt, or issue it from the CA that ca.crt holds; an intermediate that signed it must follow the leaf in tls.crt",
			describe(info), info.Issuer, subjects(cas))
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		return checkError(CheckChain,
			"the certificate in tls.crt (%s) or a CA above it is not allowed for server authentication (extended key usage): issue from a role with server_flag=true, under a CA without an extended key usage that excludes it",
			describe(info))
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return checkError(CheckChain,
			"a CA certificate of the chain of tls.crt (%s) is not valid at %s (%v): renew the CA and issue a new certificate",
			describe(info), now.UTC().Format(time.RFC3339), err)
	}
	return checkError(CheckChain,
		"the certificate in tls.crt (%s) does not verify against ca.crt (%s): %v",
		describe(info), subjects(cas), err)
}
