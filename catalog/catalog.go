// Package catalog holds the targets file (rotator.yaml): what to rotate, where
// it lives and how often, and the validation that turns a bad file into an
// error naming the target, the field and the fix before anything changes.
package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"rotator/providers"
	"rotator/vault"
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
	DefaultGrace    = 7 * 24 * time.Hour
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

// WorkloadKinds are the consumer kinds whose pod templates rotator repoints.
var workloadKinds = []string{"Deployment", "StatefulSet", "DaemonSet"}

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
}

// JWT configures a jwt target.
type JWT struct {
	// Bytes is the length of the random key before base64 encoding.
	Bytes int `json:"bytes,omitempty"`
	// DualKey makes each new Secret also carry the previous key under
	// "previous", so applications that verify with both keys keep tokens
	// signed before the rotation valid through grace.
	DualKey bool `json:"dualKey,omitempty"`
}

// Postgres configures a postgres target: where the database is and how its
// password changes.
type Postgres struct {
	// Host and Port are the server as the worker reaches it.
	Host string `json:"host"`
	Port int    `json:"port,omitempty"`
	// Database is the database to log in to (default: the role's name).
	Database string `json:"database,omitempty"`
	// SSLMode is libpq's sslmode (default prefer).
	SSLMode string `json:"sslMode,omitempty"`
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
	// Kind is Deployment, StatefulSet or DaemonSet.
	Kind string `json:"kind"`
	// Name is the workload's name in the target's namespace.
	Name string `json:"name"`
}

// Duration is a time.Duration written in YAML as "2160h", "90m" or "90d".
type Duration struct {
	time.Duration
	// set tells an explicit zero, which is an error, from an absent field,
	// which takes the default.
	set bool
	// bad says why the written value is not a duration. Unmarshalling
	// does not know the field's name, so validation reports it, with the
	// target and the field.
	bad string
}

// UnmarshalJSON reads a duration string; sigs.k8s.io/yaml converts YAML to
// JSON first, so this also serves YAML. A value that is not a duration is
// kept as a problem for validation, never an unmarshalling error.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	*d = Duration{set: true}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		d.bad = fmt.Sprintf("want a duration string such as \"2160h\" or \"90d\", got %s", truncate(string(b)))
		return nil
	}
	v, err := ParseDuration(s)
	if err != nil {
		d.bad = err.Error()
		return nil
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration in Go's notation.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(d.String())), nil
}

// IsZero reports an unset duration, so that omitzero leaves it out and a
// written catalog parses back to the same defaults.
func (d Duration) IsZero() bool { return d.Duration == 0 && d.bad == "" }

// maxDays is the longest whole number of days a time.Duration holds.
const maxDays = int64(math.MaxInt64 / (24 * time.Hour))

// ParseDuration accepts Go durations plus a whole number of days ("90d"),
// since rotation cadences are written in days.
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a duration: use hours or days, e.g. \"2160h\" or \"90d\"", truncate(s))
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, bad
		}
		if err != nil || n > maxDays || n < -maxDays {
			return 0, fmt.Errorf("%q is too long: use at most %dd (292 years)", truncate(s), maxDays)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, bad
	}
	return v, nil
}

// Load reads, parses and validates a catalog file.
func Load(path string) (*Catalog, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	return c, nil
}

// Parse parses and validates catalog YAML. Unknown fields are errors, so a
// misspelt field never silently falls back to a default.
func Parse(b []byte) (*Catalog, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("the file is empty: add a targets: list (see rotator.yaml in the repository)")
	}
	var c Catalog
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("parse: %w", explainDecode(err))
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// decodeError is a decoding error in the catalog's words: the field's path
// and the fix, without the Go type names encoding/json uses, and without
// quoting more than the start of a huge value.
type decodeError struct {
	msg string
	err error
}

func (e *decodeError) Error() string { return e.msg }
func (e *decodeError) Unwrap() error { return e.err }

