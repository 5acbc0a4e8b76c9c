#!/usr/bin/env bash
# Install what `make test` and `make demo` need and this machine lacks, on
# Debian (or Ubuntu): only the missing packages, with apt-get, through sudo
# when not root. Run by the Makefile's deps target and so by .ci/run; safe to
# run again: with everything present it installs nothing and says so.
set -euo pipefail

missing=()
# need PACKAGE... when CHECK fails: CHECK is a command that succeeds when
# what the packages provide is already here.
need() {
	local check=$1
	shift
	if ! eval "$check" >/dev/null 2>&1; then
		missing+=("$@")
	fi
}

# devstack runs Debian's PostgreSQL server from /usr/lib/postgresql/<v>/bin
# (with psql, which bench uses to count failed logins).
need 'ls /usr/lib/postgresql/*/bin/postgres && command -v psql' postgresql
# The demo makes its sample certificate with openssl.
need 'command -v openssl' openssl
# The Web UI test (e2e/ui_test.go) drives a headless chromium; fonts for its screenshots.
need 'command -v chromium || command -v chromium-browser || command -v google-chrome' chromium
need 'dpkg-query -W -f="\${Status}" fonts-dejavu-core | grep -q "ok installed"' fonts-dejavu-core
# The Redis ACL tests (redisacl/) run a redis-server of their own.
need 'command -v redis-server' redis-server
# make lint lists the Go files with git.
need 'command -v git' git

# Go is not taken from apt: Debian's is older than the module's go line.
if ! command -v go >/dev/null 2>&1; then
	echo "scripts/deps.sh: go is not on PATH: install Go $(sed -n 's/^go //p' "$(dirname "$0")/../go.mod") from https://go.dev/dl/ and add its bin/ to PATH" >&2
	exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
	echo "scripts/deps.sh: nothing missing (postgresql, openssl, chromium, fonts-dejavu-core, redis-server, git, go)"
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1 || [ ! -r /etc/debian_version ]; then
	echo "scripts/deps.sh: missing ${missing[*]}, and this is not a Debian machine (no apt-get or /etc/debian_version): install them with your package manager, then run make again" >&2
	exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "scripts/deps.sh: missing ${missing[*]}; not root and no sudo: run as root: apt-get install --no-install-recommends ${missing[*]}" >&2
		exit 1
	fi
	sudo=(sudo)
fi

echo "scripts/deps.sh: installing ${missing[*]} with apt-get${sudo:+ (through sudo)}"
if [[ " ${missing[*]} " == *" postgresql "* ]]; then
	# devstack runs its own PostgreSQL on 5432: Debian's default cluster must
	# not take the port, so the package creates none.
	"${sudo[@]}" mkdir -p /etc/postgresql-common
	echo 'create_main_cluster = false' | "${sudo[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "scripts/deps.sh: installed ${missing[*]}"
