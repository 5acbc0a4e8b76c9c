#!/usr/bin/env bash
# demo.sh runs the demo on a devstack that is already up (make demo brings it
# up first): it (re)starts the worker and the local OpenAI/Anthropic
# stand-ins in the background, gives the sample orchestrator its API keys, TLS
# certificate and Redis user (demo-only data, so devstack itself stays
# generic), applies the catalog's schedules and rotates one target of each kind
# (jwt, postgres, redis, apikeys, tls) into its grace period.
#   scripts/demo.sh        start the processes, start or show the rotations
#   scripts/demo.sh down   stop the worker and the stand-ins
# No secret value is printed: keys go from files (0600, under $STATE) to
# kubectl and starter on stdin.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${STATE:-.devstack}
fp_dir=$STATE/fakeproviders
ns=llm-orchestrator

# stop NAME BINARY: stop the process in $STATE/pids/NAME.pid if it runs BINARY.
stop() {
	local pidfile=$STATE/pids/$1.pid pid
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if kill -0 "$pid" 2>/dev/null && grep -q "$2" "/proc/$pid/cmdline" 2>/dev/null; then
		kill -TERM "$pid"
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
		kill -KILL "$pid" 2>/dev/null || true
		echo "$1 stopped (pid $pid)"
	fi
	rm -f "$pidfile"
}

# start NAME CMD...: run CMD in the background, logging to $STATE/logs/NAME.log.
start() {
	local name=$1; shift
	setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
	echo $! >"$STATE/pids/$name.pid"
	echo "$name started (pid $!, log $STATE/logs/$name.log)"
}

if [ "${1:-}" = down ]; then
	stop worker bin/worker
	stop fakeproviders bin/fakeproviders
	exit 0
fi

# shellcheck disable=SC1091
source "$STATE/env"
mkdir -p "$STATE/pids" "$STATE/logs"
kc() { "$KUBECTL" "$@"; }
step() { printf '\n== %s\n' "$*"; }

# Restart both so they run the code just built; rotations in flight carry
# on (Temporal holds their state, the stand-ins keep their keys in $fp_dir).
step "processes"
stop worker bin/worker
stop fakeproviders bin/fakeproviders
start fakeproviders bin/fakeproviders serve --dir "$fp_dir"
for _ in $(seq 100); do [ -S "$fp_dir/control.sock" ] && break; sleep 0.1; done
[ -S "$fp_dir/control.sock" ] || { echo "fakeproviders did not start: see $STATE/logs/fakeproviders.log" >&2; exit 1; }
start worker bin/worker --catalog rotator.yaml

# references PREFIX: whether the orchestrator's pod template names a Secret
# starting with PREFIX (the base name or any version of it).
references() {
	local spec
	spec=$(kc -n "$ns" get deploy orchestrator -o jsonpath='{.spec.template.spec}')
	[[ $spec == *"\"$1"* ]]
}

# secret_from_env_file NS NAME FILE: create the Secret from KEY=value lines unless it exists.
secret_from_env_file() {
	if kc -n "$1" get secret "$2" >/dev/null 2>&1; then
		echo "  secret/$2 exists in $1"
	else
		kc -n "$1" create secret generic "$2" --from-env-file="$3" | sed 's/^/  /'
	fi
}

# redis_admin ARGS...: redis-cli as the devstack's Redis admin, over TLS; the
# password goes by the environment, not the command line.
redis_admin() {
	REDISCLI_AUTH=$(cat "$ROTATOR_REDIS_ADMIN_PASSWORD_FILE") redis-cli --tls --cacert "$PGSSLROOTCERT" \
		-h "${ROTATOR_REDIS_ADDR%:*}" -p "${ROTATOR_REDIS_ADDR##*:}" --user rotator_admin --no-auth-warning "$@"
}

step "sample data: API keys, a TLS certificate and a Redis user for the orchestrator"
# The admin keys let rotator revoke old keys through the providers' admin APIs.
secret_from_env_file rotator openai-admin "$fp_dir/openai-admin"
secret_from_env_file rotator anthropic-admin "$fp_dir/anthropic-admin"
patch=() container=
if ! references orchestrator-api-keys; then
	secret_from_env_file "$ns" orchestrator-api-keys "$fp_dir/current-keys"
	patch+=('{"name":"OPENAI_API_KEY","valueFrom":{"secretKeyRef":{"name":"orchestrator-api-keys","key":"openai-api-key"}}}'
		'{"name":"ANTHROPIC_API_KEY","valueFrom":{"secretKeyRef":{"name":"orchestrator-api-keys","key":"anthropic-api-key"}}}')