// explainDecode rewords the errors of encoding/json, which name Go types
// and may quote a whole value; YAML syntax errors already name the line.
func explainDecode(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "the file"
		}
		return &decodeError{fmt.Sprintf("%s: got %s, want %s: fix the value (see rotator.yaml in the repository)",
			field, truncate(te.Value), jsonKind(te.Type.Kind().String())), err}
	}
	// encoding/json reports unknown fields as a plain string.
	if name, ok := strings.CutPrefix(err.Error(), "error unmarshaling JSON: while decoding JSON: json: unknown field "); ok {
		if n, err := strconv.Unquote(name); err == nil {
			name = n
		}
		return &decodeError{fmt.Sprintf("unknown field %q: check its spelling and case, or remove it", truncate(name)), err}
	}
	if len(err.Error()) > 256 {
		return &decodeError{truncate(err.Error()), err}
	}
	return err
}

// jsonKind names a Go kind the way a YAML author thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "a whole number that fits"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "a list"
	case "struct", "map":
		return "a mapping of fields"
	default:
		return "a " + kind
	}
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

// FieldError is a validation error that names the target, the field and the fix.
type FieldError struct {
	Target string
	Field  string
	Detail string
}

// Error reads like "targets[0] (orchestrator-jwt): secret: is required".
func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Target, e.Field, e.Detail)
}

func (c *Catalog) validate() error {
	if len(c.Targets) == 0 {
		return errors.New("targets: the list is empty: add at least one target")
	}
	var errs []error
	if c.Vault != nil {
		if err := c.Vault.check(); err != nil {
			errs = append(errs, err)
		}
	}
	seen := map[string]int{}
	for i := range c.Targets {
		t := &c.Targets[i]
		id := fmt.Sprintf("targets[%d]", i)
		if t.Name != "" {
			id = fmt.Sprintf("%s (%s)", id, truncate(t.Name))
		}
		fail := func(field, format string, args ...any) {
			errs = append(errs, &FieldError{Target: id, Field: field, Detail: fmt.Sprintf(format, args...)})
		}
		if prev, dup := seen[t.Name]; dup && t.Name != "" {
			fail("name", "%q is also the name of targets[%d]: target names must be unique", truncate(t.Name), prev)
		}
		seen[t.Name] = i
		t.applyDefaults()
		t.check(fail)
	}
	return errors.Join(errs...)
}

