package pki

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"

	"rotator/vault"
)

// The tests that issue certificates run against the devstack's real Vault
// and its PKI engine: mount pki, role devstack (names under
// svc.cluster.local, svc and localhost, IP SANs, max TTL 720h), root CA
// "rotator devstack root CA". Without the devstack they fail, as the e2e
// tests do; under -short they are left out.

const (
	devMount  = "pki"
	devRole   = "devstack"
	devRootCN = "rotator devstack root CA"
	appCN     = "app.llm-orchestrator.svc"
)

// devVault is a Vault client logged in as the worker logs in: vault.Connect
// with the token the devstack's environment names.
func devVault(t *testing.T) *vaultapi.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the PKI tests that need the devstack's Vault are left out")
	}
	if os.Getenv("VAULT_ADDR") == "" {
		t.Fatal("VAULT_ADDR is unset: the PKI tests need the devstack's Vault: run `make devstack`, then `source .devstack/env` (or `make test`)")
	}
	c, stop, err := vault.Connect(ctxFor(t), vault.Auth{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return c
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func random() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// appRequest asks the devstack role for the test application's names.
func appRequest() Request {
	return Request{
		Mount:      devMount,
		Role:       devRole,
		CommonName: appCN,
		DNSNames:   []string{"app.llm-orchestrator.svc.cluster.local", "localhost"},
		IPs:        []string{"127.0.0.1"},
		TTL:        time.Hour,
	}
}

func appNames() []string {
	r := appRequest()
	return append(append([]string{r.CommonName}, r.DNSNames...), r.IPs...)
}

func issue(t *testing.T, c *vaultapi.Client, r Request) (Bundle, Info) {
	t.Helper()
	b, info, err := (&Issuer{Client: c}).Issue(ctxFor(t), r)
	if err != nil {
		t.Fatal(err)
	}
	return b, info
}

// noLeak fails when msg contains a PEM key header or any piece of the
// bodies (key, certificates) of the bundles, in base64 or hex. It does not
// print msg, which would put the leak in the test log.
func noLeak(t *testing.T, msg string, bundles ...Bundle) {
	t.Helper()
	if i := strings.Index(msg, "PRIVATE KEY"); i >= 0 {
		t.Fatalf("message contains %q at byte %d", "PRIVATE KEY", i)
	}
	for _, b := range bundles {
		for _, data := range [][]byte{b.KeyPEM, b.CertPEM, b.CAPEM} {
			for rest := data; ; {
				var block *pem.Block
				block, rest = pem.Decode(rest)
				if block == nil {
					break
				}
				for _, enc := range []string{base64.StdEncoding.EncodeToString(block.Bytes), hex.EncodeToString(block.Bytes)} {
					// Any 16 characters of the body at a stride of 8: a
					// leaked 24 characters or more always contain one.
					for i := 0; i+16 <= len(enc); i += 8 {
						if strings.Contains(msg, enc[i:i+16]) {
							t.Fatalf("message contains part of a %s body", block.Type)
						}
					}
				}
			}
		}
	}
}

// wantCheck asserts err is a permanent *Error from the check named.
func wantCheck(t *testing.T, err error, check, substr string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want a *pki.Error", err, err)
	}
	if e.Check != check {
		t.Fatalf("check = %q, want %q: %v", e.Check, check, err)
	}
	if !IsPermanent(err) {
		t.Fatalf("a failed check is not permanent: %v", err)
	}
	if !strings.Contains(err.Error(), check+" check failed") || !strings.Contains(err.Error(), substr) {
		t.Fatalf("error does not name the %s check and say %q: %v", check, substr, err)
	}
	return e
}

// throwawayCA is a self-signed CA of the test's own, that Vault never saw.
func throwawayCA(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// throwawayLeaf is a leaf signed by a throwaway CA, with a PKCS #8 key.
func throwawayLeaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, caPEM []byte, usage x509.ExtKeyUsage, names ...string) Bundle {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return Bundle{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		CAPEM:   caPEM,
	}
}

func pemCerts(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	certs, _, msg := parseCerts(data, "test data")
	if msg != "" {
		t.Fatal(msg)
	}
	return certs
}

func TestIssueAndVerify(t *testing.T) {
	c := devVault(t)
	before := time.Now()
	b, info := issue(t, c, appRequest())
	after := time.Now()

	if lo, hi := before.Add(time.Hour-time.Minute), after.Add(time.Hour+time.Minute); info.NotAfter.Before(lo) || info.NotAfter.After(hi) {
		t.Errorf("NotAfter = %s, want about an hour from now (%s to %s)", info.NotAfter, lo, hi)
	}
	if info.Subject != "CN="+appCN {
		t.Errorf("Subject = %q, want CN=%s", info.Subject, appCN)
	}
	if info.Issuer != "CN="+devRootCN {
		t.Errorf("Issuer = %q, want CN=%s", info.Issuer, devRootCN)
	}
	for _, n := range []string{appCN, "app.llm-orchestrator.svc.cluster.local", "localhost"} {
		if !slices.Contains(info.DNSNames, n) {
			t.Errorf("DNSNames = %v, want %s among them", info.DNSNames, n)
		}
	}
	if !reflect.DeepEqual(info.IPs, []string{"127.0.0.1"}) {
		t.Errorf("IPs = %v, want [127.0.0.1]", info.IPs)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{12}$`).MatchString(info.Fingerprint) {
		t.Errorf("Fingerprint = %q, want sha256: and 12 hex digits", info.Fingerprint)
	}

	// tls.crt is the leaf alone (the devstack issues from its root, which
	// belongs in ca.crt only); ca.crt is the root.
	if leafs := pemCerts(t, b.CertPEM); len(leafs) != 1 {
		t.Errorf("tls.crt holds %d certificates, want the leaf only", len(leafs))
	}
	cas := pemCerts(t, b.CAPEM)
	if len(cas) != 1 || cas[0].Subject.CommonName != devRootCN || !selfSigned(cas[0]) {
		t.Errorf("ca.crt holds %s, want the self-signed %q only", subjects(cas), devRootCN)
	}

	got, err := Verify(b, appNames(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, info) {
		t.Errorf("Verify's Info = %+v, Issue's = %+v", got, info)
	}
	if got, err := Inspect(b); err != nil || !reflect.DeepEqual(got, info) {
		t.Errorf("Inspect = %+v, %v; want %+v", got, err, info)
	}

	// The serial is written as Vault writes it: Vault finds the
	// certificate by it.
	sec, err := c.Logical().ReadWithContext(ctxFor(t), devMount+"/cert/"+info.Serial)
	if err != nil || sec == nil {
		t.Fatalf("read %s/cert/%s: %v, %v", devMount, info.Serial, sec, err)
	}
	stored, _ := sec.Data["certificate"].(string)
	if certs := pemCerts(t, []byte(stored)); len(certs) != 1 || fingerprint(certs[0].Raw) != info.Fingerprint {
		t.Errorf("Vault's certificate %s is not the one issued", info.Serial)
	}

	// A Secret's data round-trips.
	back := FromSecretData(b.SecretData())
	if !bytes.Equal(back.CertPEM, b.CertPEM) || !bytes.Equal(back.KeyPEM, b.KeyPEM) || !bytes.Equal(back.CAPEM, b.CAPEM) {
		t.Error("FromSecretData(SecretData()) differs from the bundle")
	}
}

func TestVerifyFailures(t *testing.T) {
	c := devVault(t)
	a, info := issue(t, c, appRequest())
	other, otherInfo := issue(t, c, appRequest())
	if info.Serial == otherInfo.Serial {
		t.Fatal("two issues gave the same serial")
	}
	foreignCA, foreignKey, foreignPEM := throwawayCA(t, "not the devstack CA")
	clientOnly := throwawayLeaf(t, foreignCA, foreignKey, foreignPEM, x509.ExtKeyUsageClientAuth, appCN)
	corruptKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("0123456789abcdef0123456789abcdef")})
	now := time.Now()

	for _, tc := range []struct {
		name   string
		b      Bundle
		names  []string
		now    time.Time
		check  string
		substr string
	}{
		{"a name not covered", a, append(appNames(), "other.llm-orchestrator.svc"), now, CheckNames, "does not cover other.llm-orchestrator.svc"},
		{"an IP not covered", a, append(appNames(), "10.0.0.1"), now, CheckNames, "does not cover 10.0.0.1"},
		{"a key from another issue", Bundle{a.CertPEM, other.KeyPEM, a.CAPEM}, appNames(), now, CheckKey, "is not the private key of the certificate"},
		{"a CA that is not the issuer", Bundle{a.CertPEM, a.KeyPEM, foreignPEM}, appNames(), now, CheckChain, `does not chain to the CA in ca.crt ("CN=not the devstack CA")`},
		{"expired", a, appNames(), info.NotAfter.Add(time.Minute), CheckValidity, "expired at " + info.NotAfter.UTC().Format(time.RFC3339)},
		{"not yet valid", a, appNames(), info.NotBefore.Add(-time.Minute), CheckValidity, "is not valid before"},
		{"tls.crt and tls.key swapped", Bundle{a.KeyPEM, a.CertPEM, a.CAPEM}, appNames(), now, CheckCertificate, "look swapped"},
		{"the certificate in tls.key", Bundle{a.CertPEM, a.CertPEM, a.CAPEM}, appNames(), now, CheckKey, "look swapped"},
		{"tls.crt is not PEM", Bundle{[]byte("not a certificate"), a.KeyPEM, a.CAPEM}, appNames(), now, CheckCertificate, "no PEM certificate"},
		{"no tls.key", Bundle{a.CertPEM, nil, a.CAPEM}, appNames(), now, CheckKey, "tls.key is empty"},
		{"a corrupt key", Bundle{a.CertPEM, corruptKey, a.CAPEM}, appNames(), now, CheckKey, "does not parse"},
		{"no ca.crt", Bundle{a.CertPEM, a.KeyPEM, nil}, appNames(), now, CheckChain, "ca.crt is empty"},
		{"a key in ca.crt", Bundle{a.CertPEM, a.KeyPEM, append(slices.Clone(a.CAPEM), a.KeyPEM...)}, appNames(), now, CheckChain, "ca.crt holds a private key"},
		{"a client-only certificate", clientOnly, []string{appCN}, now, CheckChain, "not allowed for server authentication"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Verify(tc.b, tc.names, tc.now)
			wantCheck(t, err, tc.check, tc.substr)
			noLeak(t, err.Error(), a, other, clientOnly)
			if tc.check != CheckCertificate {
				want, _ := Inspect(tc.b)
				if got.Serial == "" || got.Serial != want.Serial {
					t.Errorf("Info.Serial = %q, want the leaf's %q even though a check failed", got.Serial, want.Serial)
				}
				if !strings.Contains(err.Error(), got.Serial) {
					t.Errorf("error does not name the serial %s: %v", got.Serial, err)
				}
			}
		})
	}

	// The same checks pass for a certificate of another CA when ca.crt is
	// that CA: Verify trusts ca.crt, not Vault.
	foreign := throwawayLeaf(t, foreignCA, foreignKey, foreignPEM, x509.ExtKeyUsageServerAuth, appCN)
	if _, err := Verify(foreign, []string{appCN}, time.Now()); err != nil {
		t.Errorf("a foreign certificate with its own CA in ca.crt: %v", err)
	}
}

func TestInspectFailures(t *testing.T) {
	for _, b := range []Bundle{{}, {CertPEM: []byte("garbage")}, {CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("garbage")})}} {
		_, err := Inspect(b)
		if err == nil || !IsPermanent(err) || !strings.HasPrefix(err.Error(), "pki: inspect: tls.crt") && !strings.HasPrefix(err.Error(), "pki: inspect: certificate #1 of tls.crt") {
			t.Errorf("Inspect(%v) = %v, want a permanent error about tls.crt", b, err)
		}
	}
}

func TestIssueRefused(t *testing.T) {
	c := devVault(t)
	role := "no-such-role-" + random()
	for _, tc := range []struct {
		name   string
		edit   func(*Request)
		status int
		want   []string
	}{
		{"a common name the role does not allow", func(r *Request) { r.CommonName = "example.com" }, 400,
			[]string{"common name example.com not allowed by this role", "allowed_domains"}},
		{"a SAN the role does not allow", func(r *Request) { r.DNSNames = append(r.DNSNames, "app.example.com") }, 400,
			[]string{"app.example.com not allowed by this role"}},
		{"no such role", func(r *Request) { r.Role = role }, 400,
			[]string{fmt.Sprintf("has no role %q", role), "vault list pki/roles"}},
		{"no such mount", func(r *Request) { r.Mount = "no-such-pki-" + random() }, 404,
			[]string{"no PKI engine answers at", "tls.mount"}},
		{"a TTL above the role's max", func(r *Request) { r.TTL = 800 * time.Hour }, 0,
			[]string{`maxTTL "720h0m0s"`, "set the target's tls.ttl to at most 720h", "max_ttl=800h"}},
		{"an IP that is not one", func(r *Request) { r.IPs = []string{"10.0.0.300"} }, 0,
			[]string{`"10.0.0.300" is not an IP address`}},
		{"a comma in a name", func(r *Request) { r.DNSNames = []string{"a.svc,b.example.com"} }, 0,
			[]string{"without commas"}},
		{"no role", func(r *Request) { r.Role = "" }, 0, []string{"no role"}},
		{"a negative TTL", func(r *Request) { r.TTL = -time.Hour }, 0, []string{"is not a lifetime"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := appRequest()
			tc.edit(&r)
			b, info, err := (&Issuer{Client: c}).Issue(ctxFor(t), r)
			if err == nil {
				t.Fatalf("issued %s", info.Serial)
			}
			if b.KeyPEM != nil || info.Serial != "" {
				t.Error("a failed issue returned a bundle or an Info")
			}
			if !IsPermanent(err) {
				t.Fatalf("not permanent: %v", err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != tc.status || e.Op != "issue" {
				t.Fatalf("error %#v, want op issue, status %d", e, tc.status)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q: %v", w, err)
				}
			}
			noLeak(t, err.Error())
		})
	}
}

func TestIssuePermissionDenied(t *testing.T) {
	root := devVault(t)
	ctx := ctxFor(t)
	policy := "rotator-pki-test-" + random()
	// The role may be read, not issued from: the mistake a policy makes
	// when it grants "read" where issuing needs "update".
	rules := fmt.Sprintf("path %q { capabilities = [\"read\"] }\npath %q { capabilities = [\"read\"] }", devMount+"/roles/*", devMount+"/issue/*")
	if err := root.Sys().PutPolicyWithContext(ctx, policy, rules); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = root.Sys().DeletePolicy(policy) })
	sec, err := root.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{Policies: []string{policy}, TTL: "10m", NoDefaultPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	tok := sec.Auth.ClientToken
	t.Cleanup(func() { _ = root.Auth().Token().RevokeTree(tok) })
	limited, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	limited.SetToken(tok)

	_, _, err = (&Issuer{Client: limited}).Issue(ctx, appRequest())
	if !IsPermanent(err) {
		t.Fatalf("want a permanent error, got %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != 403 || !strings.Contains(err.Error(), `needs the "update" capability on "pki/issue/devstack"`) {
		t.Fatalf("error does not name the capability: %v", err)
	}
	noLeak(t, err.Error())
}

// TestIssueUnavailable needs no devstack: what it checks happens when
// Vault does not answer.
func TestIssueUnavailable(t *testing.T) {
	client := func(t *testing.T, addr string) *vaultapi.Client {
		t.Helper()
		cfg := vaultapi.DefaultConfig()
		cfg.Address = addr
		cfg.MaxRetries = 0
		c, err := vaultapi.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.SetToken("test-token")
		return c
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	t.Cleanup(gateway.Close)
	sealed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"errors":["Vault is sealed"]}`))
	}))
	t.Cleanup(sealed.Close)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices the client leave only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	}))
	t.Cleanup(hang.Close)

	for _, tc := range []struct {
		name, addr string
		timeout    time.Duration
		status     int
		want       string
	}{
		{"Vault unreachable", closed, time.Minute, 0, "cannot reach Vault"},
		{"a gateway answers 502", gateway.URL, time.Minute, 502, "Vault answered 502; rotator retries"},
		{"Vault sealed", sealed.URL, time.Minute, 503, "Vault is sealed"},
		{"the deadline passes", hang.URL, 200 * time.Millisecond, 0, "cut short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			_, _, err := (&Issuer{Client: client(t, tc.addr)}).Issue(ctx, appRequest())
			if err == nil || IsPermanent(err) {
				t.Fatalf("want a retryable error, got %v", err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != tc.status || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v (status %d), want status %d and %q", err, e.Status, tc.status, tc.want)
			}
			if strings.Contains(err.Error(), "html") {
				t.Errorf("error copies the gateway's page: %v", err)
			}
		})
	}
	if _, _, err := (&Issuer{Client: client(t, hang.URL)}).Issue(ctxWithin(t, 100*time.Millisecond), appRequest()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", err)
	}
}

