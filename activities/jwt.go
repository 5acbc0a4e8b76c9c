package activities

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"rotator/catalog"
)

// jwtMaterial is a random signing key under the target's key; a dual-key
// target also gets the key it replaces as PreviousKey, which StageSecret
// copies from the current version.
func jwtMaterial() kindMaterial {
	return kindMaterial{
		generate: func(_ context.Context, _ *Kube, p Plan) (map[string][]byte, error) {
			key, err := newJWTKey(p.JWTBytes)
			if err != nil {
				return nil, err
			}
			return map[string][]byte{p.Key: key}, nil
		},
		written: func(t catalog.Target, emergency bool) []string {
			if t.JWT != nil && t.JWT.DualKey && !emergency {
				return []string{t.Key, PreviousKey}
			}
			return []string{t.Key}
		},
		// Without dual keys, or in an emergency, the previous key of the
		// current version is the one to get rid of: never carried.
		replaced:      []string{PreviousKey},
		missingKeyFix: jwtMissingKeyFix,
	}
}

// jwtMissingKeyFix is the fix for a consumer that reads PreviousKey from a
// version that will not have it.
func jwtMissingKeyFix(key string, emergency bool) string {
	switch {
	case key == PreviousKey && emergency:
		return "an emergency rotation drops the compromised previous key: mark the reference optional: true"
	case key == PreviousKey:
		return "set jwt.dualKey: true, or mark the reference optional: true"
	}
	return ""
}

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
