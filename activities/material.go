package activities

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"

	"rotator/catalog"
	"rotator/pki"
	"rotator/postgres"
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

// newMaterial generates the data of a new Secret version for the plan's kind.
func newMaterial(p Plan) (map[string][]byte, error) {
	switch p.Kind {
	case catalog.KindJWT:
		key, err := newJWTKey(p.JWTBytes)
		if err != nil {
			return nil, err
		}
		return map[string][]byte{p.Key: key}, nil
	case catalog.KindPostgres:
		if p.Postgres == nil {
			return nil, badInput("postgres target %s has no database plan: preflight did not run", p.Target)
		}
		pw, err := postgres.NewPassword()
		if err != nil {
			return nil, err
		}
		c := postgres.Credentials{Username: p.Postgres.Username, Password: pw}
		data := map[string][]byte{postgres.UsernameKey: []byte(c.Username), postgres.PasswordKey: []byte(pw)}
		if p.Postgres.DSNKey != "" {
			srv := p.Postgres.Server
			srv.SSLMode = cmp.Or(p.Postgres.DSNSSLMode, srv.SSLMode)
			data[p.Postgres.DSNKey] = []byte(postgres.DSN(srv, c))
		}
		return data, nil
	}
	return nil, badInput("kind %s has no stage step in this worker", p.Kind)
}

// material is the data of the new version: generated for jwt and
// postgres, issued by Vault's PKI for tls, the engineer's staged keys for
// apikeys.
func (k *Kube) material(ctx context.Context, p Plan) (map[string][]byte, error) {
	switch p.Kind {
	case catalog.KindTLS:
		return k.issue(ctx, p)
	case catalog.KindAPIKeys:
	default:
		return newMaterial(p)
	}
	t, err := k.Catalog.Target(p.Target)
	if err != nil {
		return nil, badInput("target: %v", err)
	}
	return k.staging().read(ctx, p, t)
}

// writtenKeys are the data keys a new version of the target gets from the
// rotation itself; rotatedKeys adds those of the current version it must
// not carry over (a dual-key Secret's previous key is replaced, never
// kept). Every other key of the current version is carried over as it is.
func writtenKeys(t catalog.Target, emergency bool) []string {
	switch t.Kind {
	case catalog.KindJWT:
		if t.JWT != nil && t.JWT.DualKey && !emergency {
			return []string{t.Key, PreviousKey}
		}
		return []string{t.Key}
	case catalog.KindPostgres:
		keys := []string{postgres.UsernameKey, postgres.PasswordKey}
		if t.Postgres != nil && t.Postgres.DSNKey != "" {
			keys = append(keys, t.Postgres.DSNKey)
		}
		return keys
	case catalog.KindAPIKeys:
		var keys []string
		if t.APIKeys != nil {
			for _, p := range t.APIKeys.Providers {
				keys = append(keys, p.Key)
			}
		}
		return keys
	case catalog.KindTLS:
		return []string{pki.DataCert, pki.DataKey, pki.DataCA}
	}
	return nil
}

func rotatedKeys(t catalog.Target) []string {
	keys := writtenKeys(t, false)
	if t.Kind == catalog.KindJWT && !slices.Contains(keys, PreviousKey) {
		keys = append(keys, PreviousKey)
	}
	return keys
}

// secretKeys are the keys among rotatedKeys whose values are secret: a
// carried key that embeds one of them would keep the old secret alive.
func secretKeys(t catalog.Target) []string {
	switch t.Kind {
	case catalog.KindPostgres:
		return []string{postgres.PasswordKey}
	case catalog.KindTLS:
		return []string{pki.DataKey}
	}
	return rotatedKeys(t)
}

// carried is the part of the current version's data a new version keeps.
func carried(t catalog.Target, current map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(current))
	for k, v := range current {
		if !slices.Contains(rotatedKeys(t), k) {
			out[k] = v
		}
	}
	return out
}
