package providers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// VerifyKey proves that key is accepted by the provider by listing models
// (GET /v1/models), the cheapest authenticated call either API has: it
// spends no tokens.
func (c *Client) VerifyKey(ctx context.Context, key string) error {
	r := request{op: opVerify, method: http.MethodGet, path: "/v1/models", key: key, secrets: []string{key}}
	if err := checkKey("key", key); err != nil {
		return c.fail(r, TypeInvalidArgument, "%v", err)
	}
	data, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	// Both providers answer {"data": [...], ...}; anything else is a
	// different service that happened to say 200.
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := c.decode(r, data, &list); err != nil {
		return err
	}
	if list.Data == nil {
		return c.fail(r, TypeInvalidResponse, "the models list has no data (is baseURL %s right?)", c.base)
	}
	return nil
}

// FindKeyID returns the provider's id of key, found by listing the keys
// through the admin API and matching their redacted values against it:
// neither provider can look a key up by value. Exactly one key must match;
// none or several is a permanent error, since guessing would revoke the
// wrong key.
func (c *Client) FindKeyID(ctx context.Context, admin AdminKey, key string) (string, error) {
	r := request{op: opFind, method: http.MethodGet, key: admin.Key, secrets: []string{key, admin.Key}}
	if err := c.checkAdmin(admin); err != nil {
		return "", c.fail(r, TypeInvalidArgument, "%v", err)
	}
	if err := checkKey("key", key); err != nil {
		return "", c.fail(r, TypeInvalidArgument, "%v", err)
	}
	var matches []string
	cursor := ""
	for page := 0; ; page++ {
		if page == maxPages {
			return "", c.fail(r, TypeInvalidResponse, "the key list did not end after %d pages", maxPages)
		}
		keys, more, next, err := c.listPage(ctx, r, admin, cursor)
		if err != nil {
			return "", err
		}
		for _, k := range keys {
			if hintMatches(k.hint, key) {
				matches = append(matches, k.id)
			}
		}
		if !more {
			break
		}
		// Stopping early would turn "ambiguous" into "unique" or
		// "none" on the keys not read, so a bad cursor is an error.
		if next == "" || next == cursor {
			return "", c.fail(r, TypeInvalidResponse, "the key list says it has more pages but gives no new cursor (%q)", next)
		}
		cursor = next
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return "", c.fail(r, TypeNoMatch, "no API key in %s has a redacted value matching the key: is the admin key for the right %s, or was the key already revoked?", c.scope(admin), c.scopeNoun())
	default:
		return "", c.fail(r, TypeAmbiguous, "%d API keys in %s have a redacted value matching the key (%s): revoke the old key in the console", len(matches), c.scope(admin), strings.Join(matches, ", "))
	}
}

// listedKey is one key of an admin list, reduced to what matching needs.
type listedKey struct {
	id   string
	hint string
}

// listPage fetches one page of keys after cursor, and says whether there
// are more and the cursor of the next page.
func (c *Client) listPage(ctx context.Context, r request, admin AdminKey, cursor string) (keys []listedKey, more bool, next string, err error) {
	q := url.Values{"limit": {strconv.Itoa(pageSize)}}
	after := "after_id"
	r.path = "/v1/organizations/api_keys"
	if c.name == OpenAI {
		after = "after"
		r.path = "/v1/organization/projects/" + url.PathEscape(admin.ProjectID) + "/api_keys"
		// Without owner_project_access=any the list follows the admin's
		// membership and may leave out enabled keys, such as those of
		// people who left the project.
		q.Set("owner_project_access", "any")
	}
	if cursor != "" {
		q.Set(after, cursor)
	}
	r.query = q
	data, err := c.do(ctx, r)
	if err != nil {
		return nil, false, "", err
	}
	// The providers name the hint differently: OpenAI redacted_value,
	// Anthropic partial_key_hint.
	var page struct {
		Data []struct {
			ID             string  `json:"id"`
			RedactedValue  *string `json:"redacted_value"`
			PartialKeyHint *string `json:"partial_key_hint"`
		} `json:"data"`
		HasMore bool    `json:"has_more"`
		LastID  *string `json:"last_id"`
	}
	if err := c.decode(r, data, &page); err != nil {
		return nil, false, "", err
	}
	for _, k := range page.Data {
		// Keys without a hint cannot be matched, but they still move the
		// cursor.
		if hint := cmp.Or(k.RedactedValue, k.PartialKeyHint); hint != nil {
			keys = append(keys, listedKey{id: k.ID, hint: *hint})
		}
		next = k.ID
	}
	if page.LastID != nil && *page.LastID != "" {
		next = *page.LastID
	}
	return keys, page.HasMore, next, nil
}

