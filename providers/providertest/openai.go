package providertest

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The OpenAI error body: {"error":{"message","type","param","code"}}.
func openAIError(w http.ResponseWriter, status int, message, typ string, code any) {
	openAIErrorParam(w, status, message, typ, nil, code)
}

func openAIErrorParam(w http.ResponseWriter, status int, message, typ string, param, code any) {
	w.Header().Set("X-Request-Id", "req_"+randomString(32))
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"message": message,
		"type":    typ,
		"param":   param,
		"code":    code,
	}})
}

// serveOpenAI routes the endpoints of the OpenAI API that rotator uses.
// s.mu is held.
func (s *Server) serveOpenAI(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/v1/models" && r.Method == http.MethodGet:
		if s.openAIUser(w, r) {
			s.openAIModels(w)
		}
		return
	case strings.HasPrefix(path, "/v1/organization/projects/"):
		parts := strings.Split(strings.TrimPrefix(path, "/v1/organization/projects/"), "/")
		switch {
		case len(parts) == 1 && r.Method == http.MethodGet:
			if s.openAIAdmin(w, r) && s.openAIProject(w, parts[0]) {
				writeJSON(w, http.StatusOK, map[string]any{
					"id":          s.projectID,
					"object":      "organization.project",
					"name":        "rotator-test",
					"created_at":  1711471533,
					"archived_at": nil,
					"status":      "active",
				})
			}
			return
		case len(parts) == 2 && parts[1] == "api_keys" && r.Method == http.MethodGet:
			if s.openAIAdmin(w, r) && s.openAIProject(w, parts[0]) {
				s.openAIListKeys(w, r)
			}
			return
		case len(parts) == 3 && parts[1] == "api_keys" && (r.Method == http.MethodGet || r.Method == http.MethodDelete):
			if r.Method == http.MethodDelete {
				// Counted before auth: a test asserting "no
				// revocation happened" must see refused attempts.
				s.revocations[parts[2]]++
			}
			if !s.openAIAdmin(w, r) || !s.openAIProject(w, parts[0]) {
				return
			}
			k := s.keys[parts[2]]
			if k == nil || k.status == StatusDeleted {
				// Assumed: the docs give no 404 body for keys.
				openAIError(w, http.StatusNotFound, "No such API key: "+parts[2]+".", "invalid_request_error", nil)
				return
			}
			if r.Method == http.MethodGet {
				writeJSON(w, http.StatusOK, s.openAIKeyObject(k))
				return
			}
			k.status = StatusDeleted
			writeJSON(w, http.StatusOK, map[string]any{
				"object":  "organization.project.api_key.deleted",
				"id":      k.id,
				"deleted": true,
			})
			return
		}
	}
	// OpenAI's answer to an unknown route or method.
	openAIError(w, http.StatusNotFound, "Invalid URL ("+r.Method+" "+path+")", "invalid_request_error", nil)
}

// bearer returns the token of an "Authorization: Bearer" header, answering
// OpenAI's 401 when there is none.
func (s *Server) bearer(w http.ResponseWriter, r *http.Request) (string, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		openAIError(w, http.StatusUnauthorized, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (i.e. sk-...) when using HTTP Basic Auth. You can obtain an API key from https://platform.openai.com/account/api-keys.", "invalid_request_error", nil)
		return "", false
	}
	return token, true
}

func (s *Server) openAIIncorrectKey(w http.ResponseWriter, token string) {
	shown := mask(token)
	if s.echoKeys {
		shown = token
	}
	openAIError(w, http.StatusUnauthorized, "Incorrect API key provided: "+shown+". You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key")
}

// openAIUser authenticates a model endpoint: only an active project key.
func (s *Server) openAIUser(w http.ResponseWriter, r *http.Request) bool {
	token, ok := s.bearer(w, r)
	if !ok {
		return false
	}
	if s.admins[token] {
		// Admin keys carry no model scopes.
		openAIError(w, http.StatusUnauthorized, "You have insufficient permissions for this operation. Missing scopes: api.model.read. Check that you have the correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), and if you're using a restricted API key, that it has the necessary scopes.", "invalid_request_error", nil)
		return false
	}
	k := s.keys[s.byValue[token]]
	if k == nil || k.status != StatusActive {
		s.openAIIncorrectKey(w, token)
		return false
	}
	k.lastUsed = time.Now().UTC()
	return true
}