func ctxWithin(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// serve runs a TLS server presenting b on 127.0.0.1 and returns its
// address.
func serve(t *testing.T, b Bundle) string {
	t.Helper()
	cert, err := tls.X509KeyPair(b.CertPEM, b.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				_ = conn.(*tls.Conn).Handshake()
			}()
		}
	}()
	return ln.Addr().String()
}

func TestHandshake(t *testing.T) {
	c := devVault(t)
	b, info := issue(t, c, appRequest())
	next, nextInfo := issue(t, c, appRequest())
	addr := serve(t, b)
	_, _, foreignPEM := throwawayCA(t, "not the devstack CA")

	t.Run("the server presents the issued certificate", func(t *testing.T) {
		got, err := Handshake(ctxFor(t), addr, "localhost", b.CAPEM)
		if err != nil {
			t.Fatal(err)
		}
		if got.Serial != info.Serial || got.Fingerprint != info.Fingerprint {
			t.Fatalf("served %s (%s), want %s (%s)", got.Serial, got.Fingerprint, info.Serial, info.Fingerprint)
		}
		// What the caller checks after a rollout: the server presents
		// the new certificate, not this one.
		if got.Serial == nextInfo.Serial {
			t.Fatal("two issues share a serial")
		}
	})
	t.Run("the server name defaults to the address's host", func(t *testing.T) {
		got, err := Handshake(ctxFor(t), addr, "", next.CAPEM)
		if err != nil || got.Serial != info.Serial {
			t.Fatalf("Handshake = %s, %v; want %s", got.Serial, err, info.Serial)
		}
	})

	for _, tc := range []struct {
		name, addr, serverName string
		roots                  []byte
		permanent              bool
		served                 bool
		want                   string
	}{
		{"a name the certificate does not cover", addr, "other.llm-orchestrator.svc", b.CAPEM, false, true, `does not cover "other.llm-orchestrator.svc"`},
		{"a CA that did not issue it", addr, "localhost", foreignPEM, false, true, "does not chain to the CA of the new bundle"},
		{"nobody listens", closedAddr(t), "localhost", b.CAPEM, false, false, "no TLS handshake"},
		{"no CA", addr, "localhost", nil, true, false, "ca.crt is empty"},
		{"a key as the CA", addr, "localhost", b.KeyPEM, true, false, "holds a private key"},
		{"an address without a port", "localhost", "localhost", b.CAPEM, true, false, "not host:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Handshake(ctxFor(t), tc.addr, tc.serverName, tc.roots)
			if err == nil {
				t.Fatal("handshake succeeded")
			}
			if IsPermanent(err) != tc.permanent {
				t.Errorf("IsPermanent = %v, want %v: %v", IsPermanent(err), tc.permanent, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not say %q: %v", tc.want, err)
			}
			if tc.served && got.Serial != info.Serial {
				t.Errorf("Info.Serial = %q, want the served %q", got.Serial, info.Serial)
			}
			noLeak(t, err.Error(), b, next)
		})
	}
}