// RevokeKey makes the key with the provider's id unusable: OpenAI deletes
// the project key, Anthropic sets it inactive (its API cannot delete keys).
// Revoking a key that is already revoked succeeds, so a retried activity
// does not fail on its own earlier success.
func (c *Client) RevokeKey(ctx context.Context, admin AdminKey, id string) error {
	r := request{op: opRevoke, key: admin.Key, secrets: []string{admin.Key}}
	if err := c.checkAdmin(admin); err != nil {
		return c.fail(r, TypeInvalidArgument, "%v", err)
	}
	if id == "" {
		return c.fail(r, TypeInvalidArgument, "key id is empty")
	}
	switch c.name {
	case OpenAI:
		r.method = http.MethodDelete
		r.path = "/v1/organization/projects/" + url.PathEscape(admin.ProjectID) + "/api_keys/" + url.PathEscape(id)
		data, err := c.do(ctx, r)
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusNotFound {
			// Deleted keys vanish from the project, so 404 is what a
			// second delete gets; but a wrong project id gets it too,
			// and must not pass for a revocation.
			if perr := c.openAIProjectExists(ctx, admin); perr != nil {
				return perr
			}
			return nil
		}
		if err != nil {
			return err
		}
		var res struct {
			Deleted bool `json:"deleted"`
		}
		if err := c.decode(r, data, &res); err != nil {
			return err
		}
		if !res.Deleted {
			return c.fail(r, TypeInvalidResponse, "the provider answered deleted=false for key %s", id)
		}
		return nil
	default:
		r.method = http.MethodPost
		r.path = "/v1/organizations/api_keys/" + url.PathEscape(id)
		r.body = map[string]string{"status": "inactive"}
		data, err := c.do(ctx, r)
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusBadRequest {
			// An archived or expired key cannot be updated (assumed:
			// the docs call archiving final but give no error); if
			// that is why, the key is already unusable. A 404 is not
			// handled here and stays an error: Anthropic never
			// deletes keys, so it means the id is wrong.
			status, gerr := c.anthropicKeyStatus(ctx, admin, id)
			switch {
			case gerr == nil && status != "active":
				return nil
			case gerr != nil && !IsPermanent(gerr):
				// The lookup hit a passing failure: say so, rather
				// than the 400 that may not be final.
				return gerr
			}
			return err
		}
		if err != nil {
			return err
		}
		var res struct {
			Status string `json:"status"`
		}
		if err := c.decode(r, data, &res); err != nil {
			return err
		}
		if res.Status == "active" {
			return c.fail(r, TypeInvalidResponse, "key %s is still active after setting it inactive", id)
		}
		return nil
	}
}

// openAIProjectExists returns nil when the admin's project exists, and the
// error of the lookup otherwise (a permanent 404 for a wrong project id).
func (c *Client) openAIProjectExists(ctx context.Context, admin AdminKey) error {
	r := request{op: opRevoke, method: http.MethodGet, path: "/v1/organization/projects/" + url.PathEscape(admin.ProjectID), key: admin.Key, secrets: []string{admin.Key}}
	data, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	var p struct {
		ID string `json:"id"`
	}
	return c.decode(r, data, &p)
}

// anthropicKeyStatus reads the status of one Anthropic key.
func (c *Client) anthropicKeyStatus(ctx context.Context, admin AdminKey, id string) (string, error) {
	r := request{op: opRevoke, method: http.MethodGet, path: "/v1/organizations/api_keys/" + url.PathEscape(id), key: admin.Key, secrets: []string{admin.Key}}
	data, err := c.do(ctx, r)
	if err != nil {
		return "", err
	}
	var k struct {
		Status string `json:"status"`
	}
	if err := c.decode(r, data, &k); err != nil {
		return "", err
	}
	return k.Status, nil
}

func (c *Client) checkAdmin(admin AdminKey) error {
	if err := checkKey("admin key", admin.Key); err != nil {
		return err
	}
	if c.name == OpenAI && admin.ProjectID == "" {
		return fmt.Errorf("admin project id is empty: OpenAI keys are listed and deleted per project (proj_...)")
	}
	return nil
}

func (c *Client) scope(admin AdminKey) string {
	if c.name == OpenAI {
		return "project " + admin.ProjectID
	}
	return "the organization"
}

func (c *Client) scopeNoun() string {
	if c.name == OpenAI {
		return "project"
	}
	return "organization"
}

// hintMatches reports whether a redacted value shown by a provider could be
// key. The documented shapes are "sk-abc...def" (OpenAI redacted_value) and
// "sk-ant-api03-R2D...igAA" (Anthropic partial_key_hint); responses seen in
// the wild also mask with asterisks ("sk-proj-****ABCD"), so the mask is any
// run of dots, an ellipsis or asterisks, and what is left on each side must
// be the key's prefix and suffix. A hint without a mask or without a suffix
// says too little to match on.
func hintMatches(hint, key string) bool {
	const mask = ".*…•"
	i := strings.IndexAny(hint, mask)
	if i < 0 {
		return false
	}
	prefix, suffix := hint[:i], strings.TrimLeft(hint[i:], mask)
	if suffix == "" || strings.ContainsAny(suffix, mask) {
		return false
	}
	return len(key) >= len(prefix)+len(suffix) && strings.HasPrefix(key, prefix) && strings.HasSuffix(key, suffix)
}
