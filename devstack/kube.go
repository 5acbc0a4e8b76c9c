package main

import (
	"bytes"
	"context"
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
