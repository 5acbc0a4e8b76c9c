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
