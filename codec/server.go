package codec

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"
)

const (
	// EnvServerTokenFile names a file of bearer tokens, one per line, that
	// the codec server accepts. Preferred over EnvServerToken for the same
	// reason as EnvKeysFile. More than one line lets a token be rotated
	// without downtime.
	EnvServerTokenFile = "ROTATOR_CODEC_SERVER_TOKEN_FILE"
	// EnvServerToken holds the tokens inline.
	EnvServerToken = "ROTATOR_CODEC_SERVER_TOKEN"

	// minTokenLen refuses tokens short enough to guess: whoever holds one
	// can decrypt every payload.
	minTokenLen = 16
	// maxRequestBody bounds what one request can make the server buffer;
	// Temporal itself refuses payloads over 2 MiB, and the UI sends one
	// event's payloads at a time.
	maxRequestBody = 16 << 20
	// sessionCookie carries a browser's proof of a token, for a Web UI that
	// has no access token to pass (see login).
	sessionCookie = "rotator_codec_session"
	sessionTTL    = 12 * time.Hour
)

// LoadTokens reads the codec server's bearer tokens from
// ROTATOR_CODEC_SERVER_TOKEN_FILE or ROTATOR_CODEC_SERVER_TOKEN: one per
// line, blank lines and # comments ignored. Errors name the line, never
// its contents.
func LoadTokens() ([]string, error) {
	file, inline := os.Getenv(EnvServerTokenFile), os.Getenv(EnvServerToken)
	source, text := EnvServerToken, inline
	switch {
	case file != "" && inline != "":
		return nil, fmt.Errorf("%s and %s are both set: keep one (the file is preferred)", EnvServerTokenFile, EnvServerToken)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvServerTokenFile, err)
		}
		source, text = EnvServerTokenFile+" ("+file+")", string(b)
	case inline == "":
		return nil, fmt.Errorf("set %s (or %s) to the bearer token callers must send: the codec server decrypts for whoever calls it (make one with `openssl rand -base64 32`)",
			EnvServerTokenFile, EnvServerToken)
	}
	var tokens []string
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < minTokenLen || strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("%s line %d: a token must be at least %d characters without spaces (make one with `openssl rand -base64 32`)", source, i+1, minTokenLen)
		}
		tokens = append(tokens, line)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%s: no tokens: add a line (make one with `openssl rand -base64 32`)", source)
	}
	return tokens, nil
}

// ServerOptions configure NewServer.
type ServerOptions struct {
	// UIOrigin is the Temporal Web UI's origin (scheme://host[:port], as
	// the browser sends it in the Origin header) that CORS lets read
	// responses. Empty: no browser may call the server, only the CLI and
	// other non-browser clients.
	UIOrigin string
	// Tokens are the bearer tokens a request must carry; at least one.
	Tokens []string
	// Log receives one line per request (never payloads or tokens);
	// nil discards.
	Log *slog.Logger
}

// server wraps the SDK's codec HTTP handler, which speaks the codec server
// protocol but does no CORS, authentication or routing of its own.
type server struct {
	codec  http.Handler
	origin string
	tokens [][]byte
	log    *slog.Logger
}

