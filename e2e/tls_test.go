package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"rotator/pki"
	"rotator/workflows"
)

// issueCert has the devstack's Vault PKI issue a certificate, as the
// Secret a team created before rotator managed it. The role backdates
// NotBefore by three days: a certificate stays at least a third of its
// life (pki.Due), so a short-lived one issued now would not be due yet.
func issueCert(t *testing.T, ctx context.Context, cn string, ttl time.Duration) (pki.Bundle, pki.Info) {
	t.Helper()
	if _, err := devstack.vault.Logical().WriteWithContext(ctx, "pki/roles/e2e-backdated", map[string]any{
		"allowed_domains": "svc.cluster.local", "allow_subdomains": true, "max_ttl": "720h", "not_before_duration": "72h",
	}); err != nil {
		t.Fatal(err)
	}
	b, info, err := (&pki.Issuer{Client: devstack.vault}).Issue(ctx, pki.Request{Role: "e2e-backdated", CommonName: cn, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return b, info
}

func stringData(m map[string][]byte) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// TestCertificateScanRenewsShortLived issues a certificate with a short TTL
// (inside renewBefore) and one with a long TTL, runs the scan, and checks
// that only the first is renewed, its Deployment and Ingress both move to
// the new kubernetes.io/tls Secret, and the new certificate verifies.
func TestCertificateScanRenewsShortLived(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	suffix := randomSuffix()
	cn := "app-" + suffix + ".svc.cluster.local"
	old, oldInfo := issueCert(t, ctx, cn, 2*time.Hour)
	fresh, _ := issueCert(t, ctx, "fresh-"+suffix+".svc.cluster.local", 700*time.Hour)

	f := newFixtureWith(t, ctx, fixtureSpec{
		secretType: corev1.SecretTypeTLS,
		secretData: stringData(old.SecretData()),
		targetYAML: "    kind: tls\n    tls: {role: devstack, commonName: " + cn + ", ttl: 24h, renewBefore: 12h}\n" +
			"  - name: fresh-" + suffix + "\n    kind: tls\n    namespace: %NS%\n    secret: fresh-tls\n" +
			"    tls: {role: devstack, commonName: fresh-" + suffix + ".svc.cluster.local, ttl: 700h, renewBefore: 12h}\n",
		prepare: func(t *testing.T, ctx context.Context, ns string) {
			if _, err := devstack.kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: "fresh-tls"}, Type: corev1.SecretTypeTLS, Data: fresh.SecretData(),
			}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			for name, secret := range map[string]string{"web": "app-jwt", "fresh": "fresh-tls"} {
				prefix := networkingv1.PathTypePrefix
				if _, err := devstack.kube.NetworkingV1().Ingresses(ns).Create(ctx, &networkingv1.Ingress{
					ObjectMeta: metav1.ObjectMeta{Name: name},
					Spec: networkingv1.IngressSpec{
						TLS: []networkingv1.IngressTLS{{Hosts: []string{cn}, SecretName: secret}},
						Rules: []networkingv1.IngressRule{{Host: cn, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
							Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{
								Service: &networkingv1.IngressServiceBackend{Name: "app", Port: networkingv1.ServiceBackendPort{Number: 443}}}}}}}}},
					},
				}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		},
	}, deployment("app", 2, func(s *corev1.PodSpec) {
		s.Volumes = []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "app-jwt"}}}}
	}))

	run, err := devstack.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.CertificateScanID + "-" + suffix, TaskQueue: f.taskQueue,
	}, workflows.TypeCertificateScan, workflows.CertificateScanInput{})
	if err != nil {
		t.Fatal(err)
	}
	var scan workflows.ScanStatus
	if err := run.Get(ctx, &scan); err != nil {
		t.Fatalf("scan: %v", err)
	}
	if len(scan.Certificates) != 2 || len(scan.Renewals) != 1 || scan.Renewals[0].Target != f.target || scan.Renewals[0].RunID == "" {
		t.Fatalf("scan: %+v; want both checked and only %s renewed", scan, f.target)
	}

	waitForStep(t, ctx, f, workflows.StepGrace)
	newName := f.secret + "-2"
	s, err := devstack.kube.CoreV1().Secrets(f.ns).Get(ctx, newName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Type != corev1.SecretTypeTLS || s.Immutable == nil || !*s.Immutable {
		t.Errorf("new Secret: type %s, immutable %v; want an immutable kubernetes.io/tls Secret", s.Type, s.Immutable)
	}
	info, err := pki.Verify(pki.FromSecretData(s.Data), []string{cn}, time.Now())
	if err != nil {
		t.Fatalf("the new certificate does not verify: %v", err)
	}
	if info.Serial == oldInfo.Serial || !info.NotAfter.After(oldInfo.NotAfter.Add(12*time.Hour)) {
		t.Errorf("new certificate %s until %s; old %s until %s: want a new one with the catalog's 24h TTL", info.Serial, info.NotAfter, oldInfo.Serial, oldInfo.NotAfter)
	}
	if n := referencesTo(f.deploymentSpec(ctx, "app"), newName); n != 1 {
		t.Errorf("deployment/app has %d references to %s, want 1", n, newName)
	}
	web, err := devstack.kube.NetworkingV1().Ingresses(f.ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || web.Spec.TLS[0].SecretName != newName {
		t.Errorf("ingress/web serves %v, want %s (%v)", web.Spec.TLS, newName, err)
	}
	other, _ := devstack.kube.NetworkingV1().Ingresses(f.ns).Get(ctx, "fresh", metav1.GetOptions{})
	if other.Spec.TLS[0].SecretName != "fresh-tls" {
		t.Error("the certificate outside its renewal window was touched")
	}
	if _, ok := f.secretData(ctx, "fresh-tls-2"); ok {
		t.Error("the certificate outside its renewal window was renewed")
	}
	out, err := f.starter(ctx, "status", f.target)
	if err != nil || !strings.Contains(out, "ingress/web: rolled out") {
		t.Errorf("status: %v\n%s", err, out)
	}
	if out, err := f.starter(ctx, "approve", f.target, "--by", "e2e", "--reason", "e2e"); err != nil {
		t.Fatalf("approve: %v\n%s", err, out)
	}
	var st workflows.Status
	if err := devstack.temporal.GetWorkflow(ctx, workflows.WorkflowID(f.target), "").Get(ctx, &st); err != nil {
		t.Fatal(err)
	}
	if st.Certificate == nil || st.Certificate.Serial != info.Serial {
		t.Errorf("status certificate: %+v, want serial %s", st.Certificate, info.Serial)
	}
	if _, ok := f.secretData(ctx, f.secret); ok {
		t.Error("the old certificate's Secret survived retire")
	}
	devstack.remember(old.KeyPEM, s.Data["tls.key"])
	assertNoSecretsInHistory(t, ctx, workflows.WorkflowID(f.target), old.KeyPEM, s.Data["tls.key"])
	writeHistory(t, ctx, workflows.WorkflowID(f.target), "renew-tls.json")
	writeHistory(t, ctx, workflows.WorkflowID(f.target), "renew-tls-workload-safety.json")
	writeHistory(t, ctx, workflows.WorkflowID(f.target), "renew-tls-accountable-decisions.json")
	// The scan's own history; the renewal it started is renew-tls.json.
	assertNoSecretsInHistory(t, ctx, run.GetID(), old.KeyPEM, s.Data["tls.key"])
	writeHistory(t, ctx, run.GetID(), "certificate-scan.json")
	writeHistory(t, ctx, run.GetID(), "certificate-scan-check-last-rotation.json")
}