func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestIntermediate issues from an intermediate CA, in a PKI mount of the
// test's own signed by the devstack root: tls.crt must carry the
// intermediate after the leaf, ca.crt the root (or the intermediate, when
// Vault does not hold the root).
func TestIntermediate(t *testing.T) {
	c := devVault(t)
	ctx := ctxFor(t)
	write := func(path string, data map[string]any) map[string]any {
		t.Helper()
		sec, err := c.Logical().WriteWithContext(ctx, path, data)
		if err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
		if sec == nil {
			return nil
		}
		return sec.Data
	}
	sec, err := c.Logical().ReadWithContext(ctx, devMount+"/cert/ca")
	if err != nil || sec == nil {
		t.Fatalf("read the devstack root: %v", err)
	}
	rootPEM := pemCerts(t, []byte(mustString(t, sec.Data, "certificate")))

	for _, tc := range []struct {
		name     string
		withRoot bool
	}{{"Vault holds the root", true}, {"Vault holds the intermediate only", false}} {
		t.Run(tc.name, func(t *testing.T) {
			mount := "pki-test-" + random()
			if err := c.Sys().MountWithContext(ctx, mount, &vaultapi.MountInput{Type: "pki", Config: vaultapi.MountConfigInput{MaxLeaseTTL: "24h"}}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Sys().Unmount(mount) })
			csr := mustString(t, write(mount+"/intermediate/generate/internal", map[string]any{"common_name": "rotator test intermediate " + mount}), "csr")
			signed := mustString(t, write(devMount+"/root/sign-intermediate", map[string]any{"csr": csr, "common_name": "rotator test intermediate " + mount, "ttl": "12h", "format": "pem"}), "certificate")
			chain := signed
			if tc.withRoot {
				chain += "\n" + string(encodeCerts(rootPEM))
			}
			write(mount+"/intermediate/set-signed", map[string]any{"certificate": chain})
			write(mount+"/roles/test", map[string]any{"allowed_domains": []string{"svc"}, "allow_subdomains": true, "max_ttl": "2h"})

			r := appRequest()
			r.Mount, r.Role, r.DNSNames, r.IPs = mount, "test", nil, nil
			b, info := issue(t, c, r)
			leafs, cas := pemCerts(t, b.CertPEM), pemCerts(t, b.CAPEM)
			if len(leafs) != 2 || leafs[1].Subject.CommonName != "rotator test intermediate "+mount {
				t.Fatalf("tls.crt holds %s, want the leaf then the intermediate", subjects(leafs))
			}
			wantCA := "rotator test intermediate " + mount
			if tc.withRoot {
				wantCA = devRootCN
			}
			if len(cas) != 1 || cas[0].Subject.CommonName != wantCA {
				t.Fatalf("ca.crt holds %s, want %q", subjects(cas), wantCA)
			}
			if _, err := Verify(b, []string{appCN}, time.Now()); err != nil {
				t.Fatal(err)
			}
			if tc.withRoot {
				// Without the intermediate, a client holding the root
				// cannot build the chain.
				leafOnly := b
				leafOnly.CertPEM = encodeCerts(leafs[:1])
				_, err := Verify(leafOnly, []string{appCN}, time.Now())
				wantCheck(t, err, CheckChain, "an intermediate that signed it must follow the leaf")
				noLeak(t, err.Error(), b)
			}
			if got, err := Handshake(ctx, serve(t, b), "localhost", b.CAPEM); err == nil || !strings.Contains(err.Error(), `does not cover "localhost"`) {
				t.Errorf("handshake for a name not issued = %v, %v", got.Serial, err)
			}
			if got, err := Handshake(ctx, serve(t, b), appCN, b.CAPEM); err != nil || got.Serial != info.Serial {
				t.Errorf("handshake = %v, %v; want %s", got.Serial, err, info.Serial)
			}
		})
	}
}

