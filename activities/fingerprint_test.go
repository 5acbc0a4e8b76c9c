package activities

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.temporal.io/sdk/testsuite"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"rotator/catalog"
	"rotator/providers/providertest"
)

func testFingerprinter(t *testing.T, seed byte) Fingerprinter {
	t.Helper()
	f, err := NewFingerprinter(bytes.Repeat([]byte{seed}, MinFingerprintKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// plainSHA256 is what workers before keyed fingerprints wrote, and what
// anyone can compute for a guessed value.
func plainSHA256(v string) string {
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

var keyedForm = regexp.MustCompile(`^hmac-sha256:[0-9a-f]{12}$`)

func TestFingerprintIsKeyed(t *testing.T) {
	a, b := testFingerprinter(t, 1), testFingerprinter(t, 2)
	const password = "correct horse battery staple"
	fa, fb := a.Of([]byte(password)), b.Of([]byte(password))
	if !keyedForm.MatchString(fa) || !keyedForm.MatchString(fb) {
		t.Fatalf("fingerprints %q, %q: want hmac-sha256: and 12 hex digits", fa, fb)
	}
	if fa == fb {
		t.Errorf("one value under two keys has one fingerprint %s: the key does not enter it", fa)
	}
	if again := a.Of([]byte(password)); again != fa {
		t.Errorf("one value under one key: %s, then %s", fa, again)
	}
	if other := a.Of([]byte(password + "!")); other == fa {
		t.Errorf("two values under one key share the fingerprint %s", fa)
	}
	// The dictionary attack: hash a likely password, look for it.
	plain := plainSHA256(password)
	if fa == plain || strings.TrimPrefix(fa, fingerprintPrefix) == strings.TrimPrefix(plain, "sha256:") {
		t.Errorf("keyed fingerprint %s matches the password's plain SHA-256 %s", fa, plain)
	}
	if got := (Fingerprinter{}).Of([]byte(password)); got != "" {
		t.Errorf("a Fingerprinter without a key gave %q: want no fingerprint rather than an unkeyed hash", got)
	}
	if r1, r2 := RandomFingerprinter(), RandomFingerprinter(); !r1.Keyed() || r1.Of([]byte(password)) == r2.Of([]byte(password)) {
		t.Error("two random Fingerprinters share a key")
	}
}

func TestFingerprinterNeverShowsItsKey(t *testing.T) {
	key := []byte(strings.Repeat("K3y!", 8))
	f, err := NewFingerprinter(key)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("deps", "fingerprints", f, "deps", Deps{Fingerprints: f})
	for _, out := range []string{fmt.Sprint(f), fmt.Sprintf("%v %+v %#v %s", f, f, f, f), fmt.Sprintf("%+v %#v", Deps{Fingerprints: f}, Deps{Fingerprints: f}), logged.String()} {
		if strings.Contains(out, "K3y!") || strings.Contains(out, hex.EncodeToString(key[:8])) || strings.Contains(out, "75 51 121") {
			t.Errorf("the key shows in %q", out)
		}
	}
	if _, err := NewFingerprinter(key[:MinFingerprintKeySize-1]); err == nil || strings.Contains(err.Error(), "K3y!") {
		t.Errorf("a %d-byte key: %v, want refused without showing it", MinFingerprintKeySize-1, err)
	}
	key[0] = 'X'
	if f.Of([]byte("v")) == mustFingerprinter(t, key).Of([]byte("v")) || f.Of([]byte("v")) != mustFingerprinter(t, []byte(strings.Repeat("K3y!", 8))).Of([]byte("v")) {
		t.Error("NewFingerprinter keeps the caller's slice: a later change to it changes the fingerprints")
	}
}

func mustFingerprinter(t *testing.T, key []byte) Fingerprinter {
	t.Helper()
	f, err := NewFingerprinter(key)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLoadFingerprinter(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := bytes.Repeat([]byte("a1"), 16)
	short := write("short", []byte("s3cr3t-value\n"))
	cases := []struct {
		name, path, wantErr string
		keyed               bool
	}{
		{name: "unset: the caller chooses", path: ""},
		{name: "a key with its newline", path: write("good", append(bytes.Clone(good), '\n')), keyed: true},
		{name: "missing file", path: filepath.Join(dir, "absent"), wantErr: EnvFingerprintKeyFile + ": open"},
		{name: "too short", path: short, wantErr: EnvFingerprintKeyFile + " (" + short + "): the fingerprint key has 12 bytes: use at least 32 random bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvFingerprintKeyFile, tc.path)
			f, err := LoadFingerprinter()
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "s3cr3t") {
					t.Fatalf("error %v, want one containing %q and not the file's content", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case f.Keyed() != tc.keyed:
				t.Fatalf("keyed = %v, want %v", f.Keyed(), tc.keyed)
			case tc.keyed && f.Of([]byte("v")) != mustFingerprinter(t, good).Of([]byte("v")):
				t.Fatal("the trailing newline became part of the key: one file written by echo and one by printf would disagree")
			}
		})
	}
}

// The adopted version 1 is a Secret a person wrote, often a password a
// person chose: its fingerprint is keyed like every other, and an older
// worker's unkeyed annotation is not passed on.
func TestAdoptedVersionGetsAKeyedFingerprint(t *testing.T) {
	const password = "Summer2024!"
	for _, tc := range []struct {
		name        string
		annotations map[string]string
	}{
		{"unannotated", nil},
		{"annotated by an older worker", map[string]string{AnnotationFingerprint: plainSHA256(password)}},
		{"annotated by hand", map[string]string{AnnotationFingerprint: "see the wiki"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: testNS, Annotations: tc.annotations},
				Data: map[string][]byte{"secret": []byte(password)}}
			cat := &catalog.Catalog{Targets: []catalog.Target{{Name: "t", Kind: catalog.KindJWT, Namespace: testNS, Secret: "db", Key: "secret"}}}
			k := &Kube{Client: fake.NewClientset(base, deployment("db", "1", nil)), Catalog: cat, Fingerprints: testFingerprinter(t, 7)}
			p := execute[Plan](t, activityEnv(t, k), k.Preflight, PreflightInput{Target: "t"})
			want := testFingerprinter(t, 7).Of([]byte(password))
			if p.Current.Version != 1 || p.Current.Fingerprint != want {
				t.Fatalf("current = version %d, fingerprint %q; want version 1, %s", p.Current.Version, p.Current.Fingerprint, want)
			}
			if p.Current.Fingerprint == plainSHA256(password) {
				t.Fatal("the adopted version's fingerprint is the password's plain SHA-256")
			}
		})
	}
}

// A version stage wrote keeps its fingerprint: status shows the same one
// for it from stage to retire.
func TestStagedVersionKeepsItsAnnotatedFingerprint(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "jwt-2", Annotations: map[string]string{AnnotationFingerprint: "hmac-sha256:0123456789ab"}},
		Data: map[string][]byte{"secret": []byte("v")}}
	k := &Kube{Fingerprints: testFingerprinter(t, 9)}
	if got := k.refOf(s, "secret").Fingerprint; got != "hmac-sha256:0123456789ab" {
		t.Fatalf("fingerprint %q, want the annotated one", got)
	}
}

