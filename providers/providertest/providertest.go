// Package providertest runs local HTTP servers that answer like the OpenAI
// and Anthropic APIs for the endpoints rotator uses: listing models, and the
// admin endpoints that list, delete (OpenAI) or deactivate (Anthropic) API
// keys. Unit tests, end-to-end tests and the demo point provider base URLs at
// them, so the paths, headers, JSON shapes and error bodies follow the
// providers' documentation; where the documentation is silent the choice is
// marked "assumed" in a comment.
//
// The servers check what the real APIs check (the auth header, Anthropic's
// anthropic-version, admin keys on admin endpoints) and count requests, so a
// test can assert that a client sent the right thing, and can inject the
// providers' rate-limit and overload errors.
package providertest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Provider names, the same strings as rotator/providers uses.
const (
	openAI    = "openai"
	anthropic = "anthropic"
)

// Key statuses reported by KeyStatus.
const (
	// StatusActive is a key that authenticates.
	StatusActive = "active"
	// StatusInactive is an Anthropic key that was deactivated.
	StatusInactive = "inactive"
	// StatusArchived is an Anthropic key that was archived (final).
	StatusArchived = "archived"
	// StatusExpired is an Anthropic key past its expiry.
	StatusExpired = "expired"
	// StatusDeleted is an OpenAI key that was deleted.
	StatusDeleted = "deleted"
)

// Server is a fake provider API on a local port. It is safe for concurrent
// use.
type Server struct {
	// URL is the base URL to give the client, e.g. http://127.0.0.1:1234.
	URL string

	provider string
	ts       *httptest.Server

	mu          sync.Mutex
	projectID   string // OpenAI
	workspaceID string // Anthropic
	keys        map[string]*apiKey
	order       []string          // key ids in creation order, as listed
	byValue     map[string]string // key value → id
	admins      map[string]bool
	requests    map[string]int // "METHOD /path" → count
	headers     map[string]http.Header
	revocations map[string]int // key id → delete or update calls
	failures    map[string][]failure
	maxPage     int
	echoKeys    bool
	seq         int
}

type apiKey struct {
	id, value, name, hint, status string
	created                       time.Time
	lastUsed                      time.Time
}

type failure struct{ status int }

// Option configures a server at start.
type Option func(*options)

type options struct {
	listener  net.Listener
	projectID string
}

// WithListener makes the server accept on l, e.g. a fixed port for the
// demo's stand-ins, instead of a random loopback port. Close closes l.
func WithListener(l net.Listener) Option { return func(o *options) { o.listener = l } }

// WithProjectID gives the OpenAI project a fixed id, so that a catalog can
// name it, instead of a random one.
func WithProjectID(id string) Option { return func(o *options) { o.projectID = id } }

// NewOpenAI starts a server speaking the OpenAI API with one project, no
// keys and no admin keys.
func NewOpenAI(opts ...Option) *Server {
	return newServer(openAI, opts)
}

// NewAnthropic starts a server speaking the Anthropic API with one
// organization and workspace, no keys and no admin keys.
func NewAnthropic(opts ...Option) *Server {
	return newServer(anthropic, opts)
}

func newServer(provider string, opts []Option) *Server {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{
		provider:    provider,
		keys:        map[string]*apiKey{},
		byValue:     map[string]string{},
		admins:      map[string]bool{},
		requests:    map[string]int{},
		headers:     map[string]http.Header{},
		revocations: map[string]int{},
		failures:    map[string][]failure{},
	}
	switch provider {
	case openAI:
		s.projectID = cmp.Or(o.projectID, "proj_"+randomString(24))
		s.maxPage = 100 // documented maximum of limit
	case anthropic:
		s.workspaceID = "wrkspc_01" + randomString(22)
		s.maxPage = 1000 // documented maximum of limit
	}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if o.listener != nil {
		s.ts.Listener.Close()
		s.ts.Listener = o.listener
	}
	s.ts.Start()
	s.URL = s.ts.URL
	return s
}

// Key is a snapshot of one API key, value included: the demo's stand-ins
// save it so that a restart keeps the keys, their ids and statuses.
type Key struct {
	ID      string    `json:"id"`
	Value   string    `json:"value"`
	Name    string    `json:"name"`
	Status  string    `json:"status"`
	Created time.Time `json:"created"`
}

