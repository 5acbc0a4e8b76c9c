// Package providers talks to the HTTP APIs of the LLM providers whose keys
// rotator rotates: it proves that a key works, finds the provider's id of a
// key through the admin API, and revokes a key by that id.
//
// The only secrets here are API keys and admin keys. They travel in request
// headers and nowhere else, and every error this package returns has been
// scrubbed of them, because errors end up in Temporal histories and logs that
// many more people can read than the Secrets the keys come from.
package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Provider names, as written in the catalog.
const (
	// OpenAI is the OpenAI API (api.openai.com).
	OpenAI = "openai"
	// Anthropic is the Claude API (api.anthropic.com).
	Anthropic = "anthropic"
)

// AnthropicVersion is the anthropic-version header sent on every Anthropic
// request; the API rejects requests to /v1/models without one, and pinning
// it keeps response shapes stable.
const AnthropicVersion = "2023-06-01"

const (
	// maxBody bounds what is read of a response: the largest legitimate
	// body here is a page of 100 key objects, far below it, and a
	// misbehaving endpoint must not make the worker buffer without end.
	maxBody = 1 << 20
	// pageSize is the page size asked of list endpoints; 100 is OpenAI's
	// maximum, so fewer round trips than the default 20.
	pageSize = 100
	// maxPages stops a list that never ends (a server repeating its
	// cursor) from looping forever: 100 000 keys is beyond any project.
	maxPages = 1000
	// defaultTimeout bounds one request when the caller gives no client;
	// provider list endpoints answer in well under a second.
	defaultTimeout = 30 * time.Second
)

// Operation names used in errors.
const (
	opVerify = "verify key"
	opFind   = "find key id"
	opRevoke = "revoke key"
)

var defaultBaseURLs = map[string]string{
	OpenAI:    "https://api.openai.com",
	Anthropic: "https://api.anthropic.com",
}

// Names lists the providers this package speaks to, in a stable order.
func Names() []string { return []string{OpenAI, Anthropic} }

// DefaultBaseURL returns the public API of the named provider, or "" for a
// name this package does not know.
func DefaultBaseURL(name string) string { return defaultBaseURLs[name] }

// Client calls one provider's API. It holds no secrets: keys are passed to
// each call, so one Client serves every key of its provider. It is safe for
// concurrent use.
type Client struct {
	name string
	base string
	hc   *http.Client
}

// New returns a Client for the named provider at baseURL (an absolute
// http(s) URL, possibly with a path prefix for a proxy; "" means the
// provider's public API). A nil hc gets a client with a 30 s timeout.
func New(name, baseURL string, hc *http.Client) (*Client, error) {
	if _, ok := defaultBaseURLs[name]; !ok {
		return nil, fmt.Errorf("providers: name %q is not a provider: use one of %s", name, strings.Join(Names(), ", "))
	}
	if baseURL == "" {
		baseURL = defaultBaseURLs[name]
	}
	u, err := url.Parse(baseURL)
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return nil, fmt.Errorf("providers: baseURL %q is not an absolute http(s) URL: use e.g. %s", baseURL, defaultBaseURLs[name])
	case u.User != nil:
		// Credentials in the URL would appear in every net/http error.
		return nil, fmt.Errorf("providers: baseURL must not hold credentials: keys are sent in headers")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("providers: baseURL %q must not have a query or fragment", baseURL)
	}
	var c http.Client
	if hc != nil {
		c = *hc
	} else {
		c.Timeout = defaultTimeout
	}
	// net/http forwards custom headers such as x-api-key on redirects,
	// even to another host; a redirect from a provider API is never
	// expected, so it is refused rather than followed with the key.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{name: name, base: strings.TrimRight(u.String(), "/"), hc: &c}, nil
}

// Name returns the provider the Client speaks to.
func (c *Client) Name() string { return c.name }

// BaseURL returns the API root the Client sends requests to.
func (c *Client) BaseURL() string { return c.base }

// AdminKey is what the admin API of a provider needs.
type AdminKey struct {
	// Key is the admin key (OpenAI sk-admin-..., Anthropic
	// sk-ant-admin01-...).
	Key string
	// ProjectID is the OpenAI project (proj_...) that owns the keys;
	// Anthropic keys belong to the organization, so it is unused there.
	ProjectID string
}

// String hides the admin key so that logging an AdminKey by accident shows
// only which project it is for.
func (a AdminKey) String() string {
	if a.ProjectID == "" {
		return "AdminKey{Key: [REDACTED]}"
	}
	return "AdminKey{Key: [REDACTED], ProjectID: " + a.ProjectID + "}"
}

