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

// Defaults applied to fields a target leaves out; each kind's own are in
// its file.
const (
	DefaultGrace = 7 * 24 * time.Hour
	// DefaultMinGrace leaves time for a bad rollout's errors to show and
	// for someone to abort, whoever starts the rotation and however short
	// a grace they ask for.
	DefaultMinGrace = time.Hour
	// DefaultVaultMount is where Vault mounts KV v2 unless told otherwise.
	DefaultVaultMount = "secret"
)

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
	Vault *Vault `json:"vault,omitempty"`
	// Notify holds the sinks every target's rotations notify.
	Notify *Notify `json:"notify,omitempty"`
	// Window is when the targets without a window of their own may
	// change what consumers see.
	Window  *Window  `json:"window,omitempty"`
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
	// Sections holds the section of the target's kind (jwt, postgres,
	// apiKeys, tls); embedded, its fields are the target's own.
	Sections
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
	// Notify lists sinks that receive this target's events besides the
	// catalog's.
	Notify []Sink `json:"notify,omitempty"`
	// Window, when set, is when a rotation of this target may change what
	// consumers see, instead of the catalog's window.
	Window *Window `json:"window,omitempty"`
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
