#!/bin/sh
# Creates the Temporal namespace and the Keyword search attributes rotator's
# workflows set (RotationTarget, RotationKind, RotationStep), as devstack does;
# idempotent.
set -eu
ns=${TEMPORAL_NAMESPACE:-default}
until temporal operator cluster health >/dev/null 2>&1; do sleep 2; done
temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1 ||
	temporal operator namespace create --namespace "$ns" --retention 30d
for attr in RotationTarget RotationKind RotationStep; do
	if ! temporal operator search-attribute list --namespace "$ns" | grep -qw "$attr"; then
		temporal operator search-attribute create --namespace "$ns" --name "$attr" --type Keyword
	fi
done
echo "namespace $ns and its search attributes are ready"