// GoString hides the admin key from %#v as String does from %v.
func (a AdminKey) GoString() string { return a.String() }

// LogValue hides the admin key from log/slog, whose JSON handler would
// otherwise print the exported field.
func (a AdminKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key", "[REDACTED]"), slog.String("projectID", a.ProjectID))
}

// request is one call to the provider API.
type request struct {
	op     string
	method string
	path   string // already escaped
	query  url.Values
	body   any
	key    string
	// secrets are scrubbed from any error the call returns.
	secrets []string
}

// do sends r and returns the body of a 2xx response. Every error is an
// *Error scrubbed of r.secrets.
func (c *Client) do(ctx context.Context, r request) ([]byte, error) {
	target := c.base + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, c.fail(r, TypeInvalidArgument, "cannot encode request: %v", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, c.fail(r, TypeInvalidArgument, "cannot build request: %s", scrub(err.Error(), r.secrets))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "rotator")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch c.name {
	case OpenAI:
		req.Header.Set("Authorization", "Bearer "+r.key)
	case Anthropic:
		req.Header.Set("X-Api-Key", r.key)
		req.Header.Set("Anthropic-Version", AnthropicVersion)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		e := c.fail(r, TypeNetwork, "%s", scrub(err.Error(), r.secrets))
		// Keep the context's error reachable for errors.Is, and nothing
		// else: the raw error is what scrubbing protects against.
		if ctx.Err() != nil {
			e.cause = ctx.Err()
		}
		return nil, e
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, c.fail(r, TypeNetwork, "reading the response: %s", scrub(err.Error(), r.secrets))
	}
	if len(data) > maxBody {
		e := c.fail(r, TypeInvalidResponse, "response body exceeds %d bytes", maxBody)
		e.Status = resp.StatusCode
		return nil, e
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.apiError(r, resp.StatusCode, data)
	}
	return data, nil
}

// decode parses a 2xx body; a body that is not the documented JSON means the
// base URL points at something other than the provider's API.
func (c *Client) decode(r request, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return c.fail(r, TypeInvalidResponse, "the response is not the provider's JSON (is baseURL %s right?)", c.base)
	}
	return nil
}

// fail builds a local (status 0) error.
func (c *Client) fail(r request, typ, format string, args ...any) *Error {
	return &Error{Provider: c.name, Op: r.op, Type: typ, Message: clip(scrub(fmt.Sprintf(format, args...), r.secrets))}
}

// apiError turns a non-2xx response into an *Error, taking the type and
// message from the provider's documented error body when there is one.
func (c *Client) apiError(r request, status int, data []byte) *Error {
	e := &Error{Provider: c.name, Op: r.op, Status: status}
	switch c.name {
	case OpenAI:
		// {"error":{"message":..., "type":..., "param":..., "code":...}}
		var b struct {
			Error *struct {
				Message string `json:"message"`
				Type    string `json:"type"`
				Code    any    `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &b) == nil && b.Error != nil {
			e.Message = b.Error.Message
			// code is the precise reason (invalid_api_key,
			// rate_limit_exceeded, insufficient_quota); type is coarse.
			switch code := b.Error.Code.(type) {
			case string:
				e.Type = code
			case float64:
				e.Type = fmt.Sprint(code)
			}
			if e.Type == "" {
				e.Type = b.Error.Type
			}
		}
	case Anthropic:
		// {"type":"error","error":{"type":..., "message":...},"request_id":...}
		var b struct {
			Error *struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &b) == nil && b.Error != nil {
			e.Type, e.Message = b.Error.Type, b.Error.Message
		}
	}
	if e.Message == "" {
		// Not the provider's body (a proxy's HTML page, say): its text
		// is not worth the risk of quoting it.
		e.Message = http.StatusText(status)
	}
	e.Type = clip(scrub(e.Type, r.secrets))
	e.Message = clip(scrub(e.Message, r.secrets))
	return e
}

// checkKey rejects keys that cannot be a provider key before they are put in
// a header: net/http's error for a bad header value is not ours to audit.
func checkKey(what, key string) error {
	if key == "" {
		return fmt.Errorf("%s is empty", what)
	}
	for i := 0; i < len(key); i++ {
		if ch := key[i]; ch <= ' ' || ch >= 0x7f {
			return fmt.Errorf("%s has a character at byte %d that no provider key has (whitespace or non-ASCII): check what was stored", what, i)
		}
	}
	return nil
}
