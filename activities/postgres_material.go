package activities

import (
	"cmp"
	"context"
	"fmt"

	"rotator/catalog"
	"rotator/postgres"
)

// postgresMaterial is a new password for the role the plan logs in as,
// with the username, and the DSN when the target keeps one in the Secret
// (it embeds the password, so it must be written, not carried).
func postgresMaterial() kindMaterial {
	return kindMaterial{
		checkPlan: checkPostgres,
		generate: func(_ context.Context, _ *Kube, p Plan) (map[string][]byte, error) {
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
		},
		written: func(t catalog.Target, _ bool) []string {
			keys := []string{postgres.UsernameKey, postgres.PasswordKey}
			if t.Postgres != nil && t.Postgres.DSNKey != "" {
				keys = append(keys, t.Postgres.DSNKey)
			}
			return keys
		},
		// The username is not secret: another key may well contain it.
		secret: []string{postgres.PasswordKey},
		embeddedFix: func(key string) string {
			return fmt.Sprintf("set postgres.dsnKey: %s so that rotator writes it with the new password, or remove the key", key)
		},
	}
}
