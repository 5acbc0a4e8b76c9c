package clients

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"rotator/codec"
)

// Temporal says how to reach the Temporal frontend. The connection comes
// from where every Temporal tool reads it: the client config profile
// (temporal.toml, TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE) with the
// environment on top (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
// TEMPORAL_API_KEY, TEMPORAL_TLS_*), read by the SDK's envconfig; a field
// set here (a flag) overrides both.
type Temporal struct {
	// Address and Namespace override the profile's; the default is the
	// devstack's 127.0.0.1:7233, namespace default.
	Address   string
	Namespace string
	// Profile and ConfigFile select the client config profile.
	Profile    string
	ConfigFile string
	// TLS turns TLS on without a client certificate (a server with a
	// certificate from a public CA, Temporal Cloud with an API key).
	TLS bool
	// TLSCert and TLSKey are the client certificate of mTLS; TLSCA the CA
	// the server's certificate must chain to; TLSServerName its name.
	TLSCert, TLSKey, TLSCA, TLSServerName string
	// APIKeyFile is a file holding the API key (Temporal Cloud): a key
	// given on the command line would show in the process list.
	APIKeyFile string
	TaskQueue  string
	// Codec encrypts payloads and failure messages. Nil: Dial loads one
	// from ROTATOR_CODEC_KEYS_FILE or ROTATOR_CODEC_KEYS, and payloads stay
	// plain when neither is set. Set it to use a keyring from elsewhere
	// (tests). ROTATOR_CODEC_REQUIRED=true applies to it too: Dial then
	// fails without one, and the codec refuses unencrypted payloads.
	Codec converter.PayloadCodec
	// MetricsHandler receives the SDK's metrics, and the workflows' own
	// through workflow.GetMetricsHandler. Nil: none are recorded.
	MetricsHandler client.MetricsHandler
}

// The devstack's frontend and namespace, where nothing else says.
const (
	defaultTemporalAddress   = "127.0.0.1:7233"
	defaultTemporalNamespace = "default"
)

// TemporalFromEnv returns what a flag set starts from: no overrides, the
// task queue from ROTATOR_TASK_QUEUE. It leaves Codec nil: Dial reads the
// codec keys from the environment itself, since loading them can fail and
// this cannot report an error.
func TemporalFromEnv() Temporal {
	return Temporal{TaskQueue: cmp.Or(os.Getenv("ROTATOR_TASK_QUEUE"), "rotator")}
}

// Flags is what the standard library's and cobra's flag sets share.
type Flags interface {
	StringVar(p *string, name, value, usage string)
	BoolVar(p *bool, name string, value bool, usage string)
}

// Register adds the connection's flags, named as the temporal CLI names
// them where it has them, to a flag set.
func (t *Temporal) Register(fs Flags) {
	fs.StringVar(&t.Address, "temporal-address", t.Address, "Temporal frontend host:port (env TEMPORAL_ADDRESS; default the profile's, else 127.0.0.1:7233)")
	fs.StringVar(&t.Namespace, "namespace", t.Namespace, "Temporal namespace (env TEMPORAL_NAMESPACE; default the profile's, else default)")
	fs.StringVar(&t.Profile, "profile", t.Profile, "client config profile (env TEMPORAL_PROFILE)")
	fs.StringVar(&t.ConfigFile, "config-file", t.ConfigFile, "client config file (env TEMPORAL_CONFIG_FILE; default ~/.config/temporalio/temporal.toml)")
	fs.BoolVar(&t.TLS, "tls", t.TLS, "connect with TLS (on with any of the TLS flags or an API key)")
	fs.StringVar(&t.TLSCert, "tls-cert-path", t.TLSCert, "client certificate for mTLS (env TEMPORAL_TLS_CLIENT_CERT_PATH)")
	fs.StringVar(&t.TLSKey, "tls-key-path", t.TLSKey, "client certificate's key for mTLS (env TEMPORAL_TLS_CLIENT_KEY_PATH)")
	fs.StringVar(&t.TLSCA, "tls-ca-path", t.TLSCA, "CA of the server's certificate (env TEMPORAL_TLS_SERVER_CA_CERT_PATH)")
	fs.StringVar(&t.TLSServerName, "tls-server-name", t.TLSServerName, "server name the certificate must carry (env TEMPORAL_TLS_SERVER_NAME)")
	fs.StringVar(&t.APIKeyFile, "api-key-file", t.APIKeyFile, "file holding the API key, e.g. Temporal Cloud's (env TEMPORAL_API_KEY holds the key itself)")
}