fi
# rotator's Redis admin login, and the ACL user the orchestrator's cache logs
# in as, with a password set from its SHA-256 (ACL SAVE keeps it).
if ! kc -n rotator get secret rotator-redis-admin >/dev/null 2>&1; then
	kc -n rotator create secret generic rotator-redis-admin --from-literal=username=rotator_admin \
		--from-file=password="$ROTATOR_REDIS_ADMIN_PASSWORD_FILE" | sed 's/^/  /'
fi
if ! references orchestrator-cache-secret; then
	if ! kc -n "$ns" get secret orchestrator-cache-secret >/dev/null 2>&1; then
		pw_file=$(umask 077 && mktemp "$STATE/redis-user.XXXXXX")
		head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$pw_file"
		redis_admin ACL SETUSER orchestrator reset on "#$(sha256sum <"$pw_file" | cut -d' ' -f1)" \
			'~orchestrator:*' +@read +@write +@connection >/dev/null
		redis_admin ACL SAVE >/dev/null
		kc -n "$ns" create secret generic orchestrator-cache-secret --from-literal=username=orchestrator \
			--from-file=password="$pw_file" | sed 's/^/  /'
		rm -f "$pw_file"
	fi
	patch+=('{"name":"REDIS_USERNAME","valueFrom":{"secretKeyRef":{"name":"orchestrator-cache-secret","key":"username"}}}'
		'{"name":"REDIS_PASSWORD","valueFrom":{"secretKeyRef":{"name":"orchestrator-cache-secret","key":"password"}}}')
fi
if ! references orchestrator-tls; then
	if ! kc -n "$ns" get secret orchestrator-tls >/dev/null 2>&1; then
		# The certificate a team made by hand before rotator: it expires in
		# 7 days, inside the target's renewBefore (10 days).
		tmp=$(mktemp -d "$STATE/tls.XXXXXX")
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
			-subj "/CN=orchestrator.llm-orchestrator.svc" \
			-addext "subjectAltName=DNS:orchestrator.llm-orchestrator.svc,DNS:orchestrator.llm-orchestrator.svc.cluster.local" \
			-keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>"$tmp/openssl.log" ||
			{ cat "$tmp/openssl.log" >&2; rm -rf "$tmp"; exit 1; }
		kc -n "$ns" create secret tls orchestrator-tls --cert="$tmp/tls.crt" --key="$tmp/tls.key" | sed 's/^/  /'
		rm -rf "$tmp"
	fi
	kc -n "$ns" get ingress orchestrator >/dev/null 2>&1 || kc create -f - <<-YAML | sed 's/^/  /'
		apiVersion: networking.k8s.io/v1
		kind: Ingress
		metadata: {name: orchestrator, namespace: $ns}
		spec:
		  tls: [{hosts: [orchestrator.llm-orchestrator.svc], secretName: orchestrator-tls}]
		  rules:
		  - host: orchestrator.llm-orchestrator.svc
		    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: orchestrator, port: {number: 443}}}}]}
	YAML
	tls_patch='"volumes":[{"name":"tls","secret":{"secretName":"orchestrator-tls"}}],'
	container='"volumeMounts":[{"name":"tls","mountPath":"/etc/tls","readOnly":true}]'
