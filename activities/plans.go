// The plans and inputs of the kinds' own steps: TLS, API keys, PostgreSQL and
// the Vault record.

package activities

import (
	"time"

	"rotator/postgres"
)

// TLSPlan is what Vault's PKI engine issues for a tls target.
type TLSPlan struct {
	Mount      string        `json:"mount"`
	Role       string        `json:"role"`
	CommonName string        `json:"commonName"`
	DNSNames   []string      `json:"dnsNames,omitempty"`
	IPs        []string      `json:"ips,omitempty"`
	TTL        time.Duration `json:"ttl"`
	// Handshake is host:port whose server must present the new
	// certificate, with the SNI name to ask for.
	Handshake  string `json:"handshake,omitempty"`
	ServerName string `json:"serverName,omitempty"`
}

// Names are every name the certificate must cover.
func (t *TLSPlan) Names() []string {
	return append(append([]string{t.CommonName}, t.DNSNames...), t.IPs...)
}

// CertInput names the new version of a tls target to check.
type CertInput struct {
	Plan Plan      `json:"plan"`
	New  SecretRef `json:"new"`
}

// CertInfo describes a certificate without its key: what status shows.
type CertInfo struct {
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"notAfter"`
	Names    []string  `json:"names,omitempty"`
}

// ScanInput asks for the expiry of every tls target's current certificate
// as of Now (the scan workflow's clock).
type ScanInput struct {
	Now time.Time `json:"now"`
}

// CertState is one tls target's current certificate as the scan found it.
type CertState struct {
	Target   string    `json:"target"`
	Secret   string    `json:"secret,omitempty"`
	NotAfter time.Time `json:"notAfter,omitzero"`
	Due      bool      `json:"due,omitempty"`
	Expired  bool      `json:"expired,omitempty"`
	// Error is why the certificate could not be read or parsed.
	Error string `json:"error,omitempty"`
}

// ScanResult lists every tls target's state.
type ScanResult struct {
	Certificates []CertState `json:"certificates"`
}

// VaultPlan is the KV v2 path that records a target's versions.
type VaultPlan struct {
	Mount string `json:"mount"`
	Path  string `json:"path"`
}

// VaultLabels are the stage labels of a Vault path: version numbers, 0
// for none.
type VaultLabels struct {
	Current  int `json:"current"`
	Pending  int `json:"pending,omitempty"`
	Previous int `json:"previous,omitempty"`
}

// VaultInput asks to move the stage labels of a Vault path.
type VaultInput struct {
	Vault   VaultPlan `json:"vault"`
	Version int       `json:"version"`
	// Restore is what compensation puts back: the labels promote found.
	Restore VaultLabels `json:"restore,omitzero"`
}

// APIKeysPlan is where an apikeys target's keys are staged and what
// revoking the old ones needs.
type APIKeysPlan struct {
	Providers []ProviderPlan `json:"providers"`
	// StagingSecret is the short-lived Secret that holds staged keys when
	// the target has no Vault path; with one, they are at <path>/staged.
	StagingSecret string        `json:"stagingSecret,omitempty"`
	StageTimeout  time.Duration `json:"stageTimeout"`
	Probe         bool          `json:"probe,omitempty"`
}

// ProviderPlan is one provider of an apikeys target.
type ProviderPlan struct {
	Name    string `json:"name"`
	Key     string `json:"key"`
	BaseURL string `json:"baseURL"`
	// Admin says an admin key is configured, so retire revokes the old
	// key through the provider's admin API.
	Admin bool `json:"admin,omitempty"`
	// OldKeyID is the provider's id of the key in use before the
	// rotation, found at preflight through the admin API (not a secret).
	OldKeyID string `json:"oldKeyID,omitempty"`
}

// NeedsApproval lists the providers whose old key an engineer must revoke
// in the console, because no admin key is configured.
func (p *APIKeysPlan) NeedsApproval() []string {
	var out []string
	for _, pr := range p.Providers {
		if !pr.Admin {
			out = append(out, pr.Name)
		}
	}
	return out
}

// StagedKeys describes keys that passed the provider check, by fingerprint.
type StagedKeys struct {
	Fingerprints map[string]string `json:"fingerprints"`
}

// RevokeResult lists the keys revoked through admin APIs, by provider.
type RevokeResult struct {
	Revoked []string `json:"revoked"`
}

// PostgresPlan is where the database is and which role the new version
// logs in as.
type PostgresPlan struct {
	Server   postgres.Server `json:"server"`
	Strategy string          `json:"strategy"`
	Role     string          `json:"role"`
	// Users are the alternating-users pair.
	Users []string `json:"users,omitempty"`
	// Username is the login role of the new version.
	Username string `json:"username"`
	DSNKey   string `json:"dsnKey,omitempty"`
	// DSNSSLMode is the sslmode of the DSN under DSNKey.
	DSNSSLMode string `json:"dsnSSLMode,omitempty"`
}

// DatabaseInput names the versions a database step works on.
type DatabaseInput struct {
	Plan Plan      `json:"plan"`
	Old  SecretRef `json:"old"`
	New  SecretRef `json:"new"`
}
