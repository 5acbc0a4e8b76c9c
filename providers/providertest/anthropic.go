package providertest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Versions the fake accepts in anthropic-version; the API rejects others.
var anthropicVersions = map[string]bool{"2023-06-01": true, "2023-01-01": true}

// The Anthropic error body:
// {"type":"error","error":{"type","message"},"request_id"}.
func anthropicError(w http.ResponseWriter, status int, typ, message string) {
	id := "req_011C" + randomString(20)
	w.Header().Set("Request-Id", id)
	writeJSON(w, status, map[string]any{
		"type":       "error",
		"error":      map[string]any{"type": typ, "message": message},
		"request_id": id,
	})
}

// anthropicErrorType maps a status to the documented error type.
func anthropicErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusConflict:
		return "conflict_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case 529:
		return "overloaded_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// serveAnthropic routes the endpoints of the Anthropic API that rotator
// uses. s.mu is held.
func (s *Server) serveAnthropic(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	// A version header, when sent, must be one the API knows; /v1/models
	// requires one, while the Admin API documents it as optional.
	version := r.Header.Get("Anthropic-Version")
	if version != "" && !anthropicVersions[version] {
		anthropicError(w, http.StatusBadRequest, "invalid_request_error", "anthropic-version: "+strconv.Quote(version)+" is not a valid version")
		return
	}
	switch {
	case path == "/v1/models" && r.Method == http.MethodGet:
		if version == "" {
			anthropicError(w, http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required")
			return
		}
		if s.anthropicUser(w, r) {
			s.anthropicModels(w)
		}
		return
	case path == "/v1/organizations/api_keys" && r.Method == http.MethodGet:
		if s.anthropicAdmin(w, r) {
			s.anthropicListKeys(w, r)
		}
		return
	case strings.HasPrefix(path, "/v1/organizations/api_keys/") && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		id := strings.TrimPrefix(path, "/v1/organizations/api_keys/")
		if strings.Contains(id, "/") {
			break
		}
		if r.Method == http.MethodPost {
			// Counted before auth: a test asserting "no revocation
			// happened" must see refused attempts.
			s.revocations[id]++
		}
		if !s.anthropicAdmin(w, r) {
			return
		}
		k := s.keys[id]
		if k == nil {
			// Assumed wording; the status and type are documented.
			anthropicError(w, http.StatusNotFound, "not_found_error", "API key not found: "+id)
			return
		}
		if r.Method == http.MethodPost && !s.anthropicUpdateKey(w, r, k) {
			return
		}
		writeJSON(w, http.StatusOK, s.anthropicKeyObject(k))
		return
	}
	anthropicError(w, http.StatusNotFound, "not_found_error", "Not Found")
}

// apiKeyHeader returns the x-api-key header, answering Anthropic's 401 when
// there is none.
func (s *Server) apiKeyHeader(w http.ResponseWriter, r *http.Request) (string, bool) {
	key := r.Header.Get("X-Api-Key")
	if key == "" {
		anthropicError(w, http.StatusUnauthorized, "authentication_error", "x-api-key header is required")
		return "", false
	}
	return key, true
}

// anthropicInvalidKey is the API's answer to a key it does not accept.
func (s *Server) anthropicInvalidKey(w http.ResponseWriter, key string) {
	msg := "invalid x-api-key"
	if s.echoKeys {
		msg += ": " + key
	}
	anthropicError(w, http.StatusUnauthorized, "authentication_error", msg)
}

// anthropicUser authenticates a model endpoint: only an active API key.
// Admin keys, and keys deactivated, archived or expired, get the same 401
// (assumed for admin keys: the docs say only that they are for the Admin
// API).
func (s *Server) anthropicUser(w http.ResponseWriter, r *http.Request) bool {
	key, ok := s.apiKeyHeader(w, r)
	if !ok {
		return false
	}
	k := s.keys[s.byValue[key]]
	if k == nil || k.status != StatusActive {
		s.anthropicInvalidKey(w, key)
		return false
	}
	return true
}

// anthropicAdmin authenticates an Admin API endpoint: only an admin key.
// A regular API key gets 401 authentication_error (assumed: the docs say
// the Admin API requires an admin key, not which error the others get).
func (s *Server) anthropicAdmin(w http.ResponseWriter, r *http.Request) bool {
	key, ok := s.apiKeyHeader(w, r)
	if !ok {
		return false
	}
	if !s.admins[key] {
		s.anthropicInvalidKey(w, key)
		return false
	}
	return true
}

func (s *Server) anthropicModels(w http.ResponseWriter) {
	model := func(id, name, created string) map[string]any {
		return map[string]any{"type": "model", "id": id, "display_name": name, "created_at": created}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"data": []any{
			model("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
			model("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-22T00:00:00Z"),
			model("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"),
		},
		"has_more": false,
		"first_id": "claude-opus-4-1-20250805",
		"last_id":  "claude-3-5-haiku-20241022",
	})
}

func (s *Server) anthropicKeyObject(k *apiKey) map[string]any {
	return map[string]any{
		"id":               k.id,
		"type":             "api_key",
		"name":             k.name,
		"partial_key_hint": k.hint,
		"status":           k.status,
		"workspace_id":     s.workspaceID,
		"created_at":       k.created.Format(time.RFC3339Nano),
		"created_by":       map[string]any{"id": "user_01WCz1FkmYMm4gnmykNKUu3Q", "type": "user"},
		"expires_at":       nil,
	}
}

// anthropicUpdateKey applies POST /v1/organizations/api_keys/{id} with body
// {"name"?, "status"?}, answering the error itself when it refuses.
func (s *Server) anthropicUpdateKey(w http.ResponseWriter, r *http.Request, k *apiKey) bool {
	var body struct {
		Name   *string `json:"name"`
		Status *string `json:"status"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		anthropicError(w, http.StatusBadRequest, "invalid_request_error", "invalid request body: "+err.Error())
		return false
	}
	if body.Status != nil {
		switch *body.Status {
		case StatusActive, StatusInactive, StatusArchived:
		default:
			anthropicError(w, http.StatusBadRequest, "invalid_request_error", "status: Input should be 'active', 'inactive' or 'archived'")
			return false
		}
	}
	if k.status == StatusArchived || k.status == StatusExpired {
		// Assumed wording: archiving is documented as final.
		anthropicError(w, http.StatusBadRequest, "invalid_request_error", "cannot update an API key with status "+k.status)
		return false
	}
	if body.Name != nil {
		k.name = *body.Name
	}
	if body.Status != nil {
		k.status = *body.Status
	}
	return true
}

// anthropicListKeys answers GET /v1/organizations/api_keys with the
// documented list {"data","has_more","first_id","last_id"}, paged by limit
// (1-1000, default 20) and after_id, filtered by status and workspace_id.
func (s *Server) anthropicListKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			anthropicError(w, http.StatusBadRequest, "invalid_request_error", "limit: Input should be between 1 and 1000")
			return
		}
		limit = n
	}
	status, workspace := q.Get("status"), q.Get("workspace_id")
	var ids []string
	for _, id := range s.order {
		k := s.keys[id]
		if (status == "" || k.status == status) && (workspace == "" || workspace == s.workspaceID) {
			ids = append(ids, id)
		}
	}
	from, to, ok := pageBounds(ids, q.Get("after_id"), min(limit, s.maxPage))
	if !ok {
		// Assumed: an unknown cursor is refused rather than ignored.
		anthropicError(w, http.StatusBadRequest, "invalid_request_error", "after_id: no API key "+q.Get("after_id"))
		return
	}
	data := []any{}
	var first, last any
	for _, id := range ids[from:to] {
		data = append(data, s.anthropicKeyObject(s.keys[id]))
	}
	if to > from {
		first, last = ids[from], ids[to-1]
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"data":     data,
		"has_more": to < len(ids),
		"first_id": first,
		"last_id":  last,
	})
}