func mustString(t *testing.T, data map[string]any, key string) string {
	t.Helper()
	s, _ := data[key].(string)
	if s == "" {
		t.Fatalf("Vault's answer has no %s", key)
	}
	return s
}

func TestDue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	ninety := Info{NotBefore: t0, NotAfter: t0.Add(90 * day)}
	thirty := Info{NotBefore: t0, NotAfter: t0.Add(30 * day)}
	noStart := Info{NotAfter: t0.Add(90 * day)}
	for _, tc := range []struct {
		name             string
		info             Info
		now              time.Time
		renewBefore      time.Duration
		due, wantExpired bool
	}{
		{"fresh", ninety, t0.Add(day), 30 * day, false, false},
		{"a second before the window", ninety, t0.Add(60*day - time.Second), 30 * day, false, false},
		{"the window opens", ninety, t0.Add(60 * day), 30 * day, true, false},
		{"a day left", ninety, t0.Add(89 * day), 30 * day, true, false},
		{"at NotAfter, still valid", ninety, t0.Add(90 * day), 30 * day, true, false},
		{"a second after NotAfter", ninety, t0.Add(90*day + time.Second), 30 * day, true, true},
		{"long expired", ninety, t0.Add(365 * day), 30 * day, true, true},
		{"no certificate", Info{}, t0, 30 * day, true, true},
		{"renewBefore 0: only when expired", ninety, t0.Add(90*day - time.Second), 0, false, false},
		{"a negative renewBefore counts as 0", ninety, t0.Add(90*day - time.Second), -day, false, false},
		{"capped lifetime: kept a third of it", thirty, t0.Add(10*day - time.Second), 30 * day, false, false},
		{"capped lifetime: due after a third", thirty, t0.Add(10 * day), 30 * day, true, false},
		{"capped lifetime: renewBefore shorter than two thirds applies", thirty, t0.Add(20*day - time.Second), 10 * day, false, false},
		{"capped lifetime: its window", thirty, t0.Add(20 * day), 10 * day, true, false},
		{"no NotBefore: renewBefore as given", noStart, t0.Add(61 * day), 30 * day, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			due, expired := Due(tc.info, tc.now, tc.renewBefore)
			if due != tc.due || expired != tc.wantExpired {
				t.Fatalf("Due = %v, %v; want %v, %v", due, expired, tc.due, tc.wantExpired)
			}
		})
	}
}

