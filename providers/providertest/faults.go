package providertest

import (
	"net/http"
)

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
