#!/bin/sh
# Creates or migrates Temporal's schemas in PostgreSQL (temporalio/admin-tools);
# idempotent, so it runs on every `docker compose up`.
set -eu
for db in temporal temporal_visibility; do
	case $db in temporal) dir=temporal ;; *) dir=visibility ;; esac
	temporal-sql-tool --plugin postgres12 --ep postgres -p 5432 -u temporal --db "$db" create 2>/dev/null || true
	temporal-sql-tool --plugin postgres12 --ep postgres -p 5432 -u temporal --db "$db" setup-schema -v 0.0 2>/dev/null || true
	temporal-sql-tool --plugin postgres12 --ep postgres -p 5432 -u temporal --db "$db" \
		update-schema -d "/etc/temporal/schema/postgresql/v12/$dir/versioned"
done
echo "Temporal schemas are up to date"
