package clients

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// clearTemporalEnv keeps the machine's own TEMPORAL_* out of a test.
func clearTemporalEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "TEMPORAL_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Setenv("HOME", t.TempDir())
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestClientProfileDefaults(t *testing.T) {
	clearTemporalEnv(t)
	p, err := Temporal{}.ClientProfile()
	if err != nil {
		t.Fatal(err)
	}
	if p.Address != "127.0.0.1:7233" || p.Namespace != "default" || p.TLS != nil || p.APIKey != "" {
		t.Fatalf("defaults: %+v", p)
	}
}

func TestClientProfileFileEnvAndFlags(t *testing.T) {
	clearTemporalEnv(t)
	cfg := writeFile(t, "temporal.toml", `
[profile.prod]
address = "prod.example:7233"
namespace = "rotations"
[profile.prod.tls]
client_cert_path = "/etc/rotator/tls.crt"
client_key_path = "/etc/rotator/tls.key"
server_ca_cert_path = "/etc/rotator/ca.crt"
`)
	t.Setenv("TEMPORAL_CONFIG_FILE", cfg)
	t.Setenv("TEMPORAL_PROFILE", "prod")

	p, err := Temporal{}.ClientProfile()
	if err != nil {
		t.Fatal(err)
	}
	if p.Address != "prod.example:7233" || p.Namespace != "rotations" || p.TLS == nil ||
		p.TLS.ClientCertPath != "/etc/rotator/tls.crt" || p.TLS.ServerCACertPath != "/etc/rotator/ca.crt" {
		t.Fatalf("from the profile: %+v %+v", p, p.TLS)
	}

	// The environment goes over the file, a flag over both.
	t.Setenv("TEMPORAL_NAMESPACE", "from-env")
	p, err = Temporal{Address: "flag.example:7233", TLSServerName: "frontend.example"}.ClientProfile()
	if err != nil {
		t.Fatal(err)
	}
	if p.Address != "flag.example:7233" || p.Namespace != "from-env" || p.TLS.ServerName != "frontend.example" {
		t.Fatalf("env and flags: %+v %+v", p, p.TLS)
	}
	if got := (Temporal{}).NamespaceName(); got != "from-env" {
		t.Fatalf("NamespaceName = %q", got)
	}
}

func TestClientProfileAPIKeyFile(t *testing.T) {
	clearTemporalEnv(t)
	key := writeFile(t, "key", "  tmprl-key-value\n")
	tc := Temporal{Address: "ns.acct.tmprl.cloud:7233", APIKeyFile: key}
	p, err := tc.ClientProfile()
	if err != nil {
		t.Fatal(err)
	}
	if p.APIKey != "tmprl-key-value" {
		t.Fatalf("API key not trimmed from the file: %q", p.APIKey)
	}
	opts, err := tc.Options(discard())
	if err != nil {
		t.Fatal(err)
	}
	// An API key without other TLS settings still goes over TLS, as the
	// temporal CLI does: a bearer token in clear text would be the key given away.
	if opts.Credentials == nil || opts.ConnectionOptions.TLS == nil {
		t.Fatalf("API key: credentials %v, TLS %v", opts.Credentials, opts.ConnectionOptions.TLS)
	}
}

func TestClientProfileRefusals(t *testing.T) {
	clearTemporalEnv(t)
	empty := writeFile(t, "key", "\n")
	for name, tc := range map[string]struct {
		t    Temporal
		want string
	}{
		"empty key file":   {Temporal{APIKeyFile: empty}, "--api-key-file"},
		"missing key":      {Temporal{APIKeyFile: filepath.Join(t.TempDir(), "nope")}, "--api-key-file"},
		"cert without key": {Temporal{TLSCert: "/x/tls.crt"}, "--tls-key-path"},
		"unknown profile":  {Temporal{Profile: "nope", ConfigFile: writeFile(t, "t.toml", "[profile.default]\naddress=\"a:1\"\n")}, "--profile"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tc.t.ClientProfile()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %s", err, tc.want)
			}
		})
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
