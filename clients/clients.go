// Package clients holds how the worker and the CLI connect to Temporal,
// Kubernetes and Vault, from flags with the environment variables those
// tools' ecosystems already use (TEMPORAL_ADDRESS, KUBECONFIG, VAULT_ADDR).
package clients

import (
	"context"
	"fmt"
	"log/slog"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	vaultapi "github.com/hashicorp/vault/api"

	"rotator/catalog"
	"rotator/vault"
)

// Kube connects to Kubernetes with kubectl's rules: KUBECONFIG or
// ~/.kube/config, else the in-cluster ServiceAccount.
func Kube(qps float32, burst int) (kubernetes.Interface, error) {
	cfg, err := KubeConfig(qps, burst)
	if err != nil {
		return nil, err
	}
	return KubeFor(cfg)
}

// KubeConfig loads the client configuration Kube uses, for callers that
// wrap its transport (the benchmarks count requests).
func KubeConfig(qps float32, burst int) (*rest.Config, error) {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load Kubernetes config (set KUBECONFIG, or run in a cluster): %w", err)
	}
	cfg.QPS, cfg.Burst = qps, burst
	cfg.UserAgent = "rotator"
	// Protobuf, as the cluster's own controllers use: the rollout watches
	// and lists cost the API server and the worker a fraction of JSON's
	// encoding work (make bench, scale). Patches keep their JSON bodies.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return cfg, nil
}

// KubeFor makes a client from a configuration.
func KubeFor(cfg *rest.Config) (kubernetes.Interface, error) {
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes client: %w", err)
	}
	return c, nil
}

// Vault logs in to Vault as the catalog's vault.auth says (a token from
// VAULT_TOKEN by default); address, namespace and TLS come from Vault's
// own environment variables. The returned func stops token renewal.
func Vault(ctx context.Context, cfg *catalog.Vault, log *slog.Logger) (*vaultapi.Client, func(), error) {
	var a vault.Auth
	if cfg != nil {
		a = vault.Auth{Method: cfg.Auth.Method, Role: cfg.Auth.Role, MountPath: cfg.Auth.MountPath, TokenPath: cfg.Auth.TokenPath, Audience: cfg.Auth.Audience}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return vault.Connect(ctx, a, log)
}
