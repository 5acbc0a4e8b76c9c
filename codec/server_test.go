package codec

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const (
	testToken = "test-token-0123456789abcdef"
	uiOrigin  = "http://127.0.0.1:8233"
)

// spyCodec counts calls, to prove that refused requests decode nothing.
type spyCodec struct {
	converter.PayloadCodec
	calls atomic.Int32
}

func (s *spyCodec) Decode(p []*commonpb.Payload) ([]*commonpb.Payload, error) {
	s.calls.Add(1)
	return s.PayloadCodec.Decode(p)
}

func (s *spyCodec) Encode(p []*commonpb.Payload) ([]*commonpb.Payload, error) {
	s.calls.Add(1)
	return s.PayloadCodec.Encode(p)
}

type fixture struct {
	codec *Codec
	spy   *spyCodec
	srv   *httptest.Server
	enc   []*commonpb.Payload // marker, encrypted
	plain []*commonpb.Payload
}

func newServerFixture(t *testing.T) *fixture {
	t.Helper()
	c := testCodec(t, "k1", testKey(t, "k1"))
	spy := &spyCodec{PayloadCodec: c}
	h, err := NewServer(spy, ServerOptions{UIOrigin: uiOrigin + "/", Tokens: []string{"another-token-000000000", testToken}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	plain := payloads(t, marker)
	enc, err := c.Encode(plain)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{codec: c, spy: spy, srv: srv, enc: enc, plain: plain}
}

func (f *fixture) post(t *testing.T, path string, headers map[string]string, payloads []*commonpb.Payload) (*http.Response, string) {
	t.Helper()
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: payloads})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestCodecServerDecodes(t *testing.T) {
	f := newServerFixture(t)
	// As the CLI calls it (/{namespace}/decode), and as the Web UI does
	// (/decode with X-Namespace, its Origin, and a query string).
	for _, tc := range []struct {
		path    string
		headers map[string]string
	}{
		{"/default/decode", map[string]string{"Authorization": "Bearer " + testToken}},
		{"/decode?preserveStorageRefs=true", map[string]string{"Authorization": "bearer " + testToken, "X-Namespace": "default", "Origin": uiOrigin}},
	} {
		resp, body := f.post(t, tc.path, tc.headers, f.enc)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.path, resp.StatusCode, body)
		}
		var got commonpb.Payloads
		if err := protojson.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Payloads) != 1 || !proto.Equal(got.Payloads[0], f.plain[0]) {
			t.Fatalf("%s: decoded %v, want %v", tc.path, got.Payloads, f.plain)
		}
		if tc.headers["Origin"] != "" && resp.Header.Get("Access-Control-Allow-Origin") != uiOrigin {
			t.Errorf("%s: no CORS header for the UI's origin: %v", tc.path, resp.Header)
		}
	}

	// The SDK's own codec server client speaks the same protocol.
	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: f.srv.URL + "/default",
		ModifyRequest: func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+testToken)
			return nil
		},
	})
	dec, err := remote.Decode(f.enc)
	if err != nil || !proto.Equal(dec[0], f.plain[0]) {
		t.Fatalf("remote decode: %v, %v", dec, err)
	}
	enc, err := remote.Encode(f.plain)
	if err != nil || string(enc[0].Metadata[converter.MetadataEncoding]) != EncodingEncrypted {
		t.Fatalf("remote encode: %v, %v", enc, err)
	}
	if back, err := f.codec.Decode(enc); err != nil || !proto.Equal(back[0], f.plain[0]) {
		t.Fatalf("what the server encoded does not decode: %v", err)
	}
}

func TestCodecServerRefusesWithoutToken(t *testing.T) {
	f := newServerFixture(t)
	for name, headers := range map[string]map[string]string{
		"no token":        {},
		"wrong token":     {"Authorization": "Bearer " + strings.ToUpper(testToken)},
		"token prefix":    {"Authorization": "Bearer " + testToken[:20]},
		"basic scheme":    {"Authorization": "Basic " + testToken},
		"token alone":     {"Authorization": testToken},
		"forged session":  {"Cookie": sessionCookie + "=9999999999.deadbeef"},
		"expired session": {"Cookie": sessionCookie + "=" + session([]byte(testToken), time.Now().Add(-time.Minute).Unix())},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := f.post(t, "/default/decode", headers, f.enc)
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatalf("want 401 with WWW-Authenticate, got %d %v", resp.StatusCode, resp.Header)
			}
			if strings.Contains(body, marker) {
				t.Fatal("a refused request got the plaintext")
			}
		})
	}
	if n := f.spy.calls.Load(); n != 0 {
		t.Fatalf("refused requests reached the codec %d times", n)
	}
}