// Keys returns every API key the server knows, in creation order.
func (s *Server) Keys() []Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Key, 0, len(s.order))
	for _, id := range s.order {
		k := s.keys[id]
		out = append(out, Key{ID: k.id, Value: k.value, Name: k.name, Status: k.status, Created: k.created})
	}
	return out
}

// RestoreKey registers a key from a snapshot made by Keys, keeping its id,
// name, status and creation time. It panics on a key that is too short or
// already registered, as AddKey does.
func (s *Server) RestoreKey(k Key) {
	id := s.AddKeyNamed(k.Value, k.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.keys[id]
	delete(s.keys, id)
	r.id, r.status, r.created = k.ID, k.Status, k.Created
	s.keys[r.id] = r
	s.order[len(s.order)-1] = r.id
	s.byValue[r.value] = r.id
}

// Close shuts the server down.
func (s *Server) Close() { s.ts.Close() }

// Provider returns "openai" or "anthropic".
func (s *Server) Provider() string { return s.provider }

// ProjectID returns the id of the OpenAI project that owns the keys, and ""
// for Anthropic, whose keys belong to the organization.
func (s *Server) ProjectID() string { return s.projectID }

// WorkspaceID returns the id of the Anthropic workspace keys are put in, and
// "" for OpenAI.
func (s *Server) WorkspaceID() string { return s.workspaceID }

// AddKey registers value as an active API key and returns the provider's id
// for it. The key is listed by the admin API with a redacted value built the
// way the provider shows it: OpenAI "sk-proj-...aB3d" (first 8 and last 4
// characters), Anthropic "sk-ant-api03-R2D...igAA" (first 16 and last 4).
// It panics on a value shorter than 24 bytes, which would make the redacted
// value give away most of it, or on a value already registered.
func (s *Server) AddKey(value string) string {
	return s.AddKeyNamed(value, "")
}

// AddKeyNamed is AddKey with the key's display name ("" for a generated
// one).
func (s *Server) AddKeyNamed(value, name string) string {
	if len(value) < 24 {
		panic(fmt.Sprintf("providertest: AddKey: a key of %d bytes is too short to redact (24 at least)", len(value)))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.byValue[value]; dup || s.admins[value] {
		panic("providertest: AddKey: that value is already registered")
	}
	s.seq++
	k := &apiKey{value: value, name: name, status: StatusActive, created: time.Now().UTC().Add(time.Duration(s.seq) * time.Millisecond)}
	if k.name == "" {
		k.name = fmt.Sprintf("rotator-test-%d", s.seq)
	}
	switch s.provider {
	case openAI:
		k.id = "key_" + randomString(16)
		k.hint = value[:8] + "..." + value[len(value)-4:]
	case anthropic:
		k.id = "apikey_01" + randomString(22)
		k.hint = value[:16] + "..." + value[len(value)-4:]
	}
	s.keys[k.id] = k
	s.order = append(s.order, k.id)
	s.byValue[value] = k.id
	return k.id
}

// AddAdminKey registers value as an admin key: accepted by the admin
// endpoints and, as with the real APIs, refused by /v1/models.
func (s *Server) AddAdminKey(value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.byValue[value]; dup {
		panic("providertest: AddAdminKey: that value is already an API key")
	}
	s.admins[value] = true
}

// KeyStatus returns the status of the key with id: StatusActive, and then
// StatusDeleted (OpenAI) or StatusInactive, StatusArchived, StatusExpired
// (Anthropic); "" for an id the server never issued.
func (s *Server) KeyStatus(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keys[id]; k != nil {
		return k.status
	}
	return ""
}

// SetKeyStatus changes the status of the key with id, to set up a key that
// was revoked, archived or expired outside the code under test.
func (s *Server) SetKeyStatus(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[id]
	if k == nil {
		panic("providertest: SetKeyStatus: no key " + id)
	}
	k.status = status
}

// KeyHint returns the redacted value (OpenAI) or partial key hint
// (Anthropic) the admin API shows for the key with id.
func (s *Server) KeyHint(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keys[id]; k != nil {
		return k.hint
	}
	return ""
}

// Revocations returns how many delete (OpenAI) or status-update (Anthropic)
// calls the server answered, for any key, successful or not.
func (s *Server) Revocations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.revocations {
		n += c
	}
	return n
}

// RevocationsOf returns how many delete or status-update calls named the key
// with id.
func (s *Server) RevocationsOf(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revocations[id]
}

// Requests returns how many requests with method came for path (exact, no
// query), including refused and injected failures.
func (s *Server) Requests(method, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[method+" "+path]
}

// LastHeader returns a copy of the headers of the last request with method
// for path, or nil if there was none.
func (s *Server) LastHeader(method, path string) http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.headers[method+" "+path].Clone()
}

