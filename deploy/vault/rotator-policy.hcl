# Vault policy of rotator's worker: the KV v2 record of the targets that set
# vault.path (deploy/base/rotator.yaml). `go test ./deploy` checks that it
# covers every call the worker makes for the catalog, and (against the
# devstack's Vault) that a kubernetes login gets exactly these capabilities.

# Versions: write (check-and-set), read, labels in custom_metadata, and the
# rollback of a staged version.
path "secret/data/llm-orchestrator/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/llm-orchestrator/*" {
  capabilities = ["read", "patch"]
}
path "secret/delete/llm-orchestrator/*" {
  capabilities = ["update"]
}
# Keys engineers stage at <path>/staged: the worker reads them and, once
# used, deletes them; it never writes there.
path "secret/data/llm-orchestrator/+/staged" {
  capabilities = ["read"]
}
path "secret/metadata/llm-orchestrator/+/staged" {
  capabilities = ["delete"]
}

# tls targets issue from Vault's PKI engine, one path per role they name.
path "pki/issue/orchestrator" {
  capabilities = ["update"]
}
