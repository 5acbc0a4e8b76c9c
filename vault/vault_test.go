package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The Vault tests run against the devstack's real Vault (dev mode, KV v2 at
// secret/) and, for the kubernetes method, its real kube-apiserver. Without
// the devstack they are skipped under -short and fail otherwise, as the e2e
// tests do.

// rootToken is the devstack's root token, from the environment the
// devstack writes.
func rootToken(t *testing.T) string {
	t.Helper()
	if os.Getenv("VAULT_ADDR") == "" {
		if testing.Short() {
			t.Skip("VAULT_ADDR is unset: with -short, the Vault tests that need the devstack are left out")
		}
		t.Fatal("VAULT_ADDR is unset: the Vault tests need the devstack: run `make devstack`, then `source .devstack/env` (or `make test`)")
	}
	if tok := os.Getenv(EnvToken); tok != "" {
		return tok
	}
	f := os.Getenv(EnvTokenFile)
	if f == "" {
		t.Fatal("VAULT_ADDR is set but neither VAULT_TOKEN nor VAULT_TOKEN_FILE is: `source .devstack/env`")
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// rootClient is a plain client with the root token: the test's own hands,
// for setup, checks behind the Store's back and clean-up.
func rootClient(t *testing.T) *vaultapi.Client {
	t.Helper()
	return clientWith(t, rootToken(t), nil)
}

func clientWith(t *testing.T, token string, wrap func(http.RoundTripper) http.RoundTripper) *vaultapi.Client {
	t.Helper()
	cfg := vaultapi.DefaultConfig()
	if cfg.Error != nil {
		t.Fatal(cfg.Error)
	}
	if wrap != nil {
		cfg.HttpClient.Transport = wrap(cfg.HttpClient.Transport)
	}
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

func random() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// secretValue is a value no message may contain.
func secretValue() string { return "s3cr3t-" + random() + random() + random() }

// testPath returns a fresh path for the test and deletes it, and its
// staging area, afterwards.
func testPath(t *testing.T, root *vaultapi.Client) string {
	t.Helper()
	p := "test/" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) + "-" + random()
	t.Cleanup(func() {
		kv := root.KVv2(DefaultMount)
		_ = kv.DeleteMetadata(context.Background(), p)
		_ = kv.DeleteMetadata(context.Background(), StagedPath(p))
	})
	return p
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func wantLabels(t *testing.T, s *Store, path string, want Labels, wantCurrent int) {
	t.Helper()
	got, cur, err := s.Labels(ctxFor(t), path)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || cur != wantCurrent {
		t.Fatalf("labels of %s = %+v, current_version %d; want %+v, %d", path, got, cur, want, wantCurrent)
	}
}

// noSecrets fails when err's message contains any of the values.
func noSecrets(t *testing.T, err error, values ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, v := range values {
		if strings.Contains(err.Error(), v) {
			t.Fatalf("error message leaks a secret value: %v", err)
		}
	}
}

func TestCheckPath(t *testing.T) {
	for _, tc := range []struct {
		path, wantErr string
	}{
		{"llm-orchestrator/orchestrator-jwt", ""},
		{"app/db_password.v2", ""},
		{"data", ""},
		{"", "empty"},
		{"/app/jwt", "leading or trailing slash"},
		{"app/jwt/", "leading or trailing slash"},
		{"app//jwt", "empty segment"},
		{"app/../jwt", `".." segment`},
		{"app/./jwt", `"." segment`},
		{"data/app/jwt", `without it ("app/jwt")`},
		{"metadata/app/jwt", `starts with "metadata/"`},
		{"app/jwt/staged", "reserves for keys staged"},
		{"app/jwt key", "contains ' '"},
		{"app/jwt?version=1", "contains '?'"},
		{strings.Repeat("a", MaxPathLen+1), "under 256"},
	} {
		err := CheckPath(tc.path)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("CheckPath(%q) = %v, want nil", tc.path, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("CheckPath(%q) = %v, want an error containing %q", tc.path, err, tc.wantErr)
		}
	}
	if got := StagedPath("app/jwt"); got != "app/jwt/staged" {
		t.Errorf("StagedPath = %q", got)
	}
}

// TestErrorKinds checks how Vault's answers are sorted: what a Temporal
// activity retries and what it does not.
func TestErrorKinds(t *testing.T) {
	c := call{op: "stage pending version of", path: "secret/app/jwt", capability: "update", apiPath: "secret/data/app/jwt",
		secrets: map[string]string{"k": "hunter2-secret-value"}}
	for _, tc := range []struct {
		name        string
		err         error
		unavailable bool
		conflict    bool
		permission  bool
		want        string
	}{
		{"sealed", &vaultapi.ResponseError{StatusCode: 503, Errors: []string{"Vault is sealed"}}, true, false, false, "Vault is sealed"},
		{"server error", &vaultapi.ResponseError{StatusCode: 500, Errors: []string{"internal error"}}, true, false, false, "answered 500"},
		{"rate limited", &vaultapi.ResponseError{StatusCode: 429, Errors: []string{"rate limit quota exceeded"}}, true, false, false, "answered 429"},
		{"standby not caught up", &vaultapi.ResponseError{StatusCode: 412}, true, false, false, "answered 412"},
		{"denied", &vaultapi.ResponseError{StatusCode: 403, Errors: []string{"1 error occurred:\n\t* permission denied\n\n"}}, false, false, true,
			`needs the "update" capability on "secret/data/app/jwt"`},
		{"cas", &vaultapi.ResponseError{StatusCode: 400, Errors: []string{"check-and-set parameter did not match the current version"}}, false, true, false, "check-and-set conflict"},
		{"echoed value", &vaultapi.ResponseError{StatusCode: 400, RawError: true, Errors: []string{"bad body: hunter2-secret-value"}}, false, false, false, "no error text"},
		{"vault echoes a value", &vaultapi.ResponseError{StatusCode: 400, Errors: []string{"bad value hunter2-secret-value"}}, false, false, false, "[redacted]"},
		{"deadline", fmt.Errorf("wrapped: %w", context.DeadlineExceeded), true, false, false, "cut short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.fail(tc.err)
			if IsUnavailable(err) != tc.unavailable || IsConflict(err) != tc.conflict || IsPermissionDenied(err) != tc.permission {
				t.Errorf("%v: unavailable=%v conflict=%v permission=%v", err, IsUnavailable(err), IsConflict(err), IsPermissionDenied(err))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q does not say %q", err, tc.want)
			}
			noSecrets(t, err, "hunter2-secret-value")
		})
	}
	if err := c.fail(context.Canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("errors.Is(%v, context.Canceled) = false", err)
	}
}

// TestUnreachable talks to a port where nothing listens: a real refused
// connection, which the activity must retry.
func TestUnreachable(t *testing.T) {
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
	t.Setenv("VAULT_MAX_RETRIES", "0")
	c := clientWith(t, "unused", nil)
	value := secretValue()
	_, _, err := NewStore(c, "secret").StagePending(ctxFor(t), "app/jwt", "app-jwt", "run-1", map[string]string{"secret": value})
	if !IsUnavailable(err) || !strings.Contains(err.Error(), "check VAULT_ADDR") {
		t.Fatalf("StagePending against a closed port = %v; want an unavailable error naming VAULT_ADDR", err)
	}
	noSecrets(t, err, value)
}

func TestVersionsAndLabelsAcrossTwoRotations(t *testing.T) {
	root := rootClient(t)
	s := NewStore(root, "secret")
	path := testPath(t, root)
	ctx := ctxFor(t)

	wantLabels(t, s, path, Labels{}, 0)

	v1Data := map[string]string{"secret": secretValue()}
	v1, stored, err := s.StagePending(ctx, path, "app-jwt", "run-1", v1Data)
	if err != nil {
		t.Fatal(err)
	}
	if v1 != 1 || stored["secret"] != v1Data["secret"] {
		t.Fatalf("first stage: version %d; stored what was given: %v", v1, stored["secret"] == v1Data["secret"])
	}
	wantLabels(t, s, path, Labels{Pending: 1, PendingRun: "run-1", Target: "app-jwt"}, 1)

	md, err := root.KVv2("secret").GetMetadata(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if !md.CASRequired {
		t.Error("cas_required is not set on the path")
	}
	if md.CustomMetadata[LabelManagedBy] != ManagedBy {
		t.Errorf("custom_metadata %s = %v", LabelManagedBy, md.CustomMetadata[LabelManagedBy])
	}
	// cas_required in force: a write without check-and-set is refused.
	if _, err := root.KVv2("secret").Put(ctx, path, map[string]any{"secret": "x"}); err == nil {
		t.Error("a write without cas succeeded on a path rotator manages")
	}

	if err := s.Promote(ctx, path, v1); err != nil {
		t.Fatal(err)
	}
	wantLabels(t, s, path, Labels{Current: 1, Target: "app-jwt"}, 1)
	if err := s.Promote(ctx, path, v1); err != nil {
		t.Fatalf("promote again: %v", err)
	}
	wantLabels(t, s, path, Labels{Current: 1, Target: "app-jwt"}, 1)

	v2Data := map[string]string{"secret": secretValue()}
	v2, _, err := s.StagePending(ctx, path, "app-jwt", "run-2", v2Data)
	if err != nil {
		t.Fatal(err)
	}
	if v2 != 2 {
		t.Fatalf("second stage wrote version %d, want 2", v2)
	}
	wantLabels(t, s, path, Labels{Current: 1, Pending: 2, PendingRun: "run-2", Target: "app-jwt"}, 2)
	if err := s.Promote(ctx, path, v2); err != nil {
		t.Fatal(err)
	}
	wantLabels(t, s, path, Labels{Current: 2, Previous: 1, Target: "app-jwt"}, 2)

	for v, want := range map[int]map[string]string{0: v2Data, 1: v1Data, 2: v2Data} {
		got, err := s.Read(ctx, path, v)
		if err != nil {
			t.Fatal(err)
		}
		if got["secret"] != want["secret"] || len(got) != 1 {
			t.Errorf("Read(version %d) returned other data", v)
		}
	}
	_, err = s.Read(ctx, path, 9)
	if !IsNotFound(err) {
		t.Errorf("Read(version 9) = %v, want not found", err)
	}
	_, err = s.Read(ctx, "test/missing-"+random(), 0)
	if !IsNotFound(err) {
		t.Errorf("Read(missing path) = %v, want not found", err)
	}
}

func TestStagePendingIsIdempotentPerRun(t *testing.T) {
	root := rootClient(t)
	s := NewStore(root, "secret")
	path := testPath(t, root)
	ctx := ctxFor(t)

	first := map[string]string{"secret": secretValue(), "kid": "k1"}
	v, stored, err := s.StagePending(ctx, path, "app-jwt", "run-1", first)
	if err != nil {
		t.Fatal(err)
	}
	// The retried activity generated new material; the Store hands back
	// what the first attempt recorded.
	retry := map[string]string{"secret": secretValue(), "kid": "k2"}
	v2, stored2, err := s.StagePending(ctx, path, "app-jwt", "run-1", retry)
	if err != nil {
		t.Fatal(err)
	}
	if v2 != v || stored2["secret"] != first["secret"] || stored2["kid"] != "k1" || stored["secret"] != first["secret"] {
		t.Fatalf("retry of the same run: version %d (first %d), same data: %v", v2, v, stored2["secret"] == first["secret"])
	}
	wantLabels(t, s, path, Labels{Pending: v, PendingRun: "run-1", Target: "app-jwt"}, 1)

	// A run that ended without rolling back leaves PENDING behind; the
	// next run takes it over.
	v3, _, err := s.StagePending(ctx, path, "app-jwt", "run-2", retry)
	if err != nil {
		t.Fatal(err)
	}
	if v3 != 2 {
		t.Fatalf("next run wrote version %d, want 2", v3)
	}
	wantLabels(t, s, path, Labels{Pending: 2, PendingRun: "run-2", Target: "app-jwt"}, 2)

	// The first run, still alive somehow, cannot promote its version.
	err = s.Promote(ctx, path, v)
	if !IsConflict(err) || !strings.Contains(err.Error(), `found PENDING=2 (run "run-2")`) {
		t.Fatalf("promote of a superseded version = %v, want a conflict naming what was found", err)
	}

	// Another target configured with the same path is refused.
	_, _, err = s.StagePending(ctx, path, "other-target", "run-3", retry)
	if err == nil || !strings.Contains(err.Error(), `belongs to target "app-jwt"`) {
		t.Fatalf("stage for another target = %v", err)
	}
	noSecrets(t, err, first["secret"], retry["secret"])
}

// casTransport runs before once, just before the Store's first data write
// to path, and then forwards the request to the real Vault.
type casTransport struct {
	base   http.RoundTripper
	path   string
	once   sync.Once
	before func()
}

func (c *casTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if (r.Method == http.MethodPut || r.Method == http.MethodPost) && r.URL.Path == "/v1/secret/data/"+c.path {
		c.once.Do(c.before)
	}
	return c.base.RoundTrip(r)
}

// TestStagePendingConflict makes another writer add a version between the
// Store's read of the labels and its check-and-set write.
func TestStagePendingConflict(t *testing.T) {
	root := rootClient(t)
	ctx := ctxFor(t)
	for _, existing := range []bool{false, true} {
		t.Run("path exists "+strconv.FormatBool(existing), func(t *testing.T) {
			path := testPath(t, root)
			other := secretValue()
			observed := 0
			if existing {
				if _, _, err := NewStore(root, "secret").StagePending(ctx, path, "app-jwt", "run-0", map[string]string{"secret": secretValue()}); err != nil {
					t.Fatal(err)
				}
				observed = 1
			}
			var raced error
			tr := &casTransport{path: path, before: func() {
				_, raced = root.KVv2("secret").Put(ctx, path, map[string]any{"secret": other}, vaultapi.WithCheckAndSet(observed))
			}}
			c := clientWith(t, rootToken(t), func(base http.RoundTripper) http.RoundTripper { tr.base = base; return tr })
			s := NewStore(c, "secret")

			value := secretValue()
			_, _, err := s.StagePending(ctx, path, "app-jwt", "run-1", map[string]string{"secret": value})
			if raced != nil {
				t.Fatalf("the other writer failed: %v", raced)
			}
			if !IsConflict(err) {
				t.Fatalf("StagePending after another write = %v, want a conflict", err)
			}
			if !strings.Contains(err.Error(), "secret/"+path) || !strings.Contains(err.Error(), "read the labels again") {
				t.Errorf("the conflict does not name the path and what to do: %v", err)
			}
			noSecrets(t, err, value, other)
			// The other writer's version stands; nothing was labelled for run-1.
			l, cur, lerr := s.Labels(ctx, path)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if cur != observed+1 || l.PendingRun == "run-1" {
				t.Errorf("after the conflict: labels %+v, current_version %d", l, cur)
			}
		})
	}
}

func TestRollback(t *testing.T) {
	root := rootClient(t)
	s := NewStore(root, "secret")
	path := testPath(t, root)
	ctx := ctxFor(t)

	stage := func(run string) int {
		t.Helper()
		v, _, err := s.StagePending(ctx, path, "app-jwt", run, map[string]string{"secret": secretValue()})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v1 := stage("run-1")
	if err := s.Promote(ctx, path, v1); err != nil {
		t.Fatal(err)
	}
	v2 := stage("run-2")
	if err := s.Promote(ctx, path, v2); err != nil {
		t.Fatal(err)
	}
	wantLabels(t, s, path, Labels{Current: 2, Previous: 1, Target: "app-jwt"}, 2)

	// A third rotation fails after promote: compensation puts back what it
	// found before promoting (CURRENT 2, PREVIOUS 1).
	v3 := stage("run-3")
	if err := s.Promote(ctx, path, v3); err != nil {
		t.Fatal(err)
	}
	wantLabels(t, s, path, Labels{Current: 3, Previous: 2, Target: "app-jwt"}, 3)
	for range 2 { // idempotent
		if err := s.Rollback(ctx, path, v3, 2, 1); err != nil {
			t.Fatal(err)
		}
		wantLabels(t, s, path, Labels{Current: 2, Previous: 1, Target: "app-jwt"}, 3)
		if _, err := s.Read(ctx, path, v3); !IsNotFound(err) || !strings.Contains(err.Error(), "was deleted") {
			t.Fatalf("read of the rolled back version = %v, want deleted", err)
		}
	}
	md, err := root.KVv2("secret").GetMetadata(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if v := md.Versions["3"]; v.DeletionTime.IsZero() || v.Destroyed {
		t.Errorf("version 3 should be soft-deleted, not destroyed: %+v", v)
	}
	if _, err := s.Read(ctx, path, 2); err != nil {
		t.Errorf("the restored CURRENT must stay readable: %v", err)
	}

	// A fourth fails before promote: only PENDING goes.
	v4 := stage("run-4")
	wantLabels(t, s, path, Labels{Current: 2, Previous: 1, Pending: 4, PendingRun: "run-4", Target: "app-jwt"}, 4)
	for range 2 {
		if err := s.Rollback(ctx, path, v4, 2, 1); err != nil {
			t.Fatal(err)
		}
		wantLabels(t, s, path, Labels{Current: 2, Previous: 1, Target: "app-jwt"}, 4)
	}
	if _, err := s.Read(ctx, path, v4); !IsNotFound(err) {
		t.Fatalf("read of the rolled back pending version = %v, want deleted", err)
	}

	if err := s.Rollback(ctx, path, 2, 2, 1); err == nil {
		t.Error("restoring the failed version as CURRENT was accepted")
	}
	if err := s.Rollback(ctx, "test/missing-"+random(), 1, 0, 0); err != nil {
		t.Errorf("rollback on a path that does not exist: %v", err)
	}
}

func TestStagedArea(t *testing.T) {
	root := rootClient(t)
	s := NewStore(root, "secret")
	path := testPath(t, root)
	ctx := ctxFor(t)

	if _, ok, err := s.ReadStaged(ctx, path); err != nil || ok {
		t.Fatalf("ReadStaged before anything was staged = %v, %v", ok, err)
	}
	keys := map[string]string{"openai": "sk-" + secretValue(), "anthropic": "sk-ant-" + secretValue()}
	v, err := s.WriteStaged(ctx, path, keys)
	if err != nil || v != 1 {
		t.Fatalf("WriteStaged = %d, %v", v, err)
	}
	got, ok, err := s.ReadStaged(ctx, path)
	if err != nil || !ok || got["openai"] != keys["openai"] || got["anthropic"] != keys["anthropic"] {
		t.Fatalf("ReadStaged = ok %v, err %v, same keys %v", ok, err, got["openai"] == keys["openai"])
	}
	// The record itself is untouched by staging.
	wantLabels(t, s, path, Labels{}, 0)

	if err := s.DeleteStaged(ctx, path); err != nil {
		t.Fatal(err)
	}
	if _, err := root.KVv2("secret").GetMetadata(ctx, StagedPath(path)); !errors.Is(err, vaultapi.ErrSecretNotFound) {
		t.Fatalf("the staging area still has metadata after DeleteStaged: %v", err)
	}
	if _, ok, err := s.ReadStaged(ctx, path); err != nil || ok {
		t.Fatalf("ReadStaged after delete = %v, %v", ok, err)
	}
	if err := s.DeleteStaged(ctx, path); err != nil {
		t.Fatalf("DeleteStaged of nothing: %v", err)
	}
}

// TestErrorsCarryNoSecrets provokes the failures a write can meet and
// checks none of their messages holds the value written.
func TestErrorsCarryNoSecrets(t *testing.T) {
	root := rootClient(t)
	ctx := ctxFor(t)
	path := testPath(t, root)
	value := secretValue()
	data := map[string]string{"secret": value}

	// A token that may read the labels but not write: a 403 that names
	// the capability.
	policy := "rotator-test-readonly-" + random()
	if err := root.Sys().PutPolicyWithContext(ctx, policy, fmt.Sprintf(`path "secret/metadata/%s" { capabilities = ["read"] }`, path)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = root.Sys().DeletePolicy(policy) })
	tok, err := root.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{Policies: []string{policy}, TTL: "5m", NoDefaultPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	limited := NewStore(clientWith(t, tok.Auth.ClientToken, nil), "secret")
	_, _, err = limited.StagePending(ctx, path, "app-jwt", "run-1", data)
	if !IsPermissionDenied(err) || IsUnavailable(err) || !strings.Contains(err.Error(), fmt.Sprintf(`needs the "create" capability on "secret/data/%s"`, path)) {
		t.Fatalf("write without the capability = %v", err)
	}
	noSecrets(t, err, value, tok.Auth.ClientToken)
	_, err = limited.WriteStaged(ctx, path, data)
	if !IsPermissionDenied(err) || !strings.Contains(err.Error(), "secret/data/"+StagedPath(path)) {
		t.Fatalf("staging without the capability = %v", err)
	}
	noSecrets(t, err, value)

	// A mount that does not exist.
	_, _, err = NewStore(root, "no-such-mount-"+random()).StagePending(ctx, path, "app-jwt", "run-1", data)
	if err == nil || !strings.Contains(err.Error(), "kv-v2") {
		t.Fatalf("write to a missing mount = %v", err)
	}
	noSecrets(t, err, value)

	// A value that is not a string: the key is named, the value is not.
	if _, err := root.KVv2("secret").Put(ctx, path, map[string]any{"secret": map[string]any{"nested": value}}); err != nil {
		t.Fatal(err)
	}
	_, err = NewStore(root, "secret").Read(ctx, path, 0)
	if err == nil || !strings.Contains(err.Error(), `key "secret"`) {
		t.Fatalf("read of a non-string value = %v", err)
	}
	noSecrets(t, err, value)

	// Labels a human broke are reported with the fix.
	if err := root.KVv2("secret").PatchMetadata(ctx, path, vaultapi.KVMetadataPatchInput{CustomMetadata: map[string]any{LabelCurrent: "latest"}}); err != nil {
		t.Fatal(err)
	}
	_, _, err = NewStore(root, "secret").Labels(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "vault kv metadata patch") {
		t.Fatalf("labels with a broken CURRENT = %v", err)
	}
}

// capture is a log sink tests search for tokens.
type capture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func (c *capture) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(c, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestConnectWithTokenFile(t *testing.T) {
	token := rootToken(t)
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvToken, "")
	t.Setenv(EnvTokenFile, f)
	logs := &capture{}
	c, stop, err := Connect(ctxFor(t), Auth{}, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	root := rootClient(t)
	path := testPath(t, root)
	s := NewStore(c, "secret")
	v, _, err := s.StagePending(ctxFor(t), path, "app-jwt", "run-1", map[string]string{"secret": secretValue()})
	if err != nil || v != 1 {
		t.Fatalf("StagePending through the connected client = %d, %v", v, err)
	}
	stop()
	stop() // twice is fine
	if strings.Contains(logs.String(), token) {
		t.Fatal("the token was logged")
	}

	// A token Vault does not know.
	bogus := "hvs.not-a-token-" + random()
	t.Setenv(EnvToken, bogus)
	_, _, err = Connect(ctxFor(t), Auth{}, logs.logger())
	if !IsPermissionDenied(err) || !strings.Contains(err.Error(), "invalid, expired or revoked") {
		t.Fatalf("Connect with a bogus token = %v", err)
	}
	noSecrets(t, err, bogus)
}

func TestConnectWithoutToken(t *testing.T) {
	t.Setenv(EnvToken, "")
	t.Setenv(EnvTokenFile, "")
	t.Setenv("HOME", t.TempDir())
	_, _, err := Connect(context.Background(), Auth{}, nil)
	if err == nil || !strings.Contains(err.Error(), "VAULT_TOKEN") || !strings.Contains(err.Error(), "VAULT_TOKEN_FILE") {
		t.Fatalf("Connect without a token = %v, want an error naming VAULT_TOKEN and VAULT_TOKEN_FILE", err)
	}
	for _, tc := range []struct {
		auth Auth
		want string
	}{
		{Auth{Method: "userpass"}, `"userpass" is not supported`},
		{Auth{Method: MethodKubernetes}, "role is empty"},
		{Auth{Role: "rotator"}, "only used by the kubernetes method"},
	} {
		if _, _, err := Connect(context.Background(), tc.auth, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Connect(%+v) = %v, want %q", tc.auth, err, tc.want)
		}
	}
}

// kubeAuth is a kubernetes auth method enabled for one test, trusting a
// ServiceAccount of a fresh namespace of the devstack's kube-apiserver.
type kubeAuth struct {
	mount, role, ns, sa string
	tokenFile, jwt      string
	// apiserverTokenFile holds a token for the API server's audience.
	apiserverTokenFile, apiserverJWT string
	path                             string
}

// setupKubeAuth enables the method at a unique mount with the root token,
// pointing at the devstack's kube-apiserver and its CA from the
// kubeconfig, with the ServiceAccount's API server token as the token
// reviewer JWT (the ServiceAccount is bound to system:auth-delegator),
// since the login token's audience is vault.
// It creates a role with a policy on a fresh KV path, and a ServiceAccount
// token from the TokenRequest API in a file. Everything goes away after.
func setupKubeAuth(t *testing.T, root *vaultapi.Client, roleOptions map[string]any) kubeAuth {
	t.Helper()
	ctx := ctxFor(t)
	kubeconfig := os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		t.Fatal("KUBECONFIG is unset: the kubernetes auth tests need the devstack: `source .devstack/env`")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ca := cfg.TLSClientConfig.CAData
	if len(ca) == 0 && cfg.TLSClientConfig.CAFile != "" {
		if ca, err = os.ReadFile(cfg.TLSClientConfig.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	if len(ca) == 0 {
		t.Fatalf("the kubeconfig %s has no CA for the API server", kubeconfig)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	id := random()
	k := kubeAuth{mount: "k8s-test-" + id, role: "rotator-" + id, ns: "vault-test-" + id, sa: "rotator", path: testPath(t, root)}

	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: k.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.CoreV1().Namespaces().Delete(context.Background(), k.ns, metav1.DeleteOptions{}) })
	if _, err := kube.CoreV1().ServiceAccounts(k.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: k.sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vault-test-" + id},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: k.sa, Namespace: k.ns}},
	}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
	})
	// The token a projected volume with audience vault holds, and the
	// API server's own (no audience asked), which must never be sent.
	expiry := int64(600)
	for _, tok := range []struct {
		aud  []string
		jwt  *string
		file *string
	}{{[]string{DefaultAudience}, &k.jwt, &k.tokenFile}, {nil, &k.apiserverJWT, &k.apiserverTokenFile}} {
		tr, err := kube.CoreV1().ServiceAccounts(k.ns).CreateToken(ctx, k.sa,
			&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &expiry, Audiences: tok.aud}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		*tok.jwt = tr.Status.Token
		*tok.file = filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(*tok.file, []byte(*tok.jwt), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	if err := root.Sys().EnableAuthWithOptionsWithContext(ctx, k.mount, &vaultapi.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = root.Sys().DisableAuth(k.mount) })
	if _, err := root.Logical().WriteWithContext(ctx, "auth/"+k.mount+"/config", map[string]any{
		"kubernetes_host":    cfg.Host,
		"kubernetes_ca_cert": string(ca),
		// The login token's audience is vault, which the API server does
		// not accept as a bearer token: the review needs a token of its own.
		"token_reviewer_jwt": k.apiserverJWT,
	}); err != nil {
		t.Fatal(err)
	}
	policy := "rotator-test-" + id
	rules := fmt.Sprintf(`
path "secret/data/%[1]s" { capabilities = ["create", "read", "update"] }
path "secret/metadata/%[1]s" { capabilities = ["read", "patch"] }
path "secret/delete/%[1]s" { capabilities = ["update"] }
`, k.path)
	if err := root.Sys().PutPolicyWithContext(ctx, policy, rules); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = root.Sys().DeletePolicy(policy) })
	role := map[string]any{
		"bound_service_account_names":      k.sa,
		"bound_service_account_namespaces": k.ns,
		"token_policies":                   policy,
		"token_ttl":                        "1h",
		"audience":                         DefaultAudience,
	}
	for key, v := range roleOptions {
		role[key] = v
	}
	if _, err := root.Logical().WriteWithContext(ctx, "auth/"+k.mount+"/role/"+k.role, role); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestConnectWithKubernetes(t *testing.T) {
	root := rootClient(t)
	k := setupKubeAuth(t, root, nil)
	t.Setenv(EnvToken, "") // the method must not lean on a token from the environment
	ctx := ctxFor(t)
	logs := &capture{}

	c, stop, err := Connect(ctx, Auth{Method: MethodKubernetes, Role: k.role, MountPath: k.mount, TokenPath: k.tokenFile}, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	token := c.Token()
	if token == "" || token == rootToken(t) {
		t.Fatal("Connect did not log in with the ServiceAccount")
	}
	s := NewStore(c, "secret")
	data := map[string]string{"secret": secretValue()}
	v, _, err := s.StagePending(ctx, k.path, "app-jwt", "run-1", data)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Promote(ctx, k.path, v); err != nil {
		t.Fatal(err)
	}
	got, err := s.Read(ctx, k.path, v)
	if err != nil || got["secret"] != data["secret"] {
		t.Fatalf("read back through the kubernetes login: %v", err)
	}
	// The policy covers the test path only.
	if _, err := s.Read(ctx, "test/elsewhere-"+random(), 0); !IsPermissionDenied(err) {
		t.Errorf("read outside the policy = %v, want permission denied", err)
	}
	stop()
	for _, secret := range []string{token, k.jwt} {
		if strings.Contains(logs.String(), secret) {
			t.Fatal("a token was logged")
		}
	}
	if !strings.Contains(logs.String(), "role="+k.role) {
		t.Errorf("the login was not logged: %s", logs.String())
	}

	// Misconfiguration: each error names the setting and the fix.
	for _, tc := range []struct {
		name string
		auth Auth
		want []string
	}{
		{"unknown role", Auth{Method: MethodKubernetes, Role: "nope", MountPath: k.mount, TokenPath: k.tokenFile},
			[]string{`no role "nope"`, "vault write auth/" + k.mount + "/role/nope"}},
		{"wrong mount", Auth{Method: MethodKubernetes, Role: k.role, MountPath: "auth/missing-" + k.mount, TokenPath: k.tokenFile},
			[]string{"auth/missing-" + k.mount, "vault auth enable -path=missing-" + k.mount + " kubernetes"}},
		{"no token file", Auth{Method: MethodKubernetes, Role: k.role, MountPath: k.mount, TokenPath: filepath.Join(t.TempDir(), "absent")},
			[]string{"read the ServiceAccount token", "set the token path"}},
		{"the API server's token", Auth{Method: MethodKubernetes, Role: k.role, MountPath: k.mount, TokenPath: k.apiserverTokenFile},
			[]string{"not \"vault\", so it is not sent", "audience \"vault\""}},
		{"another audience than the role's", Auth{Method: MethodKubernetes, Role: k.role, MountPath: k.mount, TokenPath: k.tokenFile, Audience: "vault-prod"},
			[]string{`is for audience "vault", not "vault-prod"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Connect(ctx, tc.auth, nil)
			if err == nil {
				t.Fatal("Connect succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			noSecrets(t, err, k.jwt)
			noSecrets(t, err, k.apiserverJWT)
		})
	}

	// A role bound to another ServiceAccount refuses this one.
	other := "other-" + random()
	if _, err := root.Logical().WriteWithContext(ctx, "auth/"+k.mount+"/role/"+other, map[string]any{
		"bound_service_account_names": "someone-else", "bound_service_account_namespaces": k.ns, "token_policies": "default",
	}); err != nil {
		t.Fatal(err)
	}
	_, _, err = Connect(ctx, Auth{Method: MethodKubernetes, Role: other, MountPath: k.mount, TokenPath: k.tokenFile}, nil)
	if !IsPermissionDenied(err) || !strings.Contains(err.Error(), "bound_service_account_names") {
		t.Fatalf("login with a role bound elsewhere = %v", err)
	}
	noSecrets(t, err, k.jwt)
}

// TestKubernetesLoginAgain gives the role a short max TTL, so renewal runs
// out within seconds and Connect's goroutine must log in again.
func TestKubernetesLoginAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: waits for a token's max TTL to run out")
	}
	root := rootClient(t)
	k := setupKubeAuth(t, root, map[string]any{"token_ttl": "3s", "token_max_ttl": "6s"})
	t.Setenv(EnvToken, "")
	ctx := ctxFor(t)
	logs := &capture{}
	firstLogin := time.Now()
	c, stop, err := Connect(ctx, Auth{Method: MethodKubernetes, Role: k.role, MountPath: k.mount, TokenPath: k.tokenFile}, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	first := c.Token()
	seen := []string{first}
	deadline := time.Now().Add(30 * time.Second)
	for c.Token() == first {
		if time.Now().After(deadline) {
			t.Fatalf("no new login within 30s; logs:\n%s", logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	seen = append(seen, c.Token())
	// Past the first token's max TTL the client works with a later one.
	// Counting from the first login, not the second: a fixed sleep after
	// the second login could outlast that token too, and the write would
	// race its own replacement.
	time.Sleep(time.Until(firstLogin.Add(7 * time.Second)))
	seen = append(seen, c.Token())
	s := NewStore(c, "secret")
	if _, _, err := s.StagePending(ctx, k.path, "app-jwt", "run-1", map[string]string{"secret": secretValue()}); err != nil {
		t.Fatalf("write after the max TTL of the first token: %v", err)
	}
	stop()
	out := logs.String()
	if !strings.Contains(out, "logged in again") {
		t.Errorf("the new login was not logged:\n%s", out)
	}
	for _, secret := range append(seen, k.jwt) {
		if strings.Contains(out, secret) {
			t.Fatal("a token was logged")
		}
	}
}

func TestCheckMount(t *testing.T) {
	root := rootClient(t)
	ctx := ctxFor(t)
	if err := NewStore(root, "secret").CheckMount(ctx); err != nil {
		t.Fatalf("the devstack's secret/ mount: %v", err)
	}
	if err := NewStore(root, "pki").CheckMount(ctx); err == nil || !strings.Contains(err.Error(), "the mount is pki, not KV version 2") {
		t.Errorf("CheckMount(pki) = %v", err)
	}
	missing := "no-such-mount-" + random()
	if err := NewStore(root, missing).CheckMount(ctx); err == nil || !strings.Contains(err.Error(), "vault secrets enable -path="+missing+" kv-v2") {
		t.Errorf("CheckMount(missing) = %v", err)
	}

	// A KV version 1 mount answers writes without a version.
	v1 := "kv1-test-" + random()
	if err := root.Sys().MountWithContext(ctx, v1, &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = root.Sys().Unmount(v1) })
	s := NewStore(root, v1)
	if err := s.CheckMount(ctx); err == nil || !strings.Contains(err.Error(), "kv version 1") {
		t.Errorf("CheckMount(kv v1) = %v", err)
	}
	value := secretValue()
	_, _, err := s.StagePending(ctx, "app/jwt", "app-jwt", "run-1", map[string]string{"secret": value})
	if err == nil || !strings.Contains(err.Error(), "not a KV version 2 mount") {
		t.Errorf("StagePending on kv v1 = %v", err)
	}
	noSecrets(t, err, value)
}
