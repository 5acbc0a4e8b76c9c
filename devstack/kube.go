package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// manifestFiles holds devstack/manifests: the fake nodes, the namespace and
// the demo workload.
//
//go:embed manifests/*.yaml
var manifestFiles embed.FS

const (
	demoNamespace  = "llm-orchestrator"
	demoDeployment = "orchestrator"
	demoSecret     = "orchestrator-jwt-secret"
	demoSecretKey  = "secret"
	// demoDBSecret holds the orchestrator's database login.
	demoDBSecret = "orchestrator-db-secret"
	// rotatorNamespace holds rotator's own credentials.
	rotatorNamespace   = "rotator"
	rotatorAdminSecret = "rotator-postgres-admin"
	// kwokNodeSelector selects the fake nodes of manifests/nodes.yaml.
	kwokNodeSelector = "type=kwok"
)

// kubeAPI is a minimal client of the devstack's API server, authenticated
// with the admin certificate, for readiness checks and existence tests.
type kubeAPI struct {
	base   string
	client *http.Client
}

// newKubeAPI loads the CA and admin certificate from pkiDir.
func newKubeAPI(base, pkiDir string) (*kubeAPI, error) {
	caPEM, err := os.ReadFile(filepath.Join(pkiDir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("kube api: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("kube api: ca.crt holds no certificate")
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, "admin.crt"), filepath.Join(pkiDir, "admin.key"))
	if err != nil {
		return nil, fmt.Errorf("kube api: %w", err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}
	return &kubeAPI{base: base, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}, nil
}

// get fetches path and returns the status code and body.
func (k *kubeAPI) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, body, err
}

// readyz returns nil when the API server reports itself ready.
func (k *kubeAPI) readyz(ctx context.Context) error {
	code, body, err := k.get(ctx, "/readyz")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("/readyz: %d %s", code, firstLine(body))
	}
	return nil
}

// exists reports whether the object at path exists.
func (k *kubeAPI) exists(ctx context.Context, path string) (bool, error) {
	code, body, err := k.get(ctx, path)
	switch {
	case err != nil:
		return false, err
	case code == http.StatusOK:
		return true, nil
	case code == http.StatusNotFound:
		return false, nil
	default:
		return false, fmt.Errorf("GET %s: %d %s", path, code, firstLine(body))
	}
}

// nodesReady returns nil when at least one node matches selector and every
// matching node has condition Ready=True.
func (k *kubeAPI) nodesReady(ctx context.Context, selector string) error {
	path := "/api/v1/nodes?labelSelector=" + url.QueryEscape(selector)
	code, body, err := k.get(ctx, path)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, code, firstLine(body))
	}
	var list struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
			Status   struct {
				Conditions []struct{ Type, Status string } `json:"conditions"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	if len(list.Items) == 0 {
		return fmt.Errorf("no node matches %s", selector)
	}
	var notReady []string
	for _, n := range list.Items {
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == "Ready" && c.Status == "True" {
				ready = true
			}
		}
		if !ready {
			notReady = append(notReady, n.Metadata.Name)
		}
	}
	if len(notReady) > 0 {
		return fmt.Errorf("nodes not Ready: %s", strings.Join(notReady, ", "))
	}
	return nil
}

// httpProbe returns nil when url answers 200. insecure skips verification of
// the serving certificate, for components that serve a self-signed one on
// 127.0.0.1.
func httpProbe(ctx context.Context, url string, insecure bool) error {
	tr := &http.Transport{DisableKeepAlives: true}
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // loopback health probe of a self-signed endpoint
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", url, resp.StatusCode, firstLine(body))
	}
	return nil
}

// kubeconfigData renders a kubeconfig for server with the certificate pair
// <user>.crt/.key from pkiDir embedded, so that the file works when copied.
func kubeconfigData(server, pkiDir, user string) ([]byte, error) {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(pkiDir, name))
		if err != nil {
			return "", fmt.Errorf("kubeconfig: %w", err)
		}
		return base64.StdEncoding.EncodeToString(b), nil
	}
	ca, err := read("ca.crt")
	if err != nil {
		return nil, err
	}
	crt, err := read(user + ".crt")
	if err != nil {
		return nil, err
	}
	key, err := read(user + ".key")
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: devstack
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: devstack
  context:
    cluster: devstack
    user: %s
current-context: devstack
`, server, ca, user, crt, key, user), nil
}

// writeIfChanged writes data to path unless the file already holds it.
func writeIfChanged(path string, data []byte, perm os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(path, data, perm)
}

// kubectl runs the built kubectl against the devstack cluster and returns its
// combined output.
type kubectl struct {
	bin        string
	kubeconfig string
}

