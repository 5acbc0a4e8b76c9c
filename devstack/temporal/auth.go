package temporal

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"go.temporal.io/server/common/authorization"
)

// TLS serves the frontend over TLS, and with ClientCAFile over mutual TLS,
// the way a production cluster is run; the server's own clients (its
// system worker, the start-up checks and the UI) present the system
// worker's certificate.
type TLS struct {
	// CertFile and KeyFile are the frontend's certificate and key.
	CertFile, KeyFile string
	// ServerCAFile is the CA of the frontend's certificate, which the
	// server's own clients verify it against.
	ServerCAFile string
	// ServerName is the name the server's own clients expect in the
	// frontend's certificate; default "localhost".
	ServerName string
	// ClientCAFile, when set, makes a client certificate from this CA
	// mandatory (mutual TLS).
	ClientCAFile string
	// SystemWorkerCertFile and SystemWorkerKeyFile are the certificate the
	// server's own clients present; its common name is SystemWorkerName.
	SystemWorkerCertFile, SystemWorkerKeyFile string
}

// SystemWorkerName is the common name of the system worker's certificate:
// the one subject the claim mapper trusts without an API key.
const SystemWorkerName = "temporal-system-worker"

// apiKeyClaimMapper gives admin rights to the server's own system worker, and
// to any other caller only for an API key from the devstack's key file
// (when one is set) or, without a key file, for a verified client
// certificate. It is what a production cluster's authorizer does in
// small: the request reaches the handlers only with the credentials the
// SDK sends, so a test that passes through it shows them sent.
type apiKeyClaimMapper struct {
	// keys holds the SHA-256 of each accepted key, by the key's line
	// number, so the mapper never compares or logs a key itself.
	keys map[[sha256.Size]byte]string
	log  *slog.Logger
}

// loadAPIKeys reads one key per line; blank lines and lines starting with
// # are skipped.
func loadAPIKeys(path string) (map[[sha256.Size]byte]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("temporal: API keys file: %w", err)
	}
	keys := map[[sha256.Size]byte]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		keys[sha256.Sum256([]byte(line))] = fmt.Sprintf("api-key-line-%d", n)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("temporal: API keys file %s holds no key: write one key per line", path)
	}
	return keys, nil
}

func admin(authType, subject string) *authorization.Claims {
	return &authorization.Claims{Subject: subject, AuthType: authType, System: authorization.RoleAdmin}
}

// GetClaims maps a caller to its rights; no rights means the default
// authorizer answers PermissionDenied.
func (m *apiKeyClaimMapper) GetClaims(ai *authorization.AuthInfo) (*authorization.Claims, error) {
	if ai.TLSSubject != nil && ai.TLSSubject.CommonName == SystemWorkerName {
		return admin("tls", SystemWorkerName), nil
	}
	if m.keys != nil {
		token, ok := strings.CutPrefix(ai.AuthToken, "Bearer ")
		if !ok {
			m.log.Warn("request refused: no API key (the Authorization header must be Bearer <key>)")
			return &authorization.Claims{}, nil
		}
		sum := sha256.Sum256([]byte(token))
		for k, name := range m.keys {
			if subtle.ConstantTimeCompare(k[:], sum[:]) == 1 {
				return admin("api-key", name), nil
			}
		}
		m.log.Warn("request refused: an API key that is not in the keys file")
		return &authorization.Claims{}, nil
	}
	if ai.TLSSubject != nil {
		return admin("tls", ai.TLSSubject.CommonName), nil
	}
	return &authorization.Claims{}, nil
}
