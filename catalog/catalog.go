// Package catalog holds the targets file (rotator.yaml): what to rotate, where
// it lives and how often, and the validation that turns a bad file into an
// error naming the target, the field and the fix before anything changes.
package catalog

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind names a family of secrets that share one way of rotating.
type Kind string

// The kinds this worker rotates. A kind is listed here only once its workflow
// exists, so a catalog never promises a rotation that cannot run.
const (
	KindJWT      Kind = "jwt"
	KindPostgres Kind = "postgres"
	KindAPIKeys  Kind = "apikeys"
	KindTLS      Kind = "tls"
)

// Kinds returns every supported kind, in the order errors list them.
func Kinds() []Kind { return []Kind{KindJWT, KindPostgres, KindAPIKeys, KindTLS} }

// The strategies of a postgres target.
const (
	// StrategySingleUser is the runbook's: the role changes its own
	// password, so new logins with the old one fail until the rollout ends.
	StrategySingleUser = "single-user"
	// StrategyAlternating switches consumers between two login roles, so
	// both passwords work throughout: no failed login.
	StrategyAlternating = "alternating-users"
)

// Defaults applied to fields a target leaves out.
const (
	DefaultGrace = 7 * 24 * time.Hour
	// DefaultMinGrace leaves time for a bad rollout's errors to show and
	// for someone to abort, whoever starts the rotation and however short
	// a grace they ask for.
	DefaultMinGrace = time.Hour
	DefaultJWTBytes = 64
	DefaultJWTKey   = "secret"
	// MaxJWTBytes bounds key size: larger keys add nothing to HS512 and a
	// Secret must stay well below etcd's 1 MiB object limit.
	MaxJWTBytes = 4096
	minJWTBytes = 32
	// DefaultStageTimeout is how long an API-key rotation waits for the
	// engineer to stage the new keys before it gives up, changing nothing.
	DefaultStageTimeout = 72 * time.Hour
	// DefaultVaultMount is where Vault mounts KV v2 unless told otherwise.
	DefaultVaultMount = "secret"
	// DefaultAdminKey is the data key of a provider admin Secret.
	DefaultAdminKey = "admin-key"
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

// DefaultEvery is the runbook's cadence for each kind.
var defaultEvery = map[Kind]time.Duration{
	KindJWT:      90 * 24 * time.Hour,
	KindPostgres: 90 * 24 * time.Hour,
	KindAPIKeys:  180 * 24 * time.Hour,
	// tls targets renew when the daily scan finds them due, not on a
	// fixed cadence.
}

// WorkloadKinds are the consumer kinds whose pod templates rotator
// repoints; a CronJob's is its job template's.
var workloadKinds = []string{"Deployment", "StatefulSet", "DaemonSet", "CronJob"}

// DefaultRolloutTimeout bounds a rollout without progress when the
// workload sets no deadline of its own (StatefulSets, DaemonSets).
const DefaultRolloutTimeout = 10 * time.Minute

// Catalog is the parsed and validated targets file.
type Catalog struct {
	// Vault says how the worker logs in to Vault; its address, namespace
	// and TLS settings come from Vault's own environment variables
	// (VAULT_ADDR, VAULT_NAMESPACE, VAULT_CACERT, ...).
	Vault   *Vault   `json:"vault,omitempty"`
	Targets []Target `json:"targets"`
}

// Vault configures the worker's Vault login.
type Vault struct {
	Auth VaultAuth `json:"auth"`
}

// VaultAuth selects the auth method: token (VAULT_TOKEN, for development)
// or kubernetes (the worker's ServiceAccount token, in a cluster).
type VaultAuth struct {
	Method string `json:"method,omitempty"`
	// Role is the Vault role of the kubernetes method.
	Role string `json:"role,omitempty"`
	// MountPath is where the kubernetes method is mounted (default kubernetes).
	MountPath string `json:"mountPath,omitempty"`
	// TokenPath is the ServiceAccount token file (default the projected one).
	TokenPath string `json:"tokenPath,omitempty"`
	// Audience is the audience that token must carry, the Vault role's
	// audience (default vault): the worker never sends a token for another
	// audience, such as the API server's own.
	Audience string `json:"audience,omitempty"`
}

// The Vault auth methods the worker supports.
const (
	VaultAuthToken      = "token"
	VaultAuthKubernetes = "kubernetes"
)

// UsesVault reports whether any target records its versions in Vault.
func (c *Catalog) UsesVault() bool {
	return slices.ContainsFunc(c.Targets, func(t Target) bool { return t.Vault != nil })
}

// Target is one secret that rotator rotates.
type Target struct {
	// Name identifies the target; the workflow ID is rotate/<name>.
	Name string `json:"name"`
	// Kind selects the rotation workflow.
	Kind Kind `json:"kind"`
	// Namespace holds the Secret and its consumers.
	Namespace string `json:"namespace"`
	// Secret is the base name; versions are <secret>-<n>.
	Secret string `json:"secret"`
	// Key is the data key that holds the material.
	Key string `json:"key,omitempty"`
	// Every is the rotation cadence used by schedules.
	Every Duration `json:"every,omitzero"`
	// Grace is how long the previous version stays valid after promote.
	Grace Duration `json:"grace,omitzero"`
	// MinGrace is the shortest grace a rotation of the target may ask for
	// instead of Grace (starter rotate --grace, the workflow input's
	// grace); the worker refuses a shorter one. Default: DefaultMinGrace,
	// or Grace when that is shorter.
	MinGrace Duration `json:"minGrace,omitzero"`
	// JWT configures the jwt kind.
	JWT *JWT `json:"jwt,omitempty"`
	// Postgres configures the postgres kind.
	Postgres *Postgres `json:"postgres,omitempty"`
	// APIKeys configures the apikeys kind.
	APIKeys *APIKeys `json:"apiKeys,omitempty"`
	// TLS configures the tls kind.
	TLS *TLS `json:"tls,omitempty"`
	// Vault, when set, records every version in Vault KV v2 as well.
	Vault *VaultPath `json:"vault,omitempty"`
	// Consumers lists workloads explicitly; they are discovered when empty.
	Consumers []Consumer `json:"consumers,omitempty"`
	// RolloutTimeout is how long a consumer's rollout may make no progress
	// before the step fails and rolls back (default: a Deployment's
	// progressDeadlineSeconds, else 10 minutes).
	RolloutTimeout Duration `json:"rolloutTimeout,omitzero"`
	// AcknowledgedManagers lets a rotation touch a Secret or consumer that
	// another tool manages (helm, argocd, flux, operator, or the value of
	// an app.kubernetes.io/managed-by label): preflight refuses any other.
	// Retire still never deletes a Secret another manager owns.
	AcknowledgedManagers []string `json:"acknowledgedManagers,omitempty"`
}

// JWT configures a jwt target.
type JWT struct {
	// Bytes is the length of the random key before base64 encoding.
	Bytes int `json:"bytes,omitempty"`
	// DualKey makes each new Secret also carry the previous key under
	// "previous", so applications that verify with both keys keep tokens
	// signed before the rotation valid through grace.
	DualKey bool `json:"dualKey,omitempty"`
	// Previous says how long a dual-key Secret's previous key stays
	// trusted: keepUntilNextRotation (default), or dropAtRetire, which
	// rolls the consumers out once more at retire onto a version without
	// it.
	Previous string `json:"previous,omitempty"`
}

// The values of jwt.previous.
const (
	PreviousKeepUntilNextRotation = "keepUntilNextRotation"
	PreviousDropAtRetire          = "dropAtRetire"
)

// Postgres configures a postgres target: where the database is and how its
// password changes.
type Postgres struct {
	// Host and Port are the server as the worker reaches it.
	Host string `json:"host"`
	Port int    `json:"port,omitempty"`
	// Database is the database to log in to (default: the role's name).
	Database string `json:"database,omitempty"`
	// SSLMode is libpq's sslmode for the worker's own connections
	// (default verify-full, against PGSSLROOTCERT or the system's CAs).
	// Whatever the mode, the worker refuses a connection that ends up
	// without TLS unless the mode is disable: allow and prefer fall back
	// to plain text silently, and ALTER ROLE must not travel so.
	SSLMode string `json:"sslMode,omitempty"`
	// DSNSSLMode is the sslmode written into the DSN the consumers read
	// (default: SSLMode when the catalog writes one, else prefer, what the
	// DSN said before the worker's default became verify-full: a
	// consumer without the server's CA would fail to connect).
	DSNSSLMode string `json:"dsnSSLMode,omitempty"`
	// SSLModeDefaulted says the catalog wrote no sslMode, so SSLMode is
	// DefaultSSLMode: rotations planned before that default (prefer then)
	// carry prefer, which the worker then replaces with verify-full.
	SSLModeDefaulted bool `json:"-"`
	// Role is the login role (single-user) or the role that owns the
	// objects and whose members the two login roles are (alternating-users).
	Role string `json:"role"`
	// Strategy is single-user (default) or alternating-users.
	Strategy string `json:"strategy,omitempty"`
	// Users are the two login roles of alternating-users (default
	// <role>_a and <role>_b).
	Users []string `json:"users,omitempty"`
	// AdminSecret holds username and password of a role with CREATEROLE,
	// needed by alternating-users to set the other role's password.
	AdminSecret *SecretRef `json:"adminSecret,omitempty"`
	// DSNKey, when set, adds a postgres:// URL under that data key.
	DSNKey string `json:"dsnKey,omitempty"`
}

// VaultPath is where a target's versions are recorded in Vault: each new
// version is a KV v2 version of mount/path, with stage labels in the path's
// custom_metadata.
type VaultPath struct {
	// Mount is the KV v2 mount (default secret).
	Mount string `json:"mount,omitempty"`
	// Path is the secret's path inside the mount.
	Path string `json:"path"`
}

// APIKeys configures an apikeys target: one Secret holding the keys of
// several LLM providers, each obtained by an engineer from the provider's
// console.
type APIKeys struct {
	Providers []Provider `json:"providers"`
	// Probe is the HTTP check run after promote (the runbook's curl).
	Probe *Probe `json:"probe,omitempty"`
	// StageTimeout bounds the wait for the engineer's keys (default 72h).
	StageTimeout Duration `json:"stageTimeout,omitzero"`
}

// Provider is one LLM provider whose key the Secret holds.
type Provider struct {
	// Name is openai or anthropic.
	Name string `json:"name"`
	// Key is the Secret's data key (default <name>-api-key).
	Key string `json:"key,omitempty"`
	// BaseURL is the provider's API (default its public one).
	BaseURL string `json:"baseURL,omitempty"`
	// Admin, when set, lets rotator revoke the old key at retire;
	// without it the engineer revokes it and approves.
	Admin *ProviderAdmin `json:"admin,omitempty"`
}

// ProviderAdmin is where a provider's admin key is kept.
type ProviderAdmin struct {
	Secret SecretRef `json:"secret"`
	// Key is the data key of the admin key (default admin-key).
	Key string `json:"key,omitempty"`
	// ProjectID is the OpenAI project that owns the keys.
	ProjectID string `json:"projectID,omitempty"`
}

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

// Probe is an HTTP request that must succeed once consumers run on the new
// keys.
type Probe struct {
	URL string `json:"url"`
	// Method is GET (default), HEAD or POST.
	Method string `json:"method,omitempty"`
	// Body is sent with POST.
	Body string `json:"body,omitempty"`
	// ExpectStatus is the status a healthy answer has (default 200).
	ExpectStatus int `json:"expectStatus,omitempty"`
}

// SecretRef names a Secret outside the target.
type SecretRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// Consumer names a workload that reads the Secret.
type Consumer struct {
	// Kind is Deployment, StatefulSet, DaemonSet or CronJob.
	Kind string `json:"kind"`
	// Name is the workload's name in the target's namespace.
	Name string `json:"name"`
}

// Acknowledges reports whether the target says a rotation may touch what
// the manager manages; names compare without regard to case.
func (t Target) Acknowledges(manager string) bool {
	return slices.ContainsFunc(t.AcknowledgedManagers, func(m string) bool { return strings.EqualFold(m, manager) })
}

// OldStopsAtApply reports whether the current credential stops working as
// soon as the new one is applied (a single-user PostgreSQL role has one
// password), so nothing may be left on it.
func (t Target) OldStopsAtApply() bool {
	return t.Kind == KindPostgres && t.Postgres != nil && t.Postgres.Strategy == StrategySingleUser
}

// DropsPrevious reports whether a dual-key target removes the previous key
// at retire, with a second rollout.
func (t Target) DropsPrevious() bool {
	return t.JWT != nil && t.JWT.DualKey && t.JWT.Previous == PreviousDropAtRetire
}

// Target returns the target with the given name.
func (c *Catalog) Target(name string) (Target, error) {
	for _, t := range c.Targets {
		if t.Name == name {
			return t, nil
		}
	}
	names := make([]string, 0, len(c.Targets))
	for _, t := range c.Targets {
		names = append(names, t.Name)
	}
	return Target{}, fmt.Errorf("target %q is not in the catalog: add it to rotator.yaml or use one of %s",
		truncate(name), strings.Join(names, ", "))
}