fi
if [ ${#patch[@]} -gt 0 ] || [ -n "${tls_patch:-}" ]; then
	# One strategic merge patch (lists merge by name), so one rollout.
	if [ ${#patch[@]} -gt 0 ]; then
		container="${container:+$container,}\"env\":[$(IFS=,; echo "${patch[*]}")]"
	fi
	kc -n "$ns" patch deploy orchestrator --type strategic -p \
		"{\"spec\":{\"template\":{\"spec\":{${tls_patch:-}\"containers\":[{\"name\":\"orchestrator\",$container}]}}}}" | sed 's/^/  /'
	kc -n "$ns" rollout status deploy/orchestrator --timeout=3m | tail -1 | sed 's/^/  /'
else
	echo "  the orchestrator already uses its API keys, certificate and Redis user"
fi

step "schedules (one per target on its cadence, and the daily certificate scan)"
bin/starter schedules apply -f rotator.yaml

# rotate TARGET: start a rotation unless one is running.
rotate() {
	local out
	if out=$(bin/starter rotate "$1" --by "${USER:-demo}" 2>&1); then
		echo "$out"
	else
		case "$out" in
		*"already running"*) echo "a rotation of $1 is already running; showing it" ;;
		*) echo "$out" >&2; return 1 ;;
		esac
	fi
}

# into_grace TARGET: wait for the grace period and show the status.
into_grace() {
	bin/starter wait "$1" --step grace --timeout 5m
	bin/starter status "$1"
}

step "jwt: orchestrator-jwt"
rotate orchestrator-jwt
into_grace orchestrator-jwt

step "postgres: orchestrator-db (alternating users)"
# The target switches between two login roles; setup creates them once.
bin/starter postgres setup orchestrator-db
rotate orchestrator-db
into_grace orchestrator-db

step "redis: orchestrator-cache (one ACL user, the new password beside the old)"
rotate orchestrator-cache
into_grace orchestrator-cache

step "apikeys: orchestrator-llm"
rotate orchestrator-llm
# The step it is in (the status query answers once the worker has run the
# rotation's first task).
llm_step=
for _ in $(seq 30); do
	llm_step=$(bin/starter status orchestrator-llm 2>/dev/null | awk '$1 == "step" {print $2; exit}') && [ -n "$llm_step" ] && break
	sleep 1
done
if [ "$llm_step" = awaiting-keys ] || [ "$llm_step" = preflight ]; then
	bin/starter wait orchestrator-llm --step awaiting-keys --timeout 2m
	# What an engineer does in the two consoles: create a key in each. The
	# stand-ins write them to a 0600 file; stage-keys reads it on stdin.
	new_keys=$(bin/fakeproviders mint --dir "$fp_dir")
	bin/starter stage-keys orchestrator-llm --by "${USER:-demo}" <"$new_keys"
	rm -f "$new_keys"
fi
into_grace orchestrator-llm

step "tls: orchestrator-tls (the daily certificate scan renews it 10 days before expiry; the demo does it now)"
rotate orchestrator-tls
into_grace orchestrator-tls

ui=$TEMPORAL_UI/namespaces/default/workflows
# approve and abort record who decided: --by, default $USER.
by=; [ -n "${USER:-}" ] || by=' --by demo'
http_port=${ROTATOR_HTTP_ADDRESS:-:8080}; http_port=${http_port##*:}
q() { printf '%s?query=RotationTarget%%3D%%22%s%%22' "$ui" "$1"; }
cat <<MSG

All five rotations are in their grace period: the orchestrator Deployment runs on
the new JWT Secret, logs in to PostgreSQL as the other role and to Redis with the
new password, uses the new API keys and serves the new certificate (so does its
Ingress). The old Secrets, the old role's and Redis password and the old API keys
stay valid until grace ends or you decide.

  Temporal Web UI   $TEMPORAL_UI
    orchestrator-jwt   $(q orchestrator-jwt)
    orchestrator-db    $(q orchestrator-db)
    orchestrator-cache $(q orchestrator-cache)
    orchestrator-llm   $(q orchestrator-llm)
    orchestrator-tls   $(q orchestrator-tls)
    schedules          $TEMPORAL_UI/namespaces/default/schedules
    (open a workflow: its steps are activities; Queries -> status;
     Send a Signal -> approve -> {"by": "you", "reason": "..."})

  Next, in this directory:
    source $STATE/env
    bin/starter list                                        # the five rotations
    bin/starter status orchestrator-llm                     # step, versions, fingerprints, consumers
    bin/starter approve orchestrator-jwt$by --reason "tokens re-issued"    # end grace, retire the old Secret
    bin/starter approve orchestrator-llm$by --reason "done"    # and revoke the old keys at the providers
    bin/starter abort orchestrator-db$by --reason "try a rollback"         # roll back
    bin/starter schedules list                              # cadences and next runs
    \$KUBECTL -n $ns get deploy,rs,secrets,ingress
  Worker health and metrics: http://127.0.0.1:$http_port/readyz, /metrics
  Logs: $STATE/logs/worker.log, $STATE/logs/fakeproviders.log
  Stop everything: make demo-down
MSG
