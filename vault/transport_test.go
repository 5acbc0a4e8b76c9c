package vault

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestCheckAddress(t *testing.T) {
	for addr, ok := range map[string]bool{
		"https://vault.vault.svc:8200": true,
		"http://127.0.0.1:8200":        true,
		"http://localhost:8200":        true,
		"http://[::1]:8200":            true,
		"http://vault.vault.svc:8200":  false,
		"http://10.0.0.7:8200":         false,
		"vault:8200":                   false,
	} {
		err := checkAddress(addr)
		if (err == nil) != ok {
			t.Errorf("checkAddress(%q) = %v, want ok %v", addr, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "VAULT_ADDR") {
			t.Errorf("checkAddress(%q): %v does not name VAULT_ADDR", addr, err)
		}
	}
}

func TestCheckAudience(t *testing.T) {
	jwt := func(claims string) string {
		enc := base64.RawURLEncoding.EncodeToString
		return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(claims)) + ".sig"
	}
	for name, tc := range map[string]struct {
		jwt  string
		want string // "" for accepted
	}{
		"list with vault":  {jwt(`{"aud":["vault"]}`), ""},
		"string vault":     {jwt(`{"aud":"vault"}`), ""},
		"several":          {jwt(`{"aud":["https://kubernetes.default.svc","vault"]}`), ""},
		"apiserver only":   {jwt(`{"aud":["https://kubernetes.default.svc.cluster.local","k3s"]}`), `is for audience "https://kubernetes.default.svc.cluster.local,k3s", not "vault"`},
		"no aud":           {jwt(`{"sub":"x"}`), `not "vault"`},
		"not a JWT":        {"opaque-token", "is not a JWT"},
		"payload not JSON": {"a.b.c", "is not a JWT"},
	} {
		t.Run(name, func(t *testing.T) {
			err := checkAudience(tc.jwt, DefaultAudience)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}