// NewServer serves the Temporal codec server protocol for c: POST
// /encode and /decode, also under a namespace segment (/{namespace}/decode)
// as the CLI's --codec-endpoint templating produces, with CORS for the Web
// UI's origin. Every encode or decode needs `Authorization: Bearer <token>`
// or a session cookie from /login; anything else gets 401 before a payload
// is read.
func NewServer(c converter.PayloadCodec, o ServerOptions) (http.Handler, error) {
	if c == nil {
		return nil, errors.New("codec server: no codec: configure " + EnvKeysFile)
	}
	if len(o.Tokens) == 0 {
		return nil, errors.New("codec server: no tokens: configure " + EnvServerTokenFile)
	}
	s := &server{
		codec:  converter.NewPayloadCodecHTTPHandler(c),
		origin: strings.TrimSuffix(o.UIOrigin, "/"),
		log:    o.Log,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, t := range o.Tokens {
		if len(t) < minTokenLen {
			return nil, fmt.Errorf("codec server: a token is shorter than %d characters", minTokenLen)
		}
		s.tokens = append(s.tokens, []byte(t))
	}
	return s, nil
}

// corsAllowHeaders are the request headers the Web UI sends: X-Namespace
// always, Authorization and Authorization-Extras (the ID token) when it
// passes the user's access token.
const corsAllowHeaders = "Authorization, Authorization-Extras, Content-Type, X-Namespace"

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/login" {
		s.login(w, r)
		return
	}
	op, namespace, ok := route(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if namespace == "" {
		namespace = r.Header.Get("X-Namespace")
	}
	log := s.log.With("op", op, "namespace", namespace, "remote", r.RemoteAddr)
	if origin := r.Header.Get("Origin"); origin != "" {
		// Refused outright rather than only left without CORS headers: a
		// page from another origin has no business making the server
		// decrypt, even if the browser would hide the answer.
		if s.origin == "" || origin != s.origin {
			log.Warn("codec request refused: origin not allowed", "origin", origin)
			http.Error(w, "origin "+origin+" is not allowed: start the codec server with --ui-origin "+origin, http.StatusForbidden)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", s.origin)
		// The UI's "Include cross-origin credentials" sends the session
		// cookie; the browser drops the answer unless this is set.
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		// A preflight carries no credentials by design, so it is answered
		// without authentication; it reveals nothing but these headers.
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", "600")
		if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
			// Chrome asks before a public page (a hosted UI) may call a
			// server on a private address.
			h.Set("Access-Control-Allow-Private-Network", "true")
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	if !s.authorized(r) {
		log.Warn("codec request refused: no valid token")
		w.Header().Set("WWW-Authenticate", `Bearer realm="rotator codec server"`)
		http.Error(w, "unauthorized: send Authorization: Bearer <token> (see ROTATOR_CODEC_SERVER_TOKEN_FILE), or sign in at /login", http.StatusUnauthorized)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.codec.ServeHTTP(rec, r)
	log.Info("codec request", "status", rec.status)
}

// route accepts /encode, /decode and /{namespace}/encode|decode. The SDK
// handler itself matches any path suffix; routing here keeps paths the
// protocol does not define from reaching it.
func route(path string) (op, namespace string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case len(parts) == 1:
		op = parts[0]
	case len(parts) == 2 && parts[0] != "":
		namespace, op = parts[0], parts[1]
	default:
		return "", "", false
	}
	return op, namespace, op == "encode" || op == "decode"
}

// authorized accepts a bearer token or a session cookie. Comparisons are
// constant-time, so response timing does not reveal how much of a guess
// was right.
func (s *server) authorized(r *http.Request) bool {
	if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		if s.validToken(strings.TrimSpace(token)) {
			return true
		}
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		return s.validSession(c.Value, time.Now())
	}
	return false
}

func (s *server) validToken(token string) bool {
	got := sha256.Sum256([]byte(token))
	ok := 0
	for _, t := range s.tokens {
		// Hashing first makes the comparison independent of the lengths.
		want := sha256.Sum256(t)
		ok |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	return ok == 1
}

// session is the cookie value for a token: an expiry and an HMAC of it
// keyed by the token. The cookie is sent to every port on the host (cookies
// ignore ports), so it must not be the token itself.
func session(token []byte, expires int64) string {
	m := hmac.New(sha256.New, token)
	fmt.Fprintf(m, "rotator codec session %d", expires)
	return strconv.FormatInt(expires, 10) + "." + hex.EncodeToString(m.Sum(nil))
}

func (s *server) validSession(value string, now time.Time) bool {
	exp, _, ok := strings.Cut(value, ".")
	expires, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || now.Unix() > expires {
		return false
	}
	match := 0
	for _, t := range s.tokens {
		match |= subtle.ConstantTimeCompare([]byte(session(t, expires)), []byte(value))
	}
	return match == 1
}

// login lets a browser prove it holds a token once and get a session
// cookie. The Web UI only passes an access token from its own OIDC login
// and only to an https endpoint; without those (the devstack, a UI without
// SSO) its "Include cross-origin credentials" setting sends this cookie
// instead. The cookie is SameSite=Strict, so only pages on the same site as
// the codec server (the UI on the same host) can make the browser send it.
func (s *server) login(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
	switch r.Method {
	case http.MethodGet:
		fmt.Fprint(w, loginPage(""))
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		if err := r.ParseForm(); err != nil || !s.validToken(strings.TrimSpace(r.PostForm.Get("token"))) {
			s.log.Warn("codec login refused", "remote", r.RemoteAddr)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, loginPage("That is not a codec server token."))
			return
		}
		token := []byte(strings.TrimSpace(r.PostForm.Get("token")))
		expires := time.Now().Add(sessionTTL)
		http.SetCookie(w, &http.Cookie{
			Name: sessionCookie, Value: session(token, expires.Unix()), Path: "/",
			Expires: expires, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
		})
		s.log.Info("codec login", "remote", r.RemoteAddr)
		fmt.Fprint(w, loginPage("Signed in until "+expires.UTC().Format(time.RFC3339)+
			". In the Web UI's codec server settings, set this server's address and turn on “Include cross-origin credentials”."))
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
	}
}

func loginPage(message string) string {
	return `<!doctype html><meta charset="utf-8"><title>rotator codec server</title>
<h1>rotator codec server</h1>
<p>` + html.EscapeString(message) + `</p>
<form method="post" action="/login">
<label>Token <input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Sign in</button>
</form>
`
}

// statusRecorder remembers the status the SDK handler wrote, for the log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}