func (t *Target) applyDefaults() {
	if !t.Grace.set {
		t.Grace.Duration = DefaultGrace
	}
	if !t.Every.set {
		t.Every.Duration = defaultEvery[t.Kind]
	}
	if t.Kind == KindPostgres && t.Postgres != nil {
		if t.Key == "" {
			t.Key = "password"
		}
		p := t.Postgres
		if p.Port == 0 {
			p.Port = 5432
		}
		if p.Database == "" {
			p.Database = p.Role
		}
		if p.SSLMode == "" {
			p.SSLMode = "prefer"
		}
		if p.Strategy == "" {
			p.Strategy = StrategySingleUser
		}
		if p.Strategy == StrategyAlternating && len(p.Users) == 0 && p.Role != "" {
			p.Users = []string{p.Role + "_a", p.Role + "_b"}
		}
	}
	if t.Vault != nil && t.Vault.Mount == "" {
		t.Vault.Mount = DefaultVaultMount
	}
	if t.Kind == KindAPIKeys && t.APIKeys != nil {
		a := t.APIKeys
		if !a.StageTimeout.set {
			a.StageTimeout.Duration = DefaultStageTimeout
		}
		for i := range a.Providers {
			p := &a.Providers[i]
			if p.Key == "" && p.Name != "" {
				p.Key = p.Name + "-api-key"
			}
			if p.BaseURL == "" {
				p.BaseURL = providers.DefaultBaseURL(p.Name)
			}
			if p.Admin != nil && p.Admin.Key == "" {
				p.Admin.Key = DefaultAdminKey
			}
		}
		if a.Probe != nil {
			if a.Probe.Method == "" {
				a.Probe.Method = "GET"
			}
			if a.Probe.ExpectStatus == 0 {
				a.Probe.ExpectStatus = 200
			}
		}
	}
	if t.Kind == KindTLS && t.TLS != nil {
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
	if t.Kind == KindJWT {
		if t.Key == "" {
			t.Key = DefaultJWTKey
		}
		if t.JWT == nil {
			t.JWT = &JWT{}
		}
		if t.JWT.Bytes == 0 {
			t.JWT.Bytes = DefaultJWTBytes
		}
	}
}

func (t *Target) check(fail func(field, format string, args ...any)) {
	dns := func(field, v, what string, max int, f func(string) []string) {
		switch {
		case v == "":
			fail(field, "is required: %s", what)
		default:
			if msgs := f(v); len(msgs) > 0 {
				fail(field, "%q is not a valid name: %s", truncate(v), strings.Join(msgs, "; "))
			} else if len(v) > max {
				fail(field, "%q is %d characters: at most %d", truncate(v), len(v), max)
			}
		}
	}
	// Names end up in workflow IDs and Secret names, so they follow DNS-1123.
	dns("name", t.Name, "the target's name, e.g. orchestrator-jwt; rotations run as workflow rotate/<name>",
		validation.DNS1123SubdomainMaxLength, validation.IsDNS1123Subdomain)
	dns("namespace", t.Namespace, "the Kubernetes namespace of the Secret and its consumers",
		validation.DNS1123LabelMaxLength, validation.IsDNS1123Label)
	// The version suffix "-<n>" must still fit a Secret name.
	dns("secret", t.Secret, "the Secret's base name; its versions are <secret>-<n>",
		validation.DNS1123SubdomainMaxLength-11, validation.IsDNS1123Subdomain)
	switch {
	case t.Kind == "":
		fail("kind", "is required: use one of %s", kindList())
	case !slices.Contains(Kinds(), t.Kind):
		fail("kind", "%q is not a known kind: use one of %s", truncate(string(t.Kind)), kindList())
	}
	if t.Key != "" {
		if msgs := validation.IsConfigMapKey(t.Key); len(msgs) > 0 {
			fail("key", "%q is not a valid Secret data key: %s", truncate(t.Key), strings.Join(msgs, "; "))
		}
	}
	checkDuration(fail, "every", t.Every, minEvery, "e.g. every: 2160h (90 days)")
	checkDuration(fail, "grace", t.Grace, minGrace, "e.g. grace: 168h (7 days); use an emergency rotation to skip grace")
	if t.JWT != nil {
		if t.Kind != KindJWT {
			fail("jwt", "is only valid for kind jwt: remove it or set kind: jwt")
		} else if t.JWT.Bytes < minJWTBytes || t.JWT.Bytes > MaxJWTBytes {
			fail("jwt.bytes", "%d is out of range: use %d to %d (default %d)", t.JWT.Bytes, minJWTBytes, MaxJWTBytes, DefaultJWTBytes)
		}
	}
	switch {
	case t.Kind == KindPostgres && t.Postgres == nil:
		fail("postgres", "is required for kind postgres: add postgres: {host: ..., role: ...}")
	case t.Kind == KindPostgres:
		t.Postgres.check(fail)
	case t.Postgres != nil:
		fail("postgres", "is only valid for kind postgres: remove it or set kind: postgres")
	}
	if t.Kind == KindPostgres && t.Key != "password" {
		fail("key", "a postgres Secret holds username and password: remove key or set key: password")
	}
	switch {
	case t.Kind == KindAPIKeys && t.APIKeys == nil:
		fail("apiKeys", "is required for kind apikeys: add apiKeys: {providers: [{name: openai}, {name: anthropic}]}")
	case t.Kind == KindAPIKeys:
		// A catalog written back after parsing carries the key derived
		// below, which must read the same again.
		if t.Key != "" && (len(t.APIKeys.Providers) == 0 || t.Key != t.APIKeys.Providers[0].Key) {
			fail("key", "an apikeys Secret holds one key per provider: remove key and set apiKeys.providers[i].key instead")
		}
		t.APIKeys.check(fail)
		if len(t.APIKeys.Providers) > 0 {
			// The first provider's key stands for the version in
			// fingerprints and status.
			t.Key = t.APIKeys.Providers[0].Key
		}
	case t.APIKeys != nil:
		fail("apiKeys", "is only valid for kind apikeys: remove it or set kind: apikeys")
	}
	switch {
	case t.Kind == KindTLS && t.TLS == nil:
		fail("tls", "is required for kind tls: add tls: {role: ..., commonName: ...}")
	case t.Kind == KindTLS:
		if t.Key != TLSCertKey {
			fail("key", "a tls Secret holds tls.crt and tls.key: remove key")
		}
		t.TLS.check(fail)
	case t.TLS != nil:
		fail("tls", "is only valid for kind tls: remove it or set kind: tls")
	}
	if t.Vault != nil {
		checkVaultPath(t.Vault, fail)
	}
	seen := map[Consumer]bool{}
	for i, c := range t.Consumers {
		field := fmt.Sprintf("consumers[%d]", i)
		if !slices.Contains(workloadKinds, c.Kind) {
			fail(field+".kind", "%q is not a workload kind rotator repoints: use one of %s",
				truncate(c.Kind), strings.Join(workloadKinds, ", "))
		}
		if msgs := validation.IsDNS1123Subdomain(c.Name); len(msgs) > 0 {
			fail(field+".name", "%q is not a valid name: %s", truncate(c.Name), strings.Join(msgs, "; "))
		}
		if seen[c] {
			fail(field, "%s/%s is listed twice: remove the duplicate", truncate(c.Kind), truncate(c.Name))
		}
		seen[c] = true
	}
}

// pgMaxIdentifier is PostgreSQL's NAMEDATALEN-1.
const pgMaxIdentifier = 63

var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

func (p *Postgres) check(fail func(field, format string, args ...any)) {
	switch {
	case p.Host == "":
		fail("postgres.host", "is required: the server's host name as the worker reaches it")
	case !isHost(p.Host):
		fail("postgres.host", "%q is not a host name or IP address: use e.g. postgres.llm-orchestrator.svc or 10.0.0.5, without scheme, port or path (port goes in postgres.port)", truncate(p.Host))
	}
	if p.Port < 1 || p.Port > 65535 {
		fail("postgres.port", "%d is not a TCP port: use 1 to 65535 (default 5432)", p.Port)
	}
	role := func(field, v string) {
		switch {
		case v == "":
			fail(field, "is required: the name of an existing PostgreSQL role")
		default:
			checkPGName(fail, field, v, "role")
		}
	}
	role("postgres.role", p.Role)
	// The database defaults to the role's name, whose error says it all.
	if p.Database != "" && p.Database != p.Role {
		checkPGName(fail, "postgres.database", p.Database, "database")
	}
	if !slices.Contains(sslModes, p.SSLMode) {
		fail("postgres.sslMode", "%q is not an sslmode: use one of %s", truncate(p.SSLMode), strings.Join(sslModes, ", "))
	}
	switch p.Strategy {
	case StrategySingleUser:
		if len(p.Users) > 0 {
			fail("postgres.users", "is only used by strategy %s: remove it or change the strategy", StrategyAlternating)
		}
	case StrategyAlternating:
		if len(p.Users) != 2 {
			fail("postgres.users", "lists %d roles: alternating-users needs exactly two, e.g. [%s_a, %s_b]", len(p.Users), p.Role, p.Role)
		} else {
			for i, u := range p.Users {
				role(fmt.Sprintf("postgres.users[%d]", i), u)
				if u == p.Role {
					fail(fmt.Sprintf("postgres.users[%d]", i), "%q is the owning role: the login roles must be two other roles", truncate(u))
				}
			}
			if p.Users[0] == p.Users[1] {
				fail("postgres.users", "names %q twice: use two different roles", truncate(p.Users[0]))
			}
		}
		if p.AdminSecret == nil {
			fail("postgres.adminSecret", "is required for alternating-users: a Secret with username and password of a role with CREATEROLE, e.g. {namespace: rotator, name: postgres-admin}")
		} else {
			checkSecretRef("postgres.adminSecret", *p.AdminSecret, fail)
		}
	default:
		fail("postgres.strategy", "%q is not a strategy: use %s or %s", truncate(p.Strategy), StrategySingleUser, StrategyAlternating)
	}
	if p.DSNKey != "" {
		if msgs := validation.IsConfigMapKey(p.DSNKey); len(msgs) > 0 {
			fail("postgres.dsnKey", "%q is not a valid Secret data key: %s", truncate(p.DSNKey), strings.Join(msgs, "; "))
		} else if p.DSNKey == "username" || p.DSNKey == "password" {
			fail("postgres.dsnKey", "%q would overwrite the %s key: choose another, e.g. DATABASE_URL", p.DSNKey, p.DSNKey)
		}
	}
}

// isHost accepts an IP address or a DNS host name (letters, digits, '-',
// '_' and dots, labels of at most 63 characters).
func isHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// checkPGName refuses PostgreSQL names that rotator would not handle as
// written. pgx quotes every identifier, so no name can inject SQL; a quote,
// semicolon, space or control character in a catalog is still far more
// likely a paste error or an attack than a real role, and it would travel
// on into Secrets, DSNs and logs.
func checkPGName(fail func(field, format string, args ...any), field, v, what string) {
	switch {
	case len(v) > pgMaxIdentifier:
		fail(field, "%q is %d bytes: PostgreSQL truncates names at %d, so two names could mean one %s; use a shorter one", truncate(v), len(v), pgMaxIdentifier, what)
	case strings.IndexFunc(v, func(r rune) bool { return !isPGNameRune(r) }) >= 0:
		fail(field, "%q has characters other than letters, digits, '_', '-', '.' and '$': rename the %s (ALTER %s ... RENAME TO ...) and write the new name here",
			truncate(v), what, strings.ToUpper(what))
	}
}

func isPGNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.$", r)
}

