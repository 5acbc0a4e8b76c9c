// Package pki issues and checks the TLS certificates of rotator's "tls"
// rotation kind.
//
// The daily scan reads each managed kubernetes.io/tls Secret into a Bundle
// (FromSecretData), inspects its leaf (Inspect) and asks whether it is due
// for renewal (Due). A rotation has Vault's PKI engine issue a new
// certificate (Issuer.Issue), writes Bundle.SecretData into the new Secret,
// proves the bundle usable before and after the rollout (Verify) and, where
// the catalog names an address, that the server there presents it
// (Handshake).
//
// A Bundle holds a private key. Nothing in this package puts a private key
// or a certificate body into an error message or a log line: messages name
// serial numbers, subjects, SANs, issuers and validity dates only. A Bundle
// prints as a summary with the key redacted and refuses JSON encoding, so
// that it cannot slip into a log or a Temporal payload (workflow history is
// stored in clear); pass Info between activities instead.
package pki