func TestSecretData(t *testing.T) {
	if DataCert != corev1.TLSCertKey || DataKey != corev1.TLSPrivateKeyKey || DataCA != corev1.ServiceAccountRootCAKey {
		t.Fatal("the data keys differ from Kubernetes'")
	}
	ca, caKey, caPEM := throwawayCA(t, "test CA")
	b := throwawayLeaf(t, ca, caKey, caPEM, x509.ExtKeyUsageServerAuth, "app.svc")

	data := b.SecretData()
	if len(data) != 3 || !bytes.Equal(data[DataCA], caPEM) {
		t.Fatalf("SecretData has keys %v", slices.Sorted(func(yield func(string) bool) {
			for k := range data {
				if !yield(k) {
					return
				}
			}
		}))
	}
	// Writing into the map does not change the bundle.
	data[DataKey][0] ^= 0xff
	if bytes.Equal(data[DataKey], b.KeyPEM) {
		t.Fatal("SecretData shares its bytes with the bundle")
	}

	noCA := FromSecretData(map[string][]byte{DataCert: b.CertPEM, DataKey: b.KeyPEM})
	if noCA.CAPEM != nil {
		t.Fatal("a Secret without ca.crt gave a CA")
	}
	if _, ok := noCA.SecretData()[DataCA]; ok {
		t.Fatal("SecretData writes an empty ca.crt")
	}
	if _, err := Inspect(noCA); err != nil {
		t.Fatalf("Inspect needs no ca.crt: %v", err)
	}
}