func (a *APIKeys) check(fail func(field, format string, args ...any)) {
	if len(a.Providers) == 0 {
		fail("apiKeys.providers", "is empty: list the providers whose keys the Secret holds, e.g. [{name: openai}, {name: anthropic}]")
	}
	names, keys := map[string]int{}, map[string]int{}
	for i, p := range a.Providers {
		field := fmt.Sprintf("apiKeys.providers[%d]", i)
		switch {
		case p.Name == "":
			fail(field+".name", "is required: use one of %s", strings.Join(providers.Names(), ", "))
		case !slices.Contains(providers.Names(), p.Name):
			fail(field+".name", "%q is not a provider rotator knows: use one of %s", truncate(p.Name), strings.Join(providers.Names(), ", "))
		default:
			if prev, dup := names[p.Name]; dup {
				fail(field+".name", "%s is also providers[%d]: list each provider once", p.Name, prev)
			}
			names[p.Name] = i
		}
		if msgs := validation.IsConfigMapKey(p.Key); len(msgs) > 0 {
			fail(field+".key", "%q is not a valid Secret data key: %s", truncate(p.Key), strings.Join(msgs, "; "))
		} else if prev, dup := keys[p.Key]; dup {
			fail(field+".key", "%q is also the key of providers[%d]: each provider needs its own data key", p.Key, prev)
		}
		keys[p.Key] = i
		if p.Name != "" && p.BaseURL != "" {
			if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				fail(field+".baseURL", "%q is not an http(s) URL: use e.g. %s", truncate(p.BaseURL), providers.DefaultBaseURL(p.Name))
			}
		}
		if p.Admin != nil {
			checkSecretRef(field+".admin.secret", p.Admin.Secret, fail)
			if msgs := validation.IsConfigMapKey(p.Admin.Key); len(msgs) > 0 {
				fail(field+".admin.key", "%q is not a valid Secret data key: %s", truncate(p.Admin.Key), strings.Join(msgs, "; "))
			}
			if p.Name == providers.OpenAI && p.Admin.ProjectID == "" {
				fail(field+".admin.projectID", "is required for openai: the id (proj_...) of the project that owns the keys, from the project's settings page")
			}
			if p.Name != providers.OpenAI && p.Admin.ProjectID != "" {
				fail(field+".admin.projectID", "is only used by openai: remove it")
			}
		}
	}
	checkDuration(fail, "apiKeys.stageTimeout", a.StageTimeout, minStageTimeout, "e.g. stageTimeout: 72h")
	if pr := a.Probe; pr != nil {
		if u, err := url.Parse(pr.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			fail("apiKeys.probe.url", "%q is not an http(s) URL: use the endpoint that exercises the keys, e.g. https://orchestrator.example.com/api/v1/workflows/execute", truncate(pr.URL))
		}
		if !slices.Contains([]string{"GET", "HEAD", "POST"}, pr.Method) {
			fail("apiKeys.probe.method", "%q is not supported: use GET, HEAD or POST", truncate(pr.Method))
		}
		if pr.Body != "" && pr.Method != "POST" {
			fail("apiKeys.probe.body", "is only sent with method POST: set method: POST or remove body")
		}
		if pr.ExpectStatus < 100 || pr.ExpectStatus > 599 {
			fail("apiKeys.probe.expectStatus", "%d is not an HTTP status: use e.g. 200", pr.ExpectStatus)
		}
	}
}

