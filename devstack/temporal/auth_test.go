package temporal

import (
	"crypto/x509/pkix"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/server/common/authorization"
)

func TestAPIKeyClaimMapper(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("# comment\n\nkey-one\n  key-two  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := loadAPIKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	m := &apiKeyClaimMapper{keys: keys, log: slog.New(slog.DiscardHandler)}
	client := &pkix.Name{CommonName: "rotator"}
	for name, tc := range map[string]struct {
		ai    authorization.AuthInfo
		admin bool
	}{
		"first key":                {authorization.AuthInfo{AuthToken: "Bearer key-one", TLSSubject: client}, true},
		"second key, trimmed":      {authorization.AuthInfo{AuthToken: "Bearer key-two"}, true},
		"system worker, no key":    {authorization.AuthInfo{TLSSubject: &pkix.Name{CommonName: SystemWorkerName}}, true},
		"client cert, no key":      {authorization.AuthInfo{TLSSubject: client}, false},
		"wrong key":                {authorization.AuthInfo{AuthToken: "Bearer key-three", TLSSubject: client}, false},
		"key without Bearer":       {authorization.AuthInfo{AuthToken: "key-one"}, false},
		"comment line is no key":   {authorization.AuthInfo{AuthToken: "Bearer # comment"}, false},
		"a key's prefix is no key": {authorization.AuthInfo{AuthToken: "Bearer key-on"}, false},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := m.GetClaims(&tc.ai)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.System == authorization.RoleAdmin; got != tc.admin {
				t.Fatalf("admin = %v, want %v (claims %+v)", got, tc.admin, c)
			}
		})
	}

	// Without a key file, a verified client certificate is enough.
	m = &apiKeyClaimMapper{log: slog.New(slog.DiscardHandler)}
	if c, _ := m.GetClaims(&authorization.AuthInfo{TLSSubject: client}); c.System != authorization.RoleAdmin {
		t.Errorf("mTLS without keys: %+v", c)
	}
	if c, _ := m.GetClaims(&authorization.AuthInfo{AuthToken: "Bearer x"}); c.System != authorization.RoleUndefined {
		t.Errorf("no certificate, no key file: %+v", c)
	}
}

func TestLoadAPIKeysRefusesAnEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("# only a comment\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadAPIKeys(path); err == nil || !strings.Contains(err.Error(), "holds no key") {
		t.Fatalf("err = %v", err)
	}
}

func TestOptionsRefuseAPIKeysWithoutTLS(t *testing.T) {
	_, _, err := Options{DBFile: "x.db", APIKeysFile: "keys"}.normalize()
	if err == nil || !strings.Contains(err.Error(), "needs Options.TLS") {
		t.Fatalf("err = %v", err)
	}
	_, _, err = Options{DBFile: "x.db", TLS: &TLS{CertFile: "c"}}.normalize()
	if err == nil || !strings.Contains(err.Error(), "Options.TLS needs") {
		t.Fatalf("err = %v", err)
	}
}