func TestCodecServerCORS(t *testing.T) {
	f := newServerFixture(t)
	req, _ := http.NewRequest(http.MethodOptions, f.srv.URL+"/decode", nil)
	req.Header.Set("Origin", uiOrigin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-namespace")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != uiOrigin ||
		h.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, h)
	}
	for _, want := range []string{"Authorization", "Content-Type", "X-Namespace"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
			t.Errorf("preflight does not allow %s: %q", want, h.Get("Access-Control-Allow-Headers"))
		}
	}

	// A page from any other origin is refused before anything is decoded.
	resp, _ = f.post(t, "/decode", map[string]string{"Authorization": "Bearer " + testToken, "Origin": "http://evil.example"}, f.enc)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin: %d %v", resp.StatusCode, resp.Header)
	}
	if n := f.spy.calls.Load(); n != 0 {
		t.Fatalf("the preflight or a foreign origin reached the codec %d times", n)
	}
}

func TestCodecServerRoutes(t *testing.T) {
	f := newServerFixture(t)
	auth := map[string]string{"Authorization": "Bearer " + testToken}
	for path, want := range map[string]int{"/": 404, "/nope": 404, "/a/b/decode": 404, "//decode": 404, "/default/decode/x": 404} {
		if resp, _ := f.post(t, path, auth, f.enc); resp.StatusCode != want {
			t.Errorf("POST %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, err := f.srv.Client().Get(f.srv.URL + "/decode")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /decode: %d, want 405", resp.StatusCode)
	}
}

// A browser without an access token to pass signs in once and then
// decodes with the session cookie alone.
func TestCodecServerLoginSession(t *testing.T) {
	f := newServerFixture(t)
	client := f.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	resp, err := client.Get(f.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `name="token"`) || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("login page: %d %s", resp.StatusCode, page)
	}

	resp, err = client.PostForm(f.srv.URL+"/login", url.Values{"token": {"not-the-token-at-all"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong token: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}

	resp, err = client.PostForm(f.srv.URL+"/login", url.Values{"token": {testToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			cookie = c
		}
	}
	if resp.StatusCode != 200 || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login: %d, cookie %+v", resp.StatusCode, cookie)
	}
	if strings.Contains(cookie.Value, testToken) {
		t.Fatal("the session cookie contains the token")
	}
	r, body := f.post(t, "/decode", map[string]string{"Cookie": cookie.Name + "=" + cookie.Value, "Origin": uiOrigin, "X-Namespace": "default"}, f.enc)
	if r.StatusCode != 200 || !strings.Contains(body, "payloads") {
		t.Fatalf("decode with the session cookie: %d %s", r.StatusCode, body)
	}
}

func TestCodecServerNeedsTokens(t *testing.T) {
	c := testCodec(t, "k1", testKey(t, "k1"))
	if _, err := NewServer(c, ServerOptions{}); err == nil {
		t.Error("a server without tokens was made")
	}
	if _, err := NewServer(c, ServerOptions{Tokens: []string{"short"}}); err == nil {
		t.Error("a server with a short token was made")
	}
	if _, err := NewServer(nil, ServerOptions{Tokens: []string{testToken}}); err == nil {
		t.Error("a server without a codec was made")
	}
}

func TestCodecLoadTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("# codec server tokens\n"+testToken+"\n\nsecond-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvServerToken, "")
	t.Setenv(EnvServerTokenFile, path)
	tokens, err := LoadTokens()
	if err != nil || len(tokens) != 2 || tokens[0] != testToken {
		t.Fatalf("got %d tokens, %v", len(tokens), err)
	}
	for _, tc := range []struct{ file, inline, want string }{
		{"", "", "set ROTATOR_CODEC_SERVER_TOKEN_FILE (or ROTATOR_CODEC_SERVER_TOKEN)"},
		{path, testToken, "are both set"},
		{"", "short-secret", "ROTATOR_CODEC_SERVER_TOKEN line 1: a token must be at least 16 characters"},
		{"", "# only a comment", "ROTATOR_CODEC_SERVER_TOKEN: no tokens"},
		{"/nonexistent/tokens", "", "ROTATOR_CODEC_SERVER_TOKEN_FILE: open /nonexistent/tokens"},
	} {
		t.Setenv(EnvServerTokenFile, tc.file)
		t.Setenv(EnvServerToken, tc.inline)
		_, err := LoadTokens()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want %q, got %v", tc.want, err)
		} else if strings.Contains(err.Error(), "short-secret") {
			t.Errorf("the error shows the token: %v", err)
		}
	}
}