// FailNext makes the next n requests for path (any method) fail with status
// and the provider's error body for it: 429 a rate limit, 500 a server
// error, 529 (Anthropic) or 503 (OpenAI) an overload, others the generic
// error of that status.
func (s *Server) FailNext(path string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures[path] = append(s.failures[path], failure{status: status})
	}
}

// SetMaxPageSize caps the page size of the admin list endpoint below the
// documented maximum, so that a test can cross pages with a few keys.
func (s *Server) SetMaxPageSize(n int) {
	if n < 1 {
		panic("providertest: SetMaxPageSize: n must be positive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxPage = n
}

// EchoKeysInErrors makes authentication errors quote the presented key in
// full rather than masked, the worst a provider could do, to prove that a
// client scrubs what it reports.
func (s *Server) EchoKeysInErrors(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.echoKeys = on
}

// serve records the request, plays an injected failure if one is queued,
// and hands over to the provider's routes.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.Method + " " + r.URL.Path
	s.requests[id]++
	s.headers[id] = r.Header.Clone()
	if q := s.failures[r.URL.Path]; len(q) > 0 {
		s.failures[r.URL.Path] = q[1:]
		s.injected(w, q[0].status)
		return
	}
	switch s.provider {
	case openAI:
		s.serveOpenAI(w, r)
	case anthropic:
		s.serveAnthropic(w, r)
	}
}

func (s *Server) injected(w http.ResponseWriter, status int) {
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	switch s.provider {
	case openAI:
		switch {
		case status == http.StatusTooManyRequests:
			openAIError(w, status, "Rate limit reached for requests", "requests", "rate_limit_exceeded")
		case status == http.StatusServiceUnavailable:
			openAIError(w, status, "The server is overloaded or not ready yet.", "server_error", nil)
		case status >= 500:
			openAIError(w, status, "The server had an error while processing your request. Sorry about that!", "server_error", nil)
		case status == http.StatusUnauthorized:
			openAIError(w, status, "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key")
		default:
			openAIError(w, status, http.StatusText(status), "invalid_request_error", nil)
		}
	case anthropic:
		msg := http.StatusText(status)
		switch status {
		case http.StatusTooManyRequests:
			msg = "This request would exceed your account's rate limit. Please try again later."
		case 529:
			msg = "Overloaded"
		case http.StatusInternalServerError:
			msg = "Internal server error"
		}
		anthropicError(w, status, anthropicErrorType(status), msg)
	}
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// mask renders a presented key the way OpenAI's 401 message does: the
// first 8 and last 4 characters around asterisks.
func mask(key string) string {
	if len(key) < 12 {
		return strings.Repeat("*", len(key))
	}
	return key[:8] + strings.Repeat("*", len(key)-12) + key[len(key)-4:]
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomString returns n characters of the alphabet ids use. It is not for
// secrets: ids are public, and tests choose the key values.
func randomString(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[rand.IntN(len(alnum))]
	}
	return string(b)
}

// pageBounds returns the slice [from, to) of ids after cursor holding at
// most limit of them, and whether the cursor was found.
func pageBounds(ids []string, after string, limit int) (from, to int, ok bool) {
	if after != "" {
		found := false
		for i, id := range ids {
			if id == after {
				from, found = i+1, true
				break
			}
		}
		if !found {
			return 0, 0, false
		}
	}
	to = min(from+limit, len(ids))
	return from, to, true
}