// run runs kubectl with args, feeding stdin if not nil.
func (k kubectl) run(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, k.bin, append([]string{"--kubeconfig=" + k.kubeconfig}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// applyManifest applies one embedded manifest file.
func (k kubectl) applyManifest(ctx context.Context, name string) (string, error) {
	data, err := manifestFiles.ReadFile("manifests/" + name)
	if err != nil {
		return "", fmt.Errorf("manifest %s: %w", name, err)
	}
	return k.run(ctx, data, "apply", "-f", "-")
}

// seedWorkload creates the demo workload the first time: the namespaces, the
// JWT and database Secrets and the Deployment that consumes them, then waits
// for its rollout. An existing Deployment is left as it is, and so are its
// Secrets: rotations repoint it to versioned Secrets and retire the base ones,
// which a re-apply or re-create would undo. rotator's own admin Secret is
// created whenever it is absent.
func seedWorkload(ctx context.Context, out io.Writer, api *kubeAPI, kc kubectl, creds pgCredentials) error {
	res, err := kc.applyManifest(ctx, "namespace.yaml")
	if err != nil {
		return err
	}
	printIndented(out, res)

	if err := createSecretIfAbsent(ctx, out, api, kc, secretSpec{
		namespace: rotatorNamespace,
		name:      rotatorAdminSecret,
		app:       "rotator",
		data:      map[string]string{"username": rotatorAdminRole, "password": creds.adminPassword},
	}); err != nil {
		return err
	}

	deployPath := fmt.Sprintf("/apis/apps/v1/namespaces/%s/deployments/%s", demoNamespace, demoDeployment)
	code, body, err := api.get(ctx, deployPath)
	if err != nil {
		return err
	}
	switch code {
	case http.StatusOK:
		fmt.Fprintf(out, "  deployment.apps/%s exists (left as is)\n", demoDeployment)
		// A Deployment created before devstack had PostgreSQL lacks the
		// database env; say how to get it rather than patch a workload
		// that rotations own.
		if !bytes.Contains(body, []byte(`"`+demoDBSecret)) {
			fmt.Fprintf(out, "  note: it does not reference %s (created by an older devstack): `devstack down --purge && devstack up` recreates it\n", demoDBSecret)
		}
	case http.StatusNotFound:
		// The Secrets first: pods of a Deployment whose Secret is missing
		// fail with CreateContainerConfigError.
		jwtKey, err := newJWTKey()
		if err != nil {
			return err
		}
		for _, spec := range []secretSpec{
			{namespace: demoNamespace, name: demoSecret, app: demoDeployment, data: map[string]string{demoSecretKey: jwtKey}},
			{namespace: demoNamespace, name: demoDBSecret, app: demoDeployment,
				data: map[string]string{"username": orchestratorRole, "password": creds.orchestratorPassword}},
		} {
			if err := createSecretIfAbsent(ctx, out, api, kc, spec); err != nil {
				return err
			}
		}
		// Pods need the namespace's default ServiceAccount, which the
		// controller manager creates shortly after the namespace.
		saPath := fmt.Sprintf("/api/v1/namespaces/%s/serviceaccounts/default", demoNamespace)
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			if ok, _ := api.exists(ctx, saPath); ok {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(300 * time.Millisecond):
			}
		}
		data, err := manifestFiles.ReadFile("manifests/orchestrator.yaml")
		if err != nil {
			return fmt.Errorf("manifest orchestrator.yaml: %w", err)
		}
		res, err := kc.run(ctx, data, "create", "-f", "-")
		if err != nil {
			return err
		}
		printIndented(out, res)
	default:
		return fmt.Errorf("GET %s: %d %s", deployPath, code, firstLine(body))
	}

	start := time.Now()
	res, err = kc.run(ctx, nil, "-n", demoNamespace, "rollout", "status", "deployment/"+demoDeployment, "--timeout=5m")
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(res), "\n")
	fmt.Fprintf(out, "  %s (%s)\n", lines[len(lines)-1], time.Since(start).Round(100*time.Millisecond))
	return nil
}

// newJWTKey returns the demo JWT key: 64 random bytes, base64-encoded.
func newJWTKey() (string, error) {
	raw := make([]byte, 64)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("secret: %w", err)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// secretSpec is an Opaque Secret devstack seeds.
type secretSpec struct {
	namespace, name string
	// app is the value of the app label.
	app  string
	data map[string]string
}

// manifest renders the Secret for kubectl's stdin.
func (sp secretSpec) manifest() ([]byte, error) {
	return json.Marshal(map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"type":       "Opaque",
		"metadata": map[string]any{
			"name":      sp.name,
			"namespace": sp.namespace,
			"labels":    map[string]string{"app": sp.app},
		},
		"stringData": sp.data,
	})
}

// createSecretIfAbsent creates the Secret unless it exists. The values go to
// kubectl on stdin and are never printed.
func createSecretIfAbsent(ctx context.Context, out io.Writer, api *kubeAPI, kc kubectl, sp secretSpec) error {
	have, err := api.exists(ctx, fmt.Sprintf("/api/v1/namespaces/%s/secrets/%s", sp.namespace, sp.name))
	if err != nil {
		return err
	}
	if have {
		fmt.Fprintf(out, "  secret/%s exists in %s (left as is)\n", sp.name, sp.namespace)
		return nil
	}
	data, err := sp.manifest()
	if err != nil {
		return fmt.Errorf("secret %s: %w", sp.name, err)
	}
	res, err := kc.run(ctx, data, "create", "-f", "-")
	if err != nil {
		// Never let a value reach a terminal or a log through an error.
		return errors.New(sp.redact(err.Error()))
	}
	printIndented(out, sp.redact(res))
	return nil
}

// redact replaces every non-trivial value of the Secret in s.
func (sp secretSpec) redact(s string) string {
	for key, v := range sp.data {
		if key != "username" && v != "" {
			s = strings.ReplaceAll(s, v, "<redacted>")
		}
	}
	return s
}

// printIndented prints kubectl output indented under devstack's own lines.
func printIndented(out io.Writer, s string) {
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line != "" {
			fmt.Fprintf(out, "  %s\n", line)
		}
	}
}

// firstLine returns the first line of b, shortened, for error messages.
func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