func TestStageAnnotatesAKeyedFingerprint(t *testing.T) {
	c := fake.NewClientset(secret("jwt", "u1", nil))
	k := &Kube{Client: c, Catalog: jwtCatalog(), Fingerprints: testFingerprinter(t, 3)}
	p := Plan{Target: "t", Kind: catalog.KindJWT, Namespace: testNS, Base: "jwt", Key: "secret", NextVersion: 2, KindPlans: KindPlans{JWTBytes: 32},
		Current: SecretRef{Namespace: testNS, Name: "jwt", Version: 1}}
	ref := execute[SecretRef](t, activityEnv(t, k), k.StageSecret, StageInput{Plan: p})
	created, err := c.CoreV1().Secrets(testNS).Get(t.Context(), ref.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := testFingerprinter(t, 3).Of(created.Data["secret"])
	if ref.Fingerprint != want || created.Annotations[AnnotationFingerprint] != want {
		t.Fatalf("fingerprint %q, annotation %q; want %s, the key's HMAC", ref.Fingerprint, created.Annotations[AnnotationFingerprint], want)
	}
}

func TestStagedKeysGetKeyedFingerprints(t *testing.T) {
	openai := providertest.NewOpenAI()
	defer openai.Close()
	const newKey = "sk-proj-new-0123456789abcdefghij"
	openai.AddKey(newKey)
	cat, err := catalog.Parse(fmt.Appendf(nil, `targets:
  - name: llm
    kind: apikeys
    namespace: %s
    secret: keys
    apiKeys:
      providers: [{name: openai, baseURL: %q}]
`, testNS, openai.URL))
	if err != nil {
		t.Fatal(err)
	}
	key := cat.Targets[0].APIKeys.Providers[0].Key
	cur := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "keys", Namespace: testNS}, Data: map[string][]byte{key: []byte("sk-proj-old-0123456789abcdefghij")}}
	staged := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: StagingSecretName("keys"), Namespace: testNS,
		Labels: map[string]string{LabelTarget: "llm", LabelStage: StageStaged}}, Data: map[string][]byte{key: []byte(newKey)}}
	a := &APIKeys{Kube: fake.NewClientset(cur, staged), Catalog: cat, Fingerprints: testFingerprinter(t, 5)}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(a.VerifyStagedKeys, Plan{Target: "llm", Kind: catalog.KindAPIKeys, Namespace: testNS, Base: "keys",
		Key: cat.Targets[0].Key, NextVersion: 2, Current: SecretRef{Name: "keys"}})
	if err != nil {
		t.Fatal(err)
	}
	var out StagedKeys
	if err := val.Get(&out); err != nil {
		t.Fatal(err)
	}
	if got, want := out.Fingerprints["openai"], testFingerprinter(t, 5).Of([]byte(newKey)); got != want || got == plainSHA256(newKey) {
		t.Fatalf("staged openai key's fingerprint %q, want %s (keyed)", got, want)
	}
}
