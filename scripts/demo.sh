#!/usr/bin/env bash
# demo.sh runs the demo on a devstack that is already up (make demo brings it
# up first): it (re)starts the worker in the background and rotates the
# sample orchestrator's JWT secret into its grace period.
#   scripts/demo.sh        start the worker, start or show the rotation
#   scripts/demo.sh down   stop the worker
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${STATE:-.devstack}
pidfile=$STATE/pids/worker.pid
log=$STATE/logs/worker.log
target=orchestrator-jwt

stop_worker() {
	[ -f "$pidfile" ] || return 0
	local pid; pid=$(cat "$pidfile")
	if kill -0 "$pid" 2>/dev/null && grep -q 'bin/worker' "/proc/$pid/cmdline" 2>/dev/null; then
		kill -TERM "$pid"
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
		kill -KILL "$pid" 2>/dev/null || true
		echo "worker stopped (pid $pid)"
	fi
	rm -f "$pidfile"
}

if [ "${1:-}" = down ]; then
	stop_worker
	exit 0
fi

# shellcheck disable=SC1091
source "$STATE/env"
mkdir -p "$STATE/pids" "$STATE/logs"
# Restart the worker so it runs the code just built; a rotation in flight
# carries on, since Temporal holds its state.
stop_worker
setsid bin/worker --catalog rotator.yaml >>"$log" 2>&1 </dev/null &
echo $! >"$pidfile"
echo "worker started (pid $(cat "$pidfile"), log $log)"

# rotate TARGET: start a rotation unless one is running, then wait for grace.
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
	bin/starter wait "$1" --step grace --timeout 5m
	echo
	bin/starter status "$1"
	echo
}

rotate "$target"
# The database target switches between two login roles; setup creates them once.
bin/starter postgres setup orchestrator-db
rotate orchestrator-db

cat <<MSG

Both rotations are in their grace period: the sample Deployment runs on the new
JWT Secret and logs in to PostgreSQL as a new role, while the old Secrets (and the
old role's password) stay valid until the grace period ends or you decide.

  Temporal Web UI:  $TEMPORAL_UI/namespaces/default/workflows?query=RotationTarget%3D%22$target%22
                    (open the workflow: its steps are activities, the "status" query is under
                    Queries, approve/abort are signals: Send a Signal -> approve -> {"by": "you"})
  Status:           bin/starter status $target      (and orchestrator-db)
  Approve now:      bin/starter approve $target --reason "tokens re-issued"
  Abort (rollback): bin/starter abort orchestrator-db --reason "..."
  The cluster:      source $STATE/env && \$KUBECTL -n llm-orchestrator get deploy,rs,secrets
  Stop everything:  make demo-down
MSG