// ClientProfile is the connection as the profile, the environment and the
// overrides make it.
func (t Temporal) ClientProfile() (envconfig.ClientConfigProfile, error) {
	p, err := envconfig.LoadClientConfigProfile(envconfig.LoadClientConfigProfileOptions{
		ConfigFilePath: t.ConfigFile, ConfigFileProfile: t.Profile,
	})
	if err != nil {
		return p, fmt.Errorf("temporal client config (--profile, --config-file, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE): %w", err)
	}
	p.Address = cmp.Or(t.Address, p.Address, defaultTemporalAddress)
	p.Namespace = cmp.Or(t.Namespace, p.Namespace, defaultTemporalNamespace)
	if t.APIKeyFile != "" {
		b, err := os.ReadFile(t.APIKeyFile)
		if err != nil {
			return p, fmt.Errorf("--api-key-file: %w", err)
		}
		if p.APIKey = strings.TrimSpace(string(b)); p.APIKey == "" {
			return p, fmt.Errorf("--api-key-file: %s is empty: write the API key into it", t.APIKeyFile)
		}
	}
	if t.TLS || t.TLSCert != "" || t.TLSKey != "" || t.TLSCA != "" || t.TLSServerName != "" {
		if p.TLS == nil {
			p.TLS = &envconfig.ClientConfigTLS{}
		}
		p.TLS.Disabled = false
		if t.TLSCert != "" {
			p.TLS.ClientCertPath, p.TLS.ClientCertData = t.TLSCert, nil
		}
		if t.TLSKey != "" {
			p.TLS.ClientKeyPath, p.TLS.ClientKeyData = t.TLSKey, nil
		}
		if t.TLSCA != "" {
			p.TLS.ServerCACertPath, p.TLS.ServerCACertData = t.TLSCA, nil
		}
		p.TLS.ServerName = cmp.Or(t.TLSServerName, p.TLS.ServerName)
	}
	if c := p.TLS; c != nil && !c.Disabled && (c.ClientCertPath != "" || len(c.ClientCertData) > 0) !=
		(c.ClientKeyPath != "" || len(c.ClientKeyData) > 0) {
		return p, fmt.Errorf("--tls-cert-path and --tls-key-path: mTLS needs both the client certificate and its key")
	}
	return p, nil
}

// Options are the client options Dial uses, without the codec.
func (t Temporal) Options(log *slog.Logger) (client.Options, error) {
	p, err := t.ClientProfile()
	if err != nil {
		return client.Options{}, err
	}
	opts, err := p.ToClientOptions(envconfig.ToClientOptionsRequest{})
	if err != nil {
		return client.Options{}, fmt.Errorf("temporal client config: %w", err)
	}
	if opts.ConnectionOptions.TLS != nil && opts.ConnectionOptions.TLS.MinVersion == 0 {
		opts.ConnectionOptions.TLS.MinVersion = tls.VersionTLS12
	}
	opts.Logger = tlog.NewStructuredLogger(log)
	opts.MetricsHandler = t.MetricsHandler
	return opts, nil
}

// Dial connects to Temporal; the SDK logs through log. With a codec (see
// Temporal.Codec) the client, and every worker made from it, encrypts what
// it sends and decrypts what it reads: payloads through the data
// converter, and error messages and stack traces through the failure
// converter, which would otherwise travel in clear text beside the
// encrypted payloads.
func (t Temporal) Dial(log *slog.Logger) (client.Client, error) {
	opts, err := t.Options(log)
	if err != nil {
		return nil, err
	}
	pc, err := t.payloadCodec(log)
	if err != nil {
		return nil, err
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
		return nil, fmt.Errorf("connect to Temporal at %s (set --temporal-address or TEMPORAL_ADDRESS, or a profile): %w", opts.HostPort, err)
	}
	log.Info("connected to Temporal", "address", opts.HostPort, "namespace", opts.Namespace,
		"tls", opts.ConnectionOptions.TLS != nil, "api_key", opts.Credentials != nil)
	return c, nil
}

// payloadCodec is the codec Dial uses: Temporal.Codec, else the keyring
// from the environment, else none. With ROTATOR_CODEC_REQUIRED=true a
// missing keyring is an error and the codec refuses unencrypted payloads.
// All of it is checked before dialing: a keyring that is set but unusable,
// or required but absent, must stop the process, not let it write or
// accept plaintext.
func (t Temporal) payloadCodec(log *slog.Logger) (converter.PayloadCodec, error) {
	required, err := codec.Required()
	if err != nil {
		return nil, err
	}
	pc, fromEnv := t.Codec, false
	if pc == nil {
		ring, err := codec.Load()
		if err != nil {
			return nil, err
		}
		if ring != nil {
			pc, fromEnv = ring, true
		}
	}
	if required {
		ring, ok := pc.(*codec.Codec)
		switch {
		case pc == nil:
			return nil, fmt.Errorf("%s=true, but no keyring is configured: set %s to the keyring file (docs/encryption.md), or unset %s to run without encryption",
				codec.EnvRequired, codec.EnvKeysFile, codec.EnvRequired)
		case !ok:
			return nil, fmt.Errorf("%s=true needs rotator's codec; the client was given a %T", codec.EnvRequired, pc)
		}
		pc = ring.RefusingPlain()
	}
	if ring, ok := pc.(*codec.Codec); ok && fromEnv {
		log.Info("payload encryption on", "active_key", ring.ActiveKeyID(), "keys", ring.KeyIDs(), "refuse_plain", ring.RefusesPlain())
	}
	return pc, nil
}

// NamespaceName is the namespace the connection uses, for the visibility
// queries and UI links that name it.
func (t Temporal) NamespaceName() string {
	p, err := t.ClientProfile()
	if err != nil {
		return cmp.Or(t.Namespace, defaultTemporalNamespace)
	}
	return p.Namespace
}
