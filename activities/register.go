package activities

import (
	"net/http"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"k8s.io/client-go/kubernetes"

	"rotator/catalog"
)

// Deps are the clients every activity struct is built from.
type Deps struct {
	Kube    kubernetes.Interface
	Catalog *catalog.Catalog
	// Vault is nil when no target records versions in Vault.
	Vault *vaultapi.Client
	// HTTP reaches the LLM providers and probes; nil means a default.
	HTTP *http.Client
	// NotifyHTTP sends notifications; nil means a client with a 15 s
	// timeout.
	NotifyHTTP *http.Client
	// HeartbeatEvery is how often rollout waits heartbeat; zero means 10 s.
	HeartbeatEvery time.Duration
	// Temporal reads earlier rotations, for the workflows that start
	// them.
	Temporal client.Client
	// Fingerprints keys the fingerprints of secret values (see
	// LoadFingerprinter); without a key, Register uses a random one for
	// this process, never an unkeyed hash.
	Fingerprints Fingerprinter
}

// Register registers every activity struct's methods with the worker.
func Register(r worker.ActivityRegistry, d Deps) {
	if !d.Fingerprints.Keyed() {
		d.Fingerprints = RandomFingerprinter()
	}
	r.RegisterActivity(&Kube{Client: d.Kube, Catalog: d.Catalog, Vault: d.Vault, HeartbeatEvery: d.HeartbeatEvery, Fingerprints: d.Fingerprints, scans: newScanner()})
	r.RegisterActivity(&Postgres{Kube: d.Kube, Catalog: d.Catalog})
	r.RegisterActivity(&Redis{Kube: d.Kube, Catalog: d.Catalog})
	r.RegisterActivity(&APIKeys{Kube: d.Kube, Catalog: d.Catalog, Vault: d.Vault, HTTP: d.HTTP, Fingerprints: d.Fingerprints})
	r.RegisterActivity(&Vault{Client: d.Vault, Catalog: d.Catalog})
	r.RegisterActivity(&TLS{Kube: d.Kube, Catalog: d.Catalog, Vault: d.Vault})
	r.RegisterActivity(&Rotations{Temporal: d.Temporal})
	r.RegisterActivity(&Notifier{Catalog: d.Catalog, HTTP: d.NotifyHTTP})
}
