// Package postgres holds what rotator does to a PostgreSQL server: compute
// SCRAM-SHA-256 verifiers so that a password never travels to the server,
// connect with credentials read from Secrets, set and lock role passwords,
// and set up the two login roles of the alternating-users strategy.
package postgres

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Iterations is PostgreSQL's default scram_iterations.
const Iterations = 4096

const saltLen = 16

// Verifier returns the SCRAM-SHA-256 verifier of a password with a fresh
// random salt, in the form PostgreSQL stores in pg_authid.rolpassword:
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> (RFC 5802,
// RFC 7677). Sending it in ALTER ROLE sets the password without the
// password itself reaching the server, its logs or pg_stat_activity.
func Verifier(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("generate salt: %w", err)
	}
	return verifierWith(password, salt, Iterations)
}

func verifierWith(password string, salt []byte, iterations int) (string, error) {
	// PostgreSQL runs SASLprep on the password first; for the printable
	// ASCII passwords rotator generates it is the identity, so anything
	// else is refused rather than hashed differently from the server.
	for _, r := range password {
		if r < 0x20 || r > 0x7e {
			return "", fmt.Errorf("password has a character outside printable ASCII, which needs SASLprep")
		}
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("derive key: %w", err)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func mac(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

var verifierPattern = regexp.MustCompile(`^SCRAM-SHA-256\$([0-9]+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$`)

// Matches reports whether a stored verifier was computed from the password.
func Matches(verifier, password string) bool {
	m := verifierPattern.FindStringSubmatch(verifier)
	if m == nil {
		return false
	}
	iterations, err := strconv.Atoi(m[1])
	if err != nil || iterations <= 0 {
		return false
	}
	salt, err := base64.StdEncoding.DecodeString(m[2])
	if err != nil {
		return false
	}
	again, err := verifierWith(password, salt, iterations)
	return err == nil && hmac.Equal([]byte(again), []byte(verifier))
}

// literal quotes a verifier as an SQL string literal. ALTER ROLE takes no
// bind parameters, so the verifier is checked against its grammar (base64
// and separators only) before it is spliced in.
func literal(verifier string) (string, error) {
	if !verifierPattern.MatchString(verifier) {
		return "", fmt.Errorf("not a SCRAM-SHA-256 verifier")
	}
	return "'" + strings.ReplaceAll(verifier, "'", "''") + "'", nil
}
