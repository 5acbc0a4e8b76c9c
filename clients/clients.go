// Package clients holds how the worker and the CLI connect to Temporal,
// Kubernetes and Vault, from flags with the environment variables those
// tools' ecosystems already use (TEMPORAL_ADDRESS, KUBECONFIG, VAULT_ADDR).
package clients

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	vaultapi "github.com/hashicorp/vault/api"

	"rotator/catalog"
	"rotator/codec"
	"rotator/vault"
)

// Temporal says where the Temporal frontend is, and how payloads are
// encrypted on the way there.
type Temporal struct {
	Address   string
	Namespace string
	TaskQueue string
	// Codec encrypts payloads and failure messages. Nil: Dial loads one
	// from ROTATOR_CODEC_KEYS_FILE or ROTATOR_CODEC_KEYS, and payloads stay
	// plain when neither is set. Set it to use a keyring from elsewhere
	// (tests).
	Codec converter.PayloadCodec
	// MetricsHandler receives the SDK's metrics, and the workflows' own
	// through workflow.GetMetricsHandler. Nil: none are recorded.
	MetricsHandler client.MetricsHandler
}

// TemporalFromEnv returns the defaults a flag set starts from. It leaves
// Codec nil: Dial reads the codec keys from the environment itself, since
// loading them can fail and this cannot report an error.
func TemporalFromEnv() Temporal {
	return Temporal{
		Address:   cmp.Or(os.Getenv("TEMPORAL_ADDRESS"), "127.0.0.1:7233"),
		Namespace: cmp.Or(os.Getenv("TEMPORAL_NAMESPACE"), "default"),
		TaskQueue: cmp.Or(os.Getenv("ROTATOR_TASK_QUEUE"), "rotator"),
	}
}

// Dial connects to Temporal; the SDK logs through log. With a codec (see
// Temporal.Codec) the client, and every worker made from it, encrypts what
// it sends and decrypts what it reads: payloads through the data
// converter, and error messages and stack traces through the failure
// converter, which would otherwise travel in clear text beside the
// encrypted payloads.
func (t Temporal) Dial(log *slog.Logger) (client.Client, error) {
	opts := client.Options{
		HostPort:       t.Address,
		Namespace:      t.Namespace,
		Logger:         tlog.NewStructuredLogger(log),
		MetricsHandler: t.MetricsHandler,
	}
	pc := t.Codec
	if pc == nil {
		// Checked before dialing: a keyring that is set but unusable must
		// stop the process, not let it write plaintext.
		ring, err := codec.Load()
		if err != nil {
			return nil, err
		}
		if ring != nil {
			pc = ring
			log.Info("payload encryption on", "active_key", ring.ActiveKeyID(), "keys", ring.KeyIDs())
		}
	}
	if pc != nil {
		dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), pc)
		opts.DataConverter = dc
		opts.FailureConverter = temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
			DataConverter:          dc,
			EncodeCommonAttributes: true,
		})
	}
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (set --temporal-address or TEMPORAL_ADDRESS): %w", t.Address, err)
	}
	return c, nil
}

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
		a = vault.Auth{Method: cfg.Auth.Method, Role: cfg.Auth.Role, MountPath: cfg.Auth.MountPath, TokenPath: cfg.Auth.TokenPath}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return vault.Connect(ctx, a, log)
}
