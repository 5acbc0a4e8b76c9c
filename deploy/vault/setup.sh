#!/bin/sh
# Lets rotator's worker log in to Vault with its Kubernetes ServiceAccount:
# enables the kubernetes auth method (if needed), points it at the cluster,
# writes the policy rotator-policy.hcl and binds the Vault role to the
# ServiceAccount rotator/rotator. Idempotent. Run it with VAULT_ADDR and a
# token allowed to manage auth methods and policies:
#
#   deploy/vault/setup.sh
#
# Settings, from the environment:
#   KUBERNETES_HOST       the API server as Vault reaches it (default https://kubernetes.default.svc)
#   KUBERNETES_CA_CERT    file holding the API server's CA (default: Vault's pod's own)
#   TOKEN_REVIEWER_JWT    file holding a token of a ServiceAccount bound to the ClusterRole
#                         system:auth-delegator (default: Vault's pod's own token, which the
#                         Vault Helm chart binds). Give one when Vault runs outside the cluster:
#                         rotator's own token (audience vault) cannot review itself, so
#                         Vault outside the cluster needs it.
#   VAULT_AUDIENCE        the audience the worker's projected token carries and the role
#                         requires (default vault, the catalog's vault.auth.audience)
#   VAULT_K8S_MOUNT       where the method is enabled (default kubernetes)
#   ROTATOR_NAMESPACE, ROTATOR_SERVICE_ACCOUNT   the worker's (default rotator, rotator)
#   ROTATOR_VAULT_ROLE, ROTATOR_VAULT_POLICY     names in Vault (default rotator, rotator);
#                         the role is the catalog's vault.auth.role
set -eu
here=$(dirname "$0")
mount=${VAULT_K8S_MOUNT:-kubernetes}
role=${ROTATOR_VAULT_ROLE:-rotator}
policy=${ROTATOR_VAULT_POLICY:-rotator}

if ! vault auth list -format=json | grep -q "\"$mount/\""; then
	vault auth enable -path="$mount" kubernetes
fi
set -- kubernetes_host="${KUBERNETES_HOST:-https://kubernetes.default.svc}"
if [ -n "${KUBERNETES_CA_CERT:-}" ]; then
	set -- "$@" kubernetes_ca_cert=@"$KUBERNETES_CA_CERT"
fi
if [ -n "${TOKEN_REVIEWER_JWT:-}" ]; then
	set -- "$@" token_reviewer_jwt=@"$TOKEN_REVIEWER_JWT"
fi
vault write "auth/$mount/config" "$@"
vault policy write "$policy" "$here/rotator-policy.hcl"
vault write "auth/$mount/role/$role" \
	bound_service_account_names="${ROTATOR_SERVICE_ACCOUNT:-rotator}" \
	bound_service_account_namespaces="${ROTATOR_NAMESPACE:-rotator}" \
	audience="${VAULT_AUDIENCE:-vault}" \
	token_policies="$policy" \
	token_ttl=1h \
	token_max_ttl=24h