func (c *TLS) check(fail func(field, format string, args ...any)) {
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

func checkSecretRef(field string, r SecretRef, fail func(field, format string, args ...any)) {
	if msgs := validation.IsDNS1123Label(r.Namespace); len(msgs) > 0 {
		fail(field+".namespace", "%q is not a valid namespace: %s", truncate(r.Namespace), strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Subdomain(r.Name); len(msgs) > 0 {
		fail(field+".name", "%q is not a valid Secret name: %s", truncate(r.Name), strings.Join(msgs, "; "))
	}
}

// checkVaultPath refuses paths Vault would read differently from how they
// are written; vault.CheckPath says which and how to fix them.
func checkVaultPath(v *VaultPath, fail func(field, format string, args ...any)) {
	if err := vault.CheckPath(v.Path); err != nil {
		fail("vault.path", "%v", err)
	}
	if !isVaultMount(v.Mount) {
		fail("vault.mount", "%q is not a mount path: use the KV v2 mount, e.g. secret", truncate(v.Mount))
	}
}

// isVaultMount accepts a mount path Vault reads as written: no empty,
// relative or odd segments.
func isVaultMount(m string) bool {
	m = strings.Trim(m, "/")
	if m == "" || len(m) > 256 {
		return false
	}
	for seg := range strings.SplitSeq(m, "/") {
		if seg == "." || seg == ".." || !isVaultName(seg) {
			return false
		}
	}
	return true
}

// isVaultName accepts a role or mount segment: it becomes part of a Vault
// API path, so '/', '..' and characters that need escaping are refused.
func isVaultName(s string) bool {
	if s == "" || len(s) > 128 || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@", r)) {
			return false
		}
	}
	return true
}

// The shortest durations that make sense: a cadence shorter than an hour
// would start rotations faster than one can roll out, a grace or a wait for
// keys under a minute ends before anyone can act.
const (
	minEvery        = time.Hour
	minGrace        = time.Minute
	minStageTimeout = time.Minute
)

// checkDuration reports a duration that did not parse or is below min;
// an absent one took its default and is not checked.
func checkDuration(fail func(field, format string, args ...any), field string, d Duration, min time.Duration, example string) {
	switch {
	case d.bad != "":
		fail(field, "%s", d.bad)
	case !d.set:
	case d.Duration <= 0:
		fail(field, "%s must be positive, %s", d.Duration, example)
	case d.Duration < min:
		fail(field, "%s is too short: use at least %s, %s", d.Duration, shortDuration(min), example)
	}
}

// shortDuration writes 1h0m0s as 1h and 1m0s as 1m.
func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}

