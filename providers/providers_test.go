package providers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"rotator/providers"
	"rotator/providers/providertest"
)

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func random(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[rand.IntN(len(alnum))]
	}
	return string(b)
}

// newKey returns a key in the provider's real format.
func newKey(provider string) string {
	if provider == providers.OpenAI {
		return "sk-proj-" + random(156)
	}
	return "sk-ant-api03-" + random(93) + "AA"
}

func newAdminKey(provider string) string {
	if provider == providers.OpenAI {
		return "sk-admin-" + random(64)
	}
	return "sk-ant-admin01-" + random(93) + "AA"
}

type fixture struct {
	name  string
	srv   *providertest.Server
	c     *providers.Client
	admin providers.AdminKey
}

func setup(t *testing.T, name string) *fixture {
	t.Helper()
	var srv *providertest.Server
	if name == providers.OpenAI {
		srv = providertest.NewOpenAI()
	} else {
		srv = providertest.NewAnthropic()
	}
	t.Cleanup(srv.Close)
	c, err := providers.New(name, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	admin := providers.AdminKey{Key: newAdminKey(name), ProjectID: srv.ProjectID()}
	srv.AddAdminKey(admin.Key)
	return &fixture{name: name, srv: srv, c: c, admin: admin}
}

// listPath is the admin endpoint that lists keys.
func (f *fixture) listPath() string {
	if f.name == providers.OpenAI {
		return "/v1/organization/projects/" + f.srv.ProjectID() + "/api_keys"
	}
	return "/v1/organizations/api_keys"
}

// revokePath is the admin endpoint that revokes the key with id.
func (f *fixture) revokePath(id string) string {
	return f.listPath() + "/" + id
}

func eachProvider(t *testing.T, test func(t *testing.T, f *fixture)) {
	for _, name := range providers.Names() {
		t.Run(name, func(t *testing.T) { test(t, setup(t, name)) })
	}
}

// asError fails the test unless err is a *providers.Error.
func asError(t *testing.T, err error) *providers.Error {
	t.Helper()
	var e *providers.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *providers.Error", err, err)
	}
	return e
}

// assertNoSecret fails if any rendering of err holds a secret or any 8
// characters in a row of one.
func assertNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, text := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		for _, sec := range secrets {
			if strings.Contains(text, sec) {
				t.Fatalf("error shows a whole secret: %s", text)
			}
			for i := 0; i+8 <= len(sec); i++ {
				if strings.Contains(text, sec[i:i+8]) {
					t.Fatalf("error shows %q, characters %d-%d of a secret: %s", sec[i:i+8], i, i+8, text)
				}
			}
		}
	}
}

func TestVerifyKeySendsProviderHeaders(t *testing.T) {
	eachProvider(t, func(t *testing.T, f *fixture) {
		key := newKey(f.name)
		f.srv.AddKey(key)
		if err := f.c.VerifyKey(context.Background(), key); err != nil {
			t.Fatalf("VerifyKey of a valid key: %v", err)
		}
		if n := f.srv.Requests(http.MethodGet, "/v1/models"); n != 1 {
			t.Fatalf("GET /v1/models requests = %d, want 1", n)
		}
		h := f.srv.LastHeader(http.MethodGet, "/v1/models")
		switch f.name {
		case providers.OpenAI:
			if got := h.Get("Authorization"); got != "Bearer "+key {
				t.Errorf("Authorization header is not Bearer <key> (len %d)", len(got))
			}
			if h.Get("X-Api-Key") != "" {
				t.Error("OpenAI request carries x-api-key")
			}
		case providers.Anthropic:
			if h.Get("X-Api-Key") != key {
				t.Error("x-api-key header is not the key")
			}
			if got := h.Get("Anthropic-Version"); got != "2023-06-01" {
				t.Errorf("anthropic-version = %q, want 2023-06-01", got)
			}
			if h.Get("Authorization") != "" {
				t.Error("Anthropic request carries Authorization")
			}
		}
	})
}

