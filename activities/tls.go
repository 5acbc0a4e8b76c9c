package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"rotator/catalog"
	"rotator/pki"
)

// TLS holds what certificate checks need: the cluster, where the
// certificates are, and the catalog.
type TLS struct {
	Kube    kubernetes.Interface
	Catalog *catalog.Catalog
	Vault   *vaultapi.Client
}

// tlsMaterial is a certificate Vault's PKI engine issues, in a
// kubernetes.io/tls Secret, which is what Ingress controllers require; the
// Ingresses that serve it move with the workloads.
func tlsMaterial() kindMaterial {
	return kindMaterial{
		checkPlan: checkTLS,
		generate:  func(ctx context.Context, k *Kube, p Plan) (map[string][]byte, error) { return k.issue(ctx, p) },
		written: func(catalog.Target, bool) []string {
			return []string{pki.DataCert, pki.DataKey, pki.DataCA}
		},
		// The certificate and CA are public: only the private key is.
		secret:     []string{pki.DataKey},
		secretType: corev1.SecretTypeTLS,
		ingresses:  true,
		ready: func(k *Kube, t catalog.Target) error {
			if k.Vault == nil {
				return badInput("target %s: tls: the worker has no Vault connection to issue certificates: set VAULT_ADDR and a token (or vault.auth in rotator.yaml) and restart it", t.Name)
			}
			return nil
		},
	}
}

// issue has Vault's PKI engine issue the certificate a tls plan asks for;
// the private key exists only in this call and in the new Secret.
func (k *Kube) issue(ctx context.Context, p Plan) (map[string][]byte, error) {
	if p.TLS == nil {
		return nil, badInput("tls target %s has no certificate plan: preflight did not run", p.Target)
	}
	t := p.TLS
	b, info, err := (&pki.Issuer{Client: k.Vault}).Issue(ctx, pki.Request{
		Mount: t.Mount, Role: t.Role, CommonName: t.CommonName, DNSNames: t.DNSNames, IPs: t.IPs, TTL: t.TTL,
	})
	if err != nil {
		if pki.IsPermanent(err) {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("target %s: tls: %v", p.Target, err), ErrBadInput, nil)
		}
		return nil, err
	}
	activity.GetLogger(ctx).Info("issued certificate", "target", p.Target, "serial", info.Serial, "not_after", info.NotAfter)
	return b.SecretData(), nil
}

// VerifyCertificate proves the new Secret is a usable certificate: it
// parses, matches its key, covers every name, chains to its CA and is
// valid now; with a handshake address, the server there presents it.
func (c *TLS) VerifyCertificate(ctx context.Context, in CertInput) (CertInfo, error) {
	t, err := checkPlan(c.Catalog, in.Plan)
	if err != nil {
		return CertInfo{}, err
	}
	if in.Plan.TLS == nil {
		return CertInfo{}, badInput("tls target %s has no certificate plan: preflight did not run", in.Plan.Target)
	}
	if err := checkRef(t, "new", in.New); err != nil {
		return CertInfo{}, err
	}
	s, err := c.Kube.CoreV1().Secrets(t.Namespace).Get(ctx, in.New.Name, metav1.GetOptions{})
	if err != nil {
		return CertInfo{}, classify(fmt.Errorf("read Secret %s: %w", in.New.Name, err))
	}
	if err := checkLabels(t, s); err != nil {
		return CertInfo{}, err
	}
	b := pki.FromSecretData(s.Data)
	info, err := pki.Verify(b, in.Plan.TLS.Names(), time.Now())
	if err != nil {
		return CertInfo{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("Secret %s: %v", in.New.Name, err), ErrCertificate, nil)
	}
	if addr := in.Plan.TLS.Handshake; addr != "" {
		// Retried: an Ingress controller or a pod needs a moment to load
		// the new certificate after the rollout.
		served, err := pki.Handshake(ctx, addr, in.Plan.TLS.ServerName, b.CAPEM)
		if err != nil {
			return CertInfo{}, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		if served.Serial != info.Serial {
			return CertInfo{}, fmt.Errorf("%s presents certificate %s, not the new %s yet", addr, served.Serial, info.Serial)
		}
	}
	activity.GetLogger(ctx).Info("certificate verified", "secret", in.New.Name, "serial", info.Serial, "not_after", info.NotAfter)
	return CertInfo{Serial: info.Serial, NotAfter: info.NotAfter, Names: append(info.DNSNames, info.IPs...)}, nil
}

// ScanCertificates reads the current certificate of every tls target and
// says which are due for renewal. A certificate that cannot be read or
// parsed is reported, not skipped.
func (c *TLS) ScanCertificates(ctx context.Context, in ScanInput) (ScanResult, error) {
	k := &Kube{Client: c.Kube, Catalog: c.Catalog}
	var res ScanResult
	for _, t := range c.Catalog.Targets {
		if t.Kind != catalog.KindTLS {
			continue
		}
		st := CertState{Target: t.Name}
		v, err := k.versions(ctx, t, "")
		if err != nil {
			// A permanent error (no Secret, no key) is the target's
			// problem and is reported; anything else retries the scan.
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || !app.NonRetryable() {
				return res, err
			}
			st.Error = app.Message()
			res.Certificates = append(res.Certificates, st)
			continue
		}
		st.Secret = v.current.Name
		info, err := pki.Inspect(pki.FromSecretData(v.secret.Data))
		if err != nil {
			st.Error = fmt.Sprintf("Secret %s/%s: %v", t.Namespace, v.current.Name, err)
		} else {
			st.NotAfter = info.NotAfter
			st.Due, st.Expired = pki.Due(info, in.Now, t.TLS.RenewBefore.Duration)
		}
		res.Certificates = append(res.Certificates, st)
	}
	return res, nil
}
