package providertest

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func call(t *testing.T, method, url string, header map[string]string, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v", method, url, err)
	}
	return resp.StatusCode, out
}

func TestOpenAIShapes(t *testing.T) {
	s := NewOpenAI()
	defer s.Close()
	admin := "sk-admin-" + randomString(40)
	s.AddAdminKey(admin)
	key := "sk-proj-" + randomString(60) + "aB3d"
	id := s.AddKey(key)
	if got := s.KeyHint(id); got != "sk-proj-...aB3d" {
		t.Fatalf("redacted value %q, want sk-proj-...aB3d", got)
	}
	auth := map[string]string{"Authorization": "Bearer " + admin}
	list := s.URL + "/v1/organization/projects/" + s.ProjectID() + "/api_keys?limit=100"
	status, body := call(t, http.MethodGet, list, auth, "")
	data, _ := body["data"].([]any)
	if status != 200 || body["object"] != "list" || len(data) != 1 || body["has_more"] != false || body["first_id"] != id || body["last_id"] != id {
		t.Fatalf("list: %d %v", status, body)
	}
	if k := data[0].(map[string]any); k["object"] != "organization.project.api_key" || k["redacted_value"] != "sk-proj-...aB3d" || k["id"] != id {
		t.Fatalf("key object %v", k)
	}
	// A project key is no admin key.
	if status, body := call(t, http.MethodGet, list, map[string]string{"Authorization": "Bearer " + key}, ""); status != 401 || !strings.Contains(body["error"].(map[string]any)["message"].(string), "api.management.read") {
		t.Fatalf("list with a project key: %d %v", status, body)
	}
	del := s.URL + "/v1/organization/projects/" + s.ProjectID() + "/api_keys/" + id
	status, body = call(t, http.MethodDelete, del, auth, "")
	if status != 200 || body["object"] != "organization.project.api_key.deleted" || body["id"] != id || body["deleted"] != true {
		t.Fatalf("delete: %d %v", status, body)
	}
	if status, _ := call(t, http.MethodDelete, del, auth, ""); status != 404 {
		t.Fatalf("second delete: %d, want 404", status)
	}
	if s.KeyStatus(id) != StatusDeleted || s.RevocationsOf(id) != 2 || s.Revocations() != 2 {
		t.Fatalf("status %s, revocations %d/%d", s.KeyStatus(id), s.RevocationsOf(id), s.Revocations())
	}
	status, body = call(t, http.MethodGet, s.URL+"/v1/models", map[string]string{"Authorization": "Bearer " + key}, "")
	e, _ := body["error"].(map[string]any)
	if status != 401 || e["code"] != "invalid_api_key" || strings.Contains(e["message"].(string), key) {
		t.Fatalf("deleted key on /v1/models: %d %v", status, body)
	}
}

func TestAnthropicShapes(t *testing.T) {
	s := NewAnthropic()
	defer s.Close()
	admin := "sk-ant-admin01-" + randomString(80)
	s.AddAdminKey(admin)
	key := "sk-ant-api03-R2D" + randomString(80) + "igAA"
	id := s.AddKey(key)
	if got := s.KeyHint(id); got != "sk-ant-api03-R2D...igAA" {
		t.Fatalf("hint %q, want sk-ant-api03-R2D...igAA", got)
	}
	auth := map[string]string{"X-Api-Key": admin, "Anthropic-Version": "2023-06-01", "Content-Type": "application/json"}
	status, body := call(t, http.MethodGet, s.URL+"/v1/organizations/api_keys", auth, "")
	data, _ := body["data"].([]any)
	if status != 200 || len(data) != 1 || body["has_more"] != false || body["last_id"] != id {
		t.Fatalf("list: %d %v", status, body)
	}
	k := data[0].(map[string]any)
	for field, want := range map[string]any{"type": "api_key", "id": id, "partial_key_hint": "sk-ant-api03-R2D...igAA", "status": "active", "workspace_id": s.WorkspaceID()} {
		if k[field] != want {
			t.Errorf("key %s = %v, want %v", field, k[field], want)
		}
	}
	for _, field := range []string{"name", "created_at", "created_by"} {
		if k[field] == nil {
			t.Errorf("key lacks %s", field)
		}
	}
	upd := s.URL + "/v1/organizations/api_keys/" + id
	if status, body := call(t, http.MethodPost, upd, auth, `{"status":"disabled"}`); status != 400 || body["type"] != "error" {
		t.Fatalf("bad status: %d %v", status, body)
	}
	status, body = call(t, http.MethodPost, upd, auth, `{"status":"inactive"}`)
	if status != 200 || body["status"] != "inactive" || body["id"] != id {
		t.Fatalf("deactivate: %d %v", status, body)
	}
	s.SetKeyStatus(id, StatusArchived)
	if status, _ := call(t, http.MethodPost, upd, auth, `{"status":"inactive"}`); status != 400 {
		t.Fatalf("update of an archived key: %d, want 400", status)
	}
	// An API key is no admin key.
	userAuth := map[string]string{"X-Api-Key": key, "Anthropic-Version": "2023-06-01"}
	if status, body := call(t, http.MethodGet, s.URL+"/v1/organizations/api_keys", userAuth, ""); status != 401 || body["error"].(map[string]any)["type"] != "authentication_error" {
		t.Fatalf("list with an API key: %d %v", status, body)
	}
	s.FailNext("/v1/organizations/api_keys", 1, 529)
	if status, body := call(t, http.MethodGet, s.URL+"/v1/organizations/api_keys", auth, ""); status != 529 || body["error"].(map[string]any)["type"] != "overloaded_error" {
		t.Fatalf("injected 529: %d %v", status, body)
	}
	if n := s.Requests(http.MethodGet, "/v1/organizations/api_keys"); n != 3 {
		t.Fatalf("requests = %d, want 3", n)
	}
}

// TestConcurrentUse is for the race detector.
func TestConcurrentUse(t *testing.T) {
	s := NewAnthropic()
	defer s.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "sk-ant-api03-" + randomString(40) + string(rune('a'+i))
			id := s.AddKey(key)
			req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1/models", nil)
			req.Header.Set("X-Api-Key", key)
			req.Header.Set("Anthropic-Version", "2023-06-01")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
			_ = s.KeyStatus(id)
			_ = s.Requests(http.MethodGet, "/v1/models")
		}()
	}
	wg.Wait()
	if n := s.Requests(http.MethodGet, "/v1/models"); n != 8 {
		t.Fatalf("requests = %d, want 8", n)
	}
}
