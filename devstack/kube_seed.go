package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

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
