package providers

import (
	"strings"
	"testing"
)

func TestHintMatches(t *testing.T) {
	const openAIKey = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789aB3d"
	const anthropicKey = "sk-ant-api03-R2DxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxigAA"
	for _, tc := range []struct {
		hint, key string
		want      bool
	}{
		{"sk-proj-...aB3d", openAIKey, true},
		{"sk-proj-****aB3d", openAIKey, true},
		{"sk-proj-…aB3d", openAIKey, true},
		{"sk-proj-abc...aB3d", openAIKey, true},
		{"sk-proj-...aB3e", openAIKey, false},
		{"sk-svcacct-...aB3d", openAIKey, false},
		{"sk-ant-api03-R2D...igAA", anthropicKey, true},
		{"sk-ant-api03-R2E...igAA", anthropicKey, false},
		{"sk-ant-api03-R2D...", anthropicKey, false},                    // no suffix
		{"sk-proj-aB3d", openAIKey, false},                              // no mask
		{"sk-proj-...a...B3d", openAIKey, false},                        // two masks
		{"sk-proj-abcdefgh...defghaB3d", "sk-proj-abcdefghaB3d", false}, // longer than the key
		{"", openAIKey, false},
	} {
		if got := hintMatches(tc.hint, tc.key); got != tc.want {
			t.Errorf("hintMatches(%q) = %v, want %v", tc.hint, got, tc.want)
		}
	}
}

func TestScrub(t *testing.T) {
	secret := "zq8Kd0mLpR4sT7vW2xY5aB9cE1fG3hJ6" // not sk- shaped
	for _, msg := range []string{
		"Incorrect API key provided: sk-proj-AbCd****************wXyZ. You can find your API key at https://platform.openai.com/account/api-keys.",
		"Incorrect API key provided: sk-abc...xyz.",
		"invalid x-api-key: " + secret,
		"key " + secret[:10] + "*****" + secret[len(secret)-4:] + " is revoked",
		"key '" + secret[:9] + "' is revoked",
		"the key ends in ..." + secret[len(secret)-9:],
	} {
		got := scrub(msg, []string{secret})
		if strings.Contains(got, "sk-") || strings.Contains(got, "***") {
			t.Errorf("scrub(%q) = %q: a key shape survived", msg, got)
		}
		for i := 0; i+windowLen <= len(secret); i++ {
			if strings.Contains(got, secret[i:i+windowLen]) {
				t.Errorf("scrub(%q) = %q: part of the secret survived", msg, got)
			}
		}
		if !strings.Contains(got, redacted) {
			t.Errorf("scrub(%q) = %q: nothing was redacted", msg, got)
		}
	}
	// Ordinary text is left alone, including a trailing ellipsis.
	for _, msg := range []string{
		"Rate limit reached for requests",
		"Overloaded",
		"Please try again later...",
		"anthropic-version: header is required",
	} {
		if got := scrub(msg, []string{secret}); got != msg {
			t.Errorf("scrub(%q) = %q, want it unchanged", msg, got)
		}
	}
}

func TestErrorFormatAndPermanence(t *testing.T) {
	for _, tc := range []struct {
		e         Error
		text      string
		permanent bool
	}{
		{Error{Provider: "openai", Op: opVerify, Status: 401, Type: "invalid_api_key", Message: "Incorrect API key provided: [REDACTED]."}, "openai: verify key: 401 invalid_api_key: Incorrect API key provided: [REDACTED].", true},
		{Error{Provider: "anthropic", Op: opVerify, Status: 529, Type: "overloaded_error", Message: "Overloaded"}, "anthropic: verify key: 529 overloaded_error: Overloaded", false},
		{Error{Provider: "openai", Op: opFind, Status: 429, Type: "rate_limit_exceeded"}, "openai: find key id: 429 rate_limit_exceeded", false},
		{Error{Provider: "openai", Op: opFind, Status: 429, Type: "insufficient_quota"}, "openai: find key id: 429 insufficient_quota", true},
		{Error{Provider: "openai", Op: opRevoke, Status: 500, Message: "Internal Server Error"}, "openai: revoke key: 500: Internal Server Error", false},
		{Error{Provider: "anthropic", Op: opRevoke, Status: 403, Type: "permission_error"}, "anthropic: revoke key: 403 permission_error", true},
		{Error{Provider: "anthropic", Op: opRevoke, Status: 404, Type: "not_found_error"}, "anthropic: revoke key: 404 not_found_error", true},
		{Error{Provider: "anthropic", Op: opRevoke, Status: 400, Type: "invalid_request_error"}, "anthropic: revoke key: 400 invalid_request_error", true},
		{Error{Provider: "anthropic", Op: opRevoke, Status: 422}, "anthropic: revoke key: 422", true},
		{Error{Provider: "anthropic", Op: opRevoke, Status: 409, Type: "conflict_error"}, "anthropic: revoke key: 409 conflict_error", false},
		{Error{Provider: "openai", Op: opVerify, Type: TypeNetwork, Message: "dial tcp: refused"}, "openai: verify key: network_error: dial tcp: refused", false},
		{Error{Provider: "openai", Op: opFind, Type: TypeNoMatch, Message: "none"}, "openai: find key id: no_matching_key: none", true},
	} {
		if got := tc.e.Error(); got != tc.text {
			t.Errorf("Error() = %q, want %q", got, tc.text)
		}
		if got := tc.e.Permanent(); got != tc.permanent {
			t.Errorf("%s: Permanent() = %v, want %v", tc.text, got, tc.permanent)
		}
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", maxMessage)
	got := clip(long)
	if len(got) > maxMessage+len("…") || !strings.HasSuffix(got, "…") {
		t.Fatalf("clip left %d bytes", len(got))
	}
	if strings.ContainsRune(strings.TrimSuffix(got, "…"), '\uFFFD') {
		t.Fatal("clip cut a rune")
	}
}