func TestVerifyBadKeyIsPermanentAndScrubbed(t *testing.T) {
	eachProvider(t, func(t *testing.T, f *fixture) {
		for _, echo := range []bool{false, true} {
			f.srv.EchoKeysInErrors(echo)
			key := newKey(f.name) // never registered
			err := f.c.VerifyKey(context.Background(), key)
			if err == nil {
				t.Fatal("VerifyKey of an unknown key succeeded")
			}
			e := asError(t, err)
			if e.Status != http.StatusUnauthorized || !e.Permanent() || !providers.IsPermanent(err) {
				t.Fatalf("echo=%v: got status %d permanent %v, want 401 permanent: %v", echo, e.Status, e.Permanent(), err)
			}
			wantType := map[string]string{providers.OpenAI: "invalid_api_key", providers.Anthropic: "authentication_error"}[f.name]
			if e.Type != wantType {
				t.Errorf("Type = %q, want %q", e.Type, wantType)
			}
			if prefix := f.name + ": verify key: 401 " + wantType + ": "; !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q does not start with %q", err, prefix)
			}
			assertNoSecret(t, err, key, f.admin.Key)
		}
	})
}

func TestVerifyAdminKeyIsRefused(t *testing.T) {
	eachProvider(t, func(t *testing.T, f *fixture) {
		err := f.c.VerifyKey(context.Background(), f.admin.Key)
		if e := asError(t, err); e.Status != http.StatusUnauthorized || !e.Permanent() {
			t.Fatalf("VerifyKey(admin key) = %v, want a permanent 401", err)
		}
		assertNoSecret(t, err, f.admin.Key)
	})
}

func TestTransientFailuresAreRetryable(t *testing.T) {
	cases := map[string][]struct {
		status int
		typ    string
	}{
		providers.OpenAI:    {{429, "rate_limit_exceeded"}, {500, "server_error"}, {503, "server_error"}},
		providers.Anthropic: {{429, "rate_limit_error"}, {500, "api_error"}, {529, "overloaded_error"}},
	}
	eachProvider(t, func(t *testing.T, f *fixture) {
		key := newKey(f.name)
		f.srv.AddKey(key)
		for _, tc := range cases[f.name] {
			f.srv.FailNext("/v1/models", 1, tc.status)
			err := f.c.VerifyKey(context.Background(), key)
			e := asError(t, err)
			if e.Status != tc.status || e.Type != tc.typ {
				t.Errorf("got %d %s, want %d %s", e.Status, e.Type, tc.status, tc.typ)
			}
			if e.Permanent() || providers.IsPermanent(err) {
				t.Errorf("%d is reported permanent: %v", tc.status, err)
			}
			assertNoSecret(t, err, key)
			// The failure was injected once: the retry works.
			if err := f.c.VerifyKey(context.Background(), key); err != nil {
				t.Fatalf("retry after %d: %v", tc.status, err)
			}
		}
	})
}

func TestNetworkErrorsAreRetryable(t *testing.T) {
	eachProvider(t, func(t *testing.T, f *fixture) {
		key := newKey(f.name)
		f.srv.Close()
		err := f.c.VerifyKey(context.Background(), key)
		e := asError(t, err)
		if e.Type != providers.TypeNetwork || e.Status != 0 || e.Permanent() {
			t.Fatalf("closed server: got %v (type %s), want a retryable network error", err, e.Type)
		}
		assertNoSecret(t, err, key)

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err = f.c.VerifyKey(ctx, key)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled context: %v does not wrap context.Canceled", err)
		}
	})
}

