package main

import (
	"context"

	"rotator/internal/redistest"
	"rotator/redisacl"
)

// redisBackend is an ACL user of its own on the devstack's Redis, over
// TLS, rotated by adding the new password beside the old.
func redisBackend() loginBackend {
	return loginBackend{
		prepare: func(ctx context.Context, s *dbScenario) (loginSetup, error) {
			pw, err := redistest.AdminPassword()
			if err != nil {
				return loginSetup{}, err
			}
			admin, err := redistest.Connect(ctx, redisacl.Credentials{Username: redistest.AdminUser, Password: pw})
			if err != nil {
				return loginSetup{}, err
			}
			s.cleanups = append(s.cleanups, func(context.Context) { _ = admin.Close() })
			userPW, err := redistest.AddUser(ctx, admin, s.user)
			if err != nil {
				return loginSetup{}, err
			}
			s.cleanups = append(s.cleanups, func(ctx context.Context) { _ = redistest.DeleteUser(ctx, admin, s.user) })
			if err := redistest.AdminSecret(ctx, s.e.kube, s.ns); err != nil {
				return loginSetup{}, err
			}
			return loginSetup{
				first:      map[string]string{"username": s.user, "password": userPW},
				targetYAML: redistest.Target(redistest.Server().Addr, s.user, s.ns, ""),
			}, nil
		},
		login: func(ctx context.Context, data map[string][]byte) error {
			return redistest.CanLogin(ctx, string(data["username"]), string(data["password"]))
		},
	}
}
