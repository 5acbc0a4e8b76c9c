package e2e

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"rotator/clients"
	"rotator/internal/devtemporal"
	"rotator/workflows"
)

// TestRotationThroughMutualTLSTemporal runs a Temporal frontend of the
// test's own that requires a client certificate from the devstack's
// services CA and an API key, as a production cluster or Temporal Cloud
// does; the worker binary (configured by the environment variables every
// Temporal tool reads) and the starter (by its flags) rotate a JWT target
// through it, and clients short of a certificate, the right CA or the key
// are refused.
func TestRotationThroughMutualTLSTemporal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	pki := filepath.Join(os.Getenv("ROTATOR_DEVSTACK"), "pki")
	file := func(name string) string { return filepath.Join(pki, name) }
	dir := t.TempDir()

	key := "e2e-api-key-" + randomHex(t, 16)
	devstack.remember([]byte(key))
	keys := filepath.Join(dir, "server-api-keys")
	keyFile := filepath.Join(dir, "api-key")
	wrongKeyFile := filepath.Join(dir, "wrong-api-key")
	for path, body := range map[string]string{
		keys:         "# the keys this server accepts\n" + key + "\n",
		keyFile:      key + "\n",
		wrongKeyFile: "e2e-api-key-" + randomHex(t, 16) + "\n",
	} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	srv := devtemporal.StartForTest(t, ctx,
		"--tls-cert", file("temporal.crt"), "--tls-key", file("temporal.key"),
		"--tls-ca", file("services-ca.crt"), "--tls-client-ca", file("services-ca.crt"),
		"--system-worker-cert", file("temporal-system-worker.crt"), "--system-worker-key", file("temporal-system-worker.key"),
		"--api-keys-file", keys)

	good := clients.Temporal{
		Address: srv.Address(), Namespace: "default",
		TLSCert: file("temporal-client.crt"), TLSKey: file("temporal-client.key"),
		TLSCA: file("services-ca.crt"), TLSServerName: "localhost", APIKeyFile: keyFile,
	}

	// Refused: each client lacks one thing the server requires.
	noCert := good
	noCert.TLSCert, noCert.TLSKey = "", ""
	plain := clients.Temporal{Address: srv.Address(), Namespace: "default"}
	otherCA := good
	otherCA.TLSCA = file("ca.crt") // the Kubernetes CA, which did not sign the frontend's certificate
	noKey := good
	noKey.APIKeyFile = ""
	wrongKey := good
	wrongKey.APIKeyFile = wrongKeyFile
	for name, tc := range map[string]clients.Temporal{
		"plain gRPC":                     plain,
		"TLS without a client cert":      noCert,
		"a server CA that is not its CA": otherCA,
		"a client cert but no API key":   noKey,
		"a client cert and a wrong key":  wrongKey,
	} {
		if err := describeNamespace(ctx, tc); err == nil {
			t.Errorf("%s: the server answered DescribeNamespace", name)
		} else {
			t.Logf("%s: refused: %v", name, err)
			if strings.Contains(name, "key") {
				var denied *serviceerror.PermissionDenied
				if !errors.As(err, &denied) {
					t.Errorf("%s: want PermissionDenied from the server's authorizer, got %T %v", name, err, err)
				}
			}
		}
	}
	if err := describeNamespace(ctx, good); err != nil {
		t.Fatalf("certificate, CA and API key: %v", err)
	}

	// A rotation through it: the worker reads the connection from the
	// environment, the starter from its flags.
	f := newFixture(t, ctx, "", deployment("api", 2, envRef("app-jwt")))
	queue := f.taskQueue + "-mtls"
	bin := buildWorker(t, ctx)
	w := startWorkerBinary(t, bin, f.catalog, queue,
		"TEMPORAL_ADDRESS="+srv.Address(), "TEMPORAL_NAMESPACE=default",
		"TEMPORAL_TLS_CLIENT_CERT_PATH="+file("temporal-client.crt"), "TEMPORAL_TLS_CLIENT_KEY_PATH="+file("temporal-client.key"),
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH="+file("services-ca.crt"), "TEMPORAL_TLS_SERVER_NAME=localhost",
		"TEMPORAL_API_KEY="+key)
	w.waitReady(t, ctx)
	if logs := string(devstack.logs.bytes()); !strings.Contains(logs, `"address":"`+srv.Address()+`","namespace":"default","tls":true,"api_key":true`) {
		t.Errorf("the worker did not log a TLS connection with an API key to %s", srv.Address())
	}

	starter := func(args ...string) (string, error) {
		return devstack.runStarter(ctx, f.catalog, queue, append([]string{
			"--temporal-address", srv.Address(), "--namespace", "default",
			"--tls-cert-path", file("temporal-client.crt"), "--tls-key-path", file("temporal-client.key"),
			"--tls-ca-path", file("services-ca.crt"), "--tls-server-name", "localhost", "--api-key-file", keyFile,
		}, args...)...)
	}
	if out, err := starter("rotate", f.target, "--by", "e2e"); err != nil {
		t.Fatalf("rotate through mTLS: %v\n%s", err, out)
	}
	if out, err := starter("wait", f.target, "--step", string(workflows.StepGrace), "--timeout", "4m"); err != nil {
		t.Fatalf("wait for grace through mTLS: %v\n%s", err, out)
	}

	tc, err := good.Dial(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	id := workflows.WorkflowID(f.target)
	if err := tc.SignalWorkflow(ctx, id, "", workflows.SignalApprove, workflows.Decision{By: "e2e", Reason: "rotated through mTLS"}); err != nil {
		t.Fatalf("approve: %v", err)
	}
	var st workflows.Status
	if err := tc.GetWorkflow(ctx, id, "").Get(ctx, &st); err != nil {
		t.Fatalf("the rotation did not complete: %v", err)
	}
	if st.Step != workflows.StepDone || st.New == nil {
		t.Fatalf("result %+v", st)
	}
	if data, ok := f.secretData(ctx, st.New.Name); !ok || len(data["secret"]) == 0 {
		t.Errorf("new version %s: %v %v", st.New.Name, ok, data)
	}
	if spec := f.deploymentSpec(ctx, "api"); spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name != st.New.Name {
		t.Errorf("the consumer reads %s, want %s", spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name, st.New.Name)
	}
	// The rotation never reached the devstack's own server.
	if _, err := devstack.temporal.DescribeWorkflow(ctx, id, ""); !isNotFound(err) {
		t.Errorf("%s on the devstack's plain server: %v, want not found", id, err)
	}
	log, err := os.ReadFile(srv.Log)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "request refused"); n < 2 {
		t.Errorf("the server logged %d refusals, want one for the missing and one for the wrong key", n)
	}
	if strings.Contains(string(log), key) {
		t.Error("the server logged the API key")
	}
	w.stop(t)
}

// describeNamespace dials with tc and makes a call the server authorizes
// (the SDK's dial itself only asks GetSystemInfo, which every caller may).
func describeNamespace(ctx context.Context, tc clients.Temporal) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	opts, err := tc.Options(slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	return err
}
