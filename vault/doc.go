// Package vault records rotated secrets in HashiCorp Vault's KV version 2
// engine, the system of record for secret material, and connects the worker
// to Vault.
//
// Every rotation stage writes the new material as a new KV version of the
// target's path. The path's custom_metadata carries stage labels that move
// as the rotation moves, like AWS Secrets Manager's AWSPENDING, AWSCURRENT
// and AWSPREVIOUS:
//
//	CURRENT      version the consumers use           e.g. "7"
//	PENDING      version staged by a running rotation "8", absent when none
//	PREVIOUS     version CURRENT replaced             "6", absent when none
//	pending-run  the run that staged PENDING          Temporal run ID
//	target       the catalog target owning the path   "orchestrator-jwt"
//	managed-by   always "rotator"
//
// Label values are decimal version numbers, so `vault kv metadata get`
// shows them as they are and `vault kv get -version=$(...)` reads them.
//
// Data writes use KV v2's real check-and-set (cas_required is set on every
// path rotator writes), so a concurrent writer makes a write fail instead
// of being overwritten. The metadata endpoint has no check-and-set: label
// updates compare, then write. That is safe because each target has one
// writer at a time, the rotation whose Temporal workflow ID is
// rotate/<target>; the comparison catches a stale or abandoned run rather
// than a true race.
//
// Secret values never appear in an error message or a log line of this
// package: errors name paths, versions, labels and run IDs only.
package vault
