package activities

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// newJWTKey returns n random bytes, base64 encoded on one line (openssl
// rand -base64 in the runbook wraps at 64 columns, which puts a newline
// into the key).
func newJWTKey(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(n))
	base64.StdEncoding.Encode(out, b)
	return out, nil
}

// Fingerprint identifies a value without revealing it: the first 12 hex
// digits of its SHA-256, enough to tell versions apart in status output.
func Fingerprint(value []byte) string {
	sum := sha256.Sum256(value)
	return "sha256:" + hex.EncodeToString(sum[:6])
}

func lower(s string) string { return strings.ToLower(s) }