// TestBundleNeverPrints checks that a Bundle handed to fmt, slog or JSON by
// mistake shows no key and no certificate body.
func TestBundleNeverPrints(t *testing.T) {
	ca, caKey, caPEM := throwawayCA(t, "test CA")
	b := throwawayLeaf(t, ca, caKey, caPEM, x509.ExtKeyUsageServerAuth, "app.svc")
	info, err := Inspect(b)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("bundle", "bundle", b, "ptr", &b)
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", b),
		"%+v":  fmt.Sprintf("%+v", b),
		"%#v":  fmt.Sprintf("%#v", b),
		"%s":   fmt.Sprintf("bundle %s", b),
		"&%v":  fmt.Sprintf("%v", &b),
		"[]%v": fmt.Sprint([]Bundle{b}),
		"slog": logged.String(),
	}
	for name, out := range outputs {
		noLeak(t, out, b)
		if !strings.Contains(out, info.Serial) || !strings.Contains(out, "redacted") {
			t.Errorf("%s does not show the serial and the redaction", name)
		}
	}
	for _, v := range []any{b, &b, struct{ B Bundle }{b}} {
		if out, err := json.Marshal(v); err == nil {
			noLeak(t, string(out), b)
			t.Errorf("json.Marshal(%T) succeeded", v)
		} else {
			noLeak(t, err.Error(), b)
		}
	}
}