func (v *Vault) check() error {
	switch v.Auth.Method {
	case "", VaultAuthToken:
		if v.Auth.Role != "" || v.Auth.MountPath != "" || v.Auth.TokenPath != "" {
			return errors.New("vault.auth: role, mountPath and tokenPath are only used by method kubernetes: remove them or set method: kubernetes")
		}
	case VaultAuthKubernetes:
		var errs []error
		switch {
		case v.Auth.Role == "":
			errs = append(errs, errors.New("vault.auth.role: is required for method kubernetes: the Vault role bound to the worker's ServiceAccount"))
		case !isVaultName(v.Auth.Role):
			errs = append(errs, fmt.Errorf("vault.auth.role: %q is not a Vault role name: use letters, digits, '-', '_' and '.' only, as listed by vault list auth/kubernetes/role", truncate(v.Auth.Role)))
		}
		if v.Auth.MountPath != "" && !isVaultMount(v.Auth.MountPath) {
			errs = append(errs, fmt.Errorf("vault.auth.mountPath: %q is not a mount path: use where the kubernetes auth method is enabled, e.g. kubernetes", truncate(v.Auth.MountPath)))
		}
		if strings.ContainsRune(v.Auth.TokenPath, 0) || len(v.Auth.TokenPath) > 4096 {
			errs = append(errs, errors.New("vault.auth.tokenPath: is not a file path: remove it to use the projected ServiceAccount token"))
		}
		return errors.Join(errs...)
	default:
		return fmt.Errorf("vault.auth.method: %q is not supported: use token or kubernetes", truncate(v.Auth.Method))
	}
	return nil
}

func kindList() string {
	s := make([]string, 0, len(Kinds()))
	for _, k := range Kinds() {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

// truncate keeps error messages readable when a field holds a huge value.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
