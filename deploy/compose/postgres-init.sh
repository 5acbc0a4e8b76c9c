#!/bin/sh
# Seeds the compose PostgreSQL the way devstack seeds its own (roles
# orchestrator and rotator_admin, database orchestrator), plus the role
# Temporal's schema job and server log in with. The official image runs this
# once, on an empty data directory; the passwords come from the environment
# (deploy/compose/mkenv), never from a file in the repository.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
	-v orchestrator_pw="$ORCHESTRATOR_DB_PASSWORD" \
	-v admin_pw="$ROTATOR_ADMIN_DB_PASSWORD" \
	-v temporal_pw="$TEMPORAL_DB_PASSWORD" <<'SQL'
SET password_encryption = 'scram-sha-256';
-- The application's login; rotator rotates its password.
CREATE ROLE orchestrator LOGIN PASSWORD :'orchestrator_pw';
-- rotator's admin credential for the alternating-users strategy: CREATEROLE,
-- and ADMIN OPTION on orchestrator (PostgreSQL 16+ needs it to grant the role).
CREATE ROLE rotator_admin LOGIN CREATEROLE PASSWORD :'admin_pw';
GRANT orchestrator TO rotator_admin WITH ADMIN OPTION;
CREATE DATABASE orchestrator OWNER orchestrator;
-- Temporal's persistence: temporal-sql-tool creates its two databases.
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_pw';
SQL
