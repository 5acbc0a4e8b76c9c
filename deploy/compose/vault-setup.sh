#!/bin/sh
# Seeds the dev-mode Vault like devstack: KV v2 at secret/ (dev mode has it),
# the PKI engine at pki/ with a root CA and the role "devstack" for in-cluster
# Service names and localhost. Dev mode keeps everything in memory, so this
# runs on every `docker compose up`; idempotent.
set -eu
until vault status >/dev/null 2>&1; do sleep 1; done
vault secrets list | grep -q '^pki/' || vault secrets enable -max-lease-ttl=8760h pki
vault list pki/issuers 2>/dev/null | grep -q . ||
	vault write -field=issuer_id pki/root/generate/internal \
		common_name="rotator devstack root CA" issuer_name=devstack-root ttl=8760h
vault write pki/roles/devstack issuer_ref=devstack-root allowed_domains=svc.cluster.local,svc,localhost \
	allow_subdomains=true allow_bare_domains=true allow_localhost=true allow_ip_sans=true max_ttl=720h >/dev/null
echo "Vault: secret/ (KV v2) and pki/ (role devstack) are ready"