// openAIAdmin authenticates an organization endpoint: only an admin key.
func (s *Server) openAIAdmin(w http.ResponseWriter, r *http.Request) bool {
	token, ok := s.bearer(w, r)
	if !ok {
		return false
	}
	if s.admins[token] {
		return true
	}
	if k := s.keys[s.byValue[token]]; k != nil && k.status == StatusActive {
		openAIError(w, http.StatusUnauthorized, "You have insufficient permissions for this operation. Missing scopes: api.management.read. Check that you have the correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), and if you're using a restricted API key, that it has the necessary scopes.", "invalid_request_error", nil)
		return false
	}
	s.openAIIncorrectKey(w, token)
	return false
}

func (s *Server) openAIProject(w http.ResponseWriter, id string) bool {
	if id != s.projectID {
		// Assumed wording; the status and shape are OpenAI's.
		openAIError(w, http.StatusNotFound, "No such project: "+id+".", "invalid_request_error", nil)
		return false
	}
	return true
}

func (s *Server) openAIModels(w http.ResponseWriter) {
	model := func(id, owner string, created int) map[string]any {
		return map[string]any{"id": id, "object": "model", "created": created, "owned_by": owner}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data": []any{
			model("gpt-4o", "system", 1715367049),
			model("gpt-4o-mini", "system", 1721172741),
			model("text-embedding-3-small", "system", 1705948997),
			model("o3-mini", "system", 1737146383),
		},
	})
}

func (s *Server) openAIKeyObject(k *apiKey) map[string]any {
	var lastUsed any
	if !k.lastUsed.IsZero() {
		lastUsed = k.lastUsed.Unix()
	}
	return map[string]any{
		"object":               "organization.project.api_key",
		"redacted_value":       k.hint,
		"name":                 k.name,
		"created_at":           k.created.Unix(),
		"last_used_at":         lastUsed,
		"id":                   k.id,
		"owner_project_access": "active",
		"owner": map[string]any{
			"type": "user",
			"user": map[string]any{
				"id":         "user_abc",
				"name":       "Rotator Test",
				"email":      "rotator@example.com",
				"role":       "owner",
				"created_at": 1711471533,
			},
		},
	}
}

// openAIListKeys answers GET /v1/organization/projects/{id}/api_keys with
// the documented list: {"object":"list","data",...,"first_id","last_id",
// "has_more"}, paged by limit (1-100, default 20) and after.
func (s *Server) openAIListKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			openAIErrorParam(w, http.StatusBadRequest, "Invalid 'limit': expected an integer between 1 and 100, got "+strconv.Quote(v)+".", "invalid_request_error", "limit", "invalid_value")
			return
		}
		limit = n
	}
	switch q.Get("owner_project_access") {
	case "", "active", "inactive", "any":
	default:
		openAIErrorParam(w, http.StatusBadRequest, "Invalid 'owner_project_access': expected one of active, inactive, any.", "invalid_request_error", "owner_project_access", "invalid_value")
		return
	}
	var ids []string
	for _, id := range s.order {
		if s.keys[id].status != StatusDeleted {
			ids = append(ids, id)
		}
	}
	from, to, ok := pageBounds(ids, q.Get("after"), min(limit, s.maxPage))
	if !ok {
		// Assumed: an unknown cursor is refused rather than ignored.
		openAIErrorParam(w, http.StatusBadRequest, "Invalid 'after': no API key "+q.Get("after")+" in this project.", "invalid_request_error", "after", "invalid_value")
		return
	}
	data := []any{}
	var first, last any
	for _, id := range ids[from:to] {
		data = append(data, s.openAIKeyObject(s.keys[id]))
	}
	if to > from {
		first, last = ids[from], ids[to-1]
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object":   "list",
		"data":     data,
		"first_id": first,
		"last_id":  last,
		"has_more": to < len(ids),
	})
}
