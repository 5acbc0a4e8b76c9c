package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"rotator/catalog"
	"rotator/clients"
	"rotator/postgres"
)

func (a *app) postgresCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "postgres",
		Short: "Prepare PostgreSQL targets",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "setup TARGET",
		Short: "Create the two login roles of an alternating-users target (idempotent)",
		Long: "setup connects with the target's adminSecret and makes sure both login roles of\n" +
			"postgres.users exist (NOLOGIN until a rotation gives one a password), are members of\n" +
			"postgres.role, and run their sessions as postgres.role, so objects they create belong\n" +
			"to the owner. Running it again changes nothing.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, t, err := a.target(args[0])
			if err != nil {
				return err
			}
			if t.Kind != catalog.KindPostgres || t.Postgres.Strategy != catalog.StrategyAlternating {
				return fmt.Errorf("target %s: postgres.strategy: setup is for %s targets only", t.Name, catalog.StrategyAlternating)
			}
			did, err := setupAlternating(cmd.Context(), t)
			if err != nil {
				return err
			}
			if len(did) == 0 {
				fmt.Fprintf(a.out, "%s: roles %s and %s are already set up; nothing changed\n", t.Name, t.Postgres.Users[0], t.Postgres.Users[1])
			}
			for _, d := range did {
				fmt.Fprintf(a.out, "%s: %s\n", t.Name, d)
			}
			return nil
		},
	})
	return cmd
}

func setupAlternating(ctx context.Context, t catalog.Target) ([]string, error) {
	kube, err := clients.Kube(5, 10)
	if err != nil {
		return nil, err
	}
	p := t.Postgres
	admin, err := postgres.CredentialsFromSecret(ctx, kube, p.AdminSecret.Namespace, p.AdminSecret.Name)
	if err != nil {
		return nil, fmt.Errorf("target %s: postgres.adminSecret: %w", t.Name, err)
	}
	conn, err := postgres.Connect(ctx, postgres.Server{Host: p.Host, Port: p.Port, Database: p.Database, SSLMode: p.SSLMode}, admin)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	return postgres.SetupAlternating(ctx, conn, p.Role, [2]string{p.Users[0], p.Users[1]})
}