func TestAnthropicServerRequiresVersionHeader(t *testing.T) {
	srv := providertest.NewAnthropic()
	defer srv.Close()
	key := newKey(providers.Anthropic)
	srv.AddKey(key)

	get := func(version string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/models", nil)
		req.Header.Set("X-Api-Key", key)
		if version != "" {
			req.Header.Set("Anthropic-Version", version)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}

	status, body := get("")
	if status != http.StatusBadRequest {
		t.Fatalf("without anthropic-version: status %d, want 400", status)
	}
	inner, _ := body["error"].(map[string]any)
	if body["type"] != "error" || inner["type"] != "invalid_request_error" || inner["message"] != "anthropic-version: header is required" {
		t.Fatalf("without anthropic-version: body %v is not Anthropic's error", body)
	}
	if status, _ := get("2099-01-01"); status != http.StatusBadRequest {
		t.Fatalf("unknown anthropic-version: status %d, want 400", status)
	}
	status, body = get("2023-06-01")
	if status != http.StatusOK {
		t.Fatalf("with anthropic-version: status %d, want 200: %v", status, body)
	}
	data, _ := body["data"].([]any)
	if len(data) == 0 || body["has_more"] != false {
		t.Fatalf("models list %v has no data or no has_more", body)
	}
	if m, _ := data[0].(map[string]any); m["type"] != "model" || m["display_name"] == nil {
		t.Fatalf("model %v lacks type or display_name", data[0])
	}
}

func TestOpenAIServerRequiresBearer(t *testing.T) {
	srv := providertest.NewOpenAI()
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error map[string]any `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized || body.Error["type"] != "invalid_request_error" {
		t.Fatalf("no Authorization: %d %v, want 401 invalid_request_error", resp.StatusCode, body)
	}
	for _, field := range []string{"message", "type", "param", "code"} {
		if _, ok := body.Error[field]; !ok {
			t.Errorf("error body lacks %q: %v", field, body.Error)
		}
	}
}

func TestFindKeyID(t *testing.T) {
	eachProvider(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		keys := []string{newKey(f.name), newKey(f.name), newKey(f.name)}
		var ids []string
		for _, k := range keys {
			ids = append(ids, f.srv.AddKey(k))
		}

		t.Run("unique", func(t *testing.T) {
			for i, k := range keys {
				id, err := f.c.FindKeyID(ctx, f.admin, k)
				if err != nil || id != ids[i] {
					t.Fatalf("FindKeyID(key %d) = %q, %v; want %q", i, id, err, ids[i])
				}
			}
			h := f.srv.LastHeader(http.MethodGet, f.listPath())
			if f.name == providers.OpenAI && h.Get("Authorization") != "Bearer "+f.admin.Key {
				t.Error("list was not authorized with the admin key as Bearer")
			}
			if f.name == providers.Anthropic && h.Get("X-Api-Key") != f.admin.Key {
				t.Error("list was not authorized with the admin key in x-api-key")
			}
		})

		t.Run("none", func(t *testing.T) {
			stranger := newKey(f.name)
			id, err := f.c.FindKeyID(ctx, f.admin, stranger)
			e := asError(t, err)
			if id != "" || e.Type != providers.TypeNoMatch || !e.Permanent() {
				t.Fatalf("FindKeyID(unlisted key) = %q, %v; want a permanent %s", id, err, providers.TypeNoMatch)
			}
			if !strings.HasPrefix(err.Error(), f.name+": find key id: ") {
				t.Errorf("error %q does not name the provider and operation", err)
			}
			assertNoSecret(t, err, stranger, f.admin.Key)
		})

		t.Run("ambiguous", func(t *testing.T) {
			// Same visible prefix and suffix as keys[0], different middle.
			twin := keys[0][:20] + random(len(keys[0])-24) + keys[0][len(keys[0])-4:]
			twinID := f.srv.AddKey(twin)
			if f.srv.KeyHint(twinID) != f.srv.KeyHint(ids[0]) {
				t.Fatalf("test setup: hints differ: %s vs %s", f.srv.KeyHint(twinID), f.srv.KeyHint(ids[0]))
			}
			id, err := f.c.FindKeyID(ctx, f.admin, keys[0])
			e := asError(t, err)
			if id != "" || e.Type != providers.TypeAmbiguous || !e.Permanent() {
				t.Fatalf("FindKeyID(ambiguous) = %q, %v; want a permanent %s", id, err, providers.TypeAmbiguous)
			}
			if !strings.Contains(err.Error(), ids[0]) || !strings.Contains(err.Error(), twinID) {
				t.Errorf("error %q does not list the matching ids", err)
			}
			assertNoSecret(t, err, keys[0], twin, f.admin.Key)
			// Still unique for the others.
			if id, err := f.c.FindKeyID(ctx, f.admin, keys[1]); err != nil || id != ids[1] {
				t.Fatalf("FindKeyID(key 1) after the twin = %q, %v", id, err)
			}
		})
	})
}

func TestFindKeyIDFollowsPagination(t *testing.T) {
	eachProvider(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		const n = 250 // the client asks 100 a page: three pages
		keys := make([]string, n)
		ids := make([]string, n)
		for i := range keys {
			keys[i] = newKey(f.name)
			ids[i] = f.srv.AddKey(keys[i])
		}
		for _, i := range []int{0, 99, 100, 249} {
			before := f.srv.Requests(http.MethodGet, f.listPath())
			id, err := f.c.FindKeyID(ctx, f.admin, keys[i])
			if err != nil || id != ids[i] {
				t.Fatalf("FindKeyID(key %d of %d) = %q, %v; want %q", i, n, id, err, ids[i])
			}
			if pages := f.srv.Requests(http.MethodGet, f.listPath()) - before; pages != 3 {
				t.Fatalf("FindKeyID read %d pages, want 3 (all of them, to rule out a second match)", pages)
			}
		}

		// A server that pages smaller than asked is followed too.
		f.srv.SetMaxPageSize(7)
		before := f.srv.Requests(http.MethodGet, f.listPath())
		if id, err := f.c.FindKeyID(ctx, f.admin, keys[n-1]); err != nil || id != ids[n-1] {
			t.Fatalf("FindKeyID with 7 a page = %q, %v", id, err)
		}
		if pages := f.srv.Requests(http.MethodGet, f.listPath()) - before; pages != (n+6)/7 {
			t.Fatalf("read %d pages of 7, want %d", pages, (n+6)/7)
		}
	})
}

func TestFindKeyIDNeedsAnAdminKey(t *testing.T) {
	eachProvider(t, func(t *testing.T, f *fixture) {
		key := newKey(f.name)
		f.srv.AddKey(key)
		notAdmin := providers.AdminKey{Key: key, ProjectID: f.admin.ProjectID}
		_, err := f.c.FindKeyID(context.Background(), notAdmin, key)
		e := asError(t, err)
		if e.Status != http.StatusUnauthorized && e.Status != http.StatusForbidden || !e.Permanent() {
			t.Fatalf("FindKeyID with a regular key as admin = %v, want a permanent 401/403", err)
		}
		assertNoSecret(t, err, key)
	})
}

func TestRevokeKey(t *testing.T) {
	eachProvider(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		key, other := newKey(f.name), newKey(f.name)
		f.srv.AddKey(key)
		otherID := f.srv.AddKey(other)
		if err := f.c.VerifyKey(ctx, key); err != nil {
			t.Fatal(err)
		}
		id, err := f.c.FindKeyID(ctx, f.admin, key)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.c.RevokeKey(ctx, f.admin, id); err != nil {
			t.Fatalf("RevokeKey: %v", err)
		}
		want := map[string]string{providers.OpenAI: providertest.StatusDeleted, providers.Anthropic: providertest.StatusInactive}[f.name]
		if got := f.srv.KeyStatus(id); got != want {
			t.Fatalf("status after revoke = %q, want %q", got, want)
		}
		if f.srv.KeyStatus(otherID) != providertest.StatusActive {
			t.Fatal("revoking one key touched another")
		}
		err = f.c.VerifyKey(ctx, key)
		if e := asError(t, err); e.Status != http.StatusUnauthorized || !e.Permanent() {
			t.Fatalf("VerifyKey of a revoked key = %v, want a permanent 401", err)
		}
		assertNoSecret(t, err, key)
		if err := f.c.VerifyKey(ctx, other); err != nil {
			t.Fatalf("the other key stopped working: %v", err)
		}

		// A retried activity revokes again: that must succeed.
		if err := f.c.RevokeKey(ctx, f.admin, id); err != nil {
			t.Fatalf("second RevokeKey: %v", err)
		}
		if n := f.srv.RevocationsOf(id); n != 2 {
			t.Fatalf("revocation calls for the key = %d, want 2", n)
		}
		if n := f.srv.Revocations(); n != 2 {
			t.Fatalf("revocation calls in all = %d, want 2", n)
		}
		if f.srv.KeyStatus(id) != want {
			t.Fatalf("status after the second revoke = %q", f.srv.KeyStatus(id))
		}
	})
}

func TestRevokeKeyRetryableFailure(t *testing.T) {
	eachProvider(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		id := f.srv.AddKey(newKey(f.name))
		f.srv.FailNext(f.revokePath(id), 1, http.StatusTooManyRequests)
		err := f.c.RevokeKey(ctx, f.admin, id)
		if e := asError(t, err); e.Status != http.StatusTooManyRequests || e.Permanent() {
			t.Fatalf("RevokeKey under a rate limit = %v, want a retryable 429", err)
		}
		assertNoSecret(t, err, f.admin.Key)
		if f.srv.KeyStatus(id) != providertest.StatusActive {
			t.Fatal("a failed revoke changed the key")
		}
		if err := f.c.RevokeKey(ctx, f.admin, id); err != nil {
			t.Fatalf("retry: %v", err)
		}
		if f.srv.KeyStatus(id) == providertest.StatusActive {
			t.Fatal("the retried revoke left the key active")
		}
	})
}

func TestRevokeOpenAIWrongProjectIsNotSuccess(t *testing.T) {
	f := setup(t, providers.OpenAI)
	id := f.srv.AddKey(newKey(f.name))
	wrong := providers.AdminKey{Key: f.admin.Key, ProjectID: "proj_doesnotexist"}
	err := f.c.RevokeKey(context.Background(), wrong, id)
	if e := asError(t, err); e.Status != http.StatusNotFound || !e.Permanent() {
		t.Fatalf("RevokeKey in a wrong project = %v, want a permanent 404", err)
	}
	if f.srv.KeyStatus(id) != providertest.StatusActive {
		t.Fatal("the key changed")
	}
}

func TestRevokeAnthropicArchivedAndUnknown(t *testing.T) {
	f := setup(t, providers.Anthropic)
	ctx := context.Background()
	id := f.srv.AddKey(newKey(f.name))
	f.srv.SetKeyStatus(id, providertest.StatusArchived)
	if err := f.c.RevokeKey(ctx, f.admin, id); err != nil {
		t.Fatalf("RevokeKey of an archived key = %v, want nil: it is already unusable", err)
	}
	if f.srv.KeyStatus(id) != providertest.StatusArchived {
		t.Fatal("archived key changed status")
	}
	err := f.c.RevokeKey(ctx, f.admin, "apikey_01doesnotexist")
	if e := asError(t, err); e.Status != http.StatusNotFound || e.Type != "not_found_error" || !e.Permanent() {
		t.Fatalf("RevokeKey of an unknown id = %v, want a permanent 404 not_found_error", err)
	}
}

func TestOpenAINeedsProjectID(t *testing.T) {
	f := setup(t, providers.OpenAI)
	key := newKey(f.name)
	f.srv.AddKey(key)
	noProject := providers.AdminKey{Key: f.admin.Key}
	for name, err := range map[string]error{
		"find":   func() error { _, err := f.c.FindKeyID(context.Background(), noProject, key); return err }(),
		"revoke": f.c.RevokeKey(context.Background(), noProject, "key_abc"),
	} {
		e := asError(t, err)
		if e.Type != providers.TypeInvalidArgument || !e.Permanent() || !strings.Contains(err.Error(), "project") {
			t.Errorf("%s without a project id = %v, want a permanent invalid_argument naming the project", name, err)
		}
	}
	if n := f.srv.Requests(http.MethodGet, "/v1/organization/projects//api_keys"); n != 0 {
		t.Errorf("%d requests went out without a project id", n)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	target := providertest.NewAnthropic()
	defer target.Close()
	key := newKey(providers.Anthropic)
	target.AddKey(key)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	c, err := providers.New(providers.Anthropic, redirector.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.VerifyKey(context.Background(), key)
	if e := asError(t, err); e.Status != http.StatusTemporaryRedirect || !e.Permanent() {
		t.Fatalf("VerifyKey through a redirect = %v, want a permanent 307", err)
	}
	if n := target.Requests(http.MethodGet, "/v1/models"); n != 0 {
		t.Fatalf("the redirect was followed with the key (%d requests reached the target)", n)
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name, base, wantErr string
	}{
		{"openai", "", ""},
		{"anthropic", "http://127.0.0.1:8080/proxy/", ""},
		{"gemini", "", "name"},
		{"", "", "name"},
		{"openai", "api.openai.com", "baseURL"},
		{"openai", "ftp://api.openai.com", "baseURL"},
		{"openai", "https://user:pw@api.openai.com", "baseURL"},
		{"openai", "https://api.openai.com?x=1", "baseURL"},
	} {
		c, err := providers.New(tc.name, tc.base, nil)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("New(%q, %q): %v", tc.name, tc.base, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("New(%q, %q) = %v, want an error naming %s", tc.name, tc.base, err, tc.wantErr)
		}
		if tc.wantErr == "" && err == nil && tc.base == "" && c.BaseURL() != providers.DefaultBaseURL(tc.name) {
			t.Errorf("New(%q, \"\") base URL = %s, want the default", tc.name, c.BaseURL())
		}
	}
	if providers.DefaultBaseURL(providers.OpenAI) != "https://api.openai.com" || providers.DefaultBaseURL(providers.Anthropic) != "https://api.anthropic.com" || providers.DefaultBaseURL("x") != "" {
		t.Error("DefaultBaseURL is wrong")
	}
}

func TestAdminKeyDoesNotPrintItsKey(t *testing.T) {
	a := providers.AdminKey{Key: newAdminKey(providers.OpenAI), ProjectID: "proj_abc"}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("admin", "admin", a)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("admin", "admin", a)
	for _, text := range []string{fmt.Sprint(a), fmt.Sprintf("%+v", a), fmt.Sprintf("%#v", a), fmt.Sprintf("%v", &a), logged.String()} {
		if strings.Contains(text, a.Key[:12]) {
			t.Fatalf("AdminKey printed its key: %s", text)
		}
		if !strings.Contains(text, "proj_abc") {
			t.Fatalf("AdminKey hid its project too: %s", text)
		}
	}
}
