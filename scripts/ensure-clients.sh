#!/usr/bin/env bash
# Makes sure the clients of the client matrix (internal/clients, make
# test-clients) are on this machine: Debian's Python and Ruby libraries,
# psql and expect (psql's tab completion needs a terminal), and the Node.js
# packages pinned by internal/clients/testdata/package-lock.json.
# As root on Debian/Ubuntu it installs what is missing; anywhere else, or
# when an install fails, it stops saying what to install. The matrix never
# skips a client: a missing one fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian package -> a command that succeeds when it is usable. The Debian
# interpreters by full path: a pyenv or rbenv build first on PATH does not
# see Debian's libraries.
declare -A checks=(
  [python3-psycopg2]="/usr/bin/python3 -c 'import psycopg2'"
  [python3-django]="/usr/bin/python3 -c 'import django'"
  [python3-sqlalchemy]="/usr/bin/python3 -c 'import sqlalchemy'"
  [ruby-activerecord]="/usr/bin/ruby -e 'require \"active_record\"'"
  [ruby-pg]="/usr/bin/ruby -e 'require \"pg\"'"
  [postgresql-client]="command -v psql"
  [expect]="command -v expect"
  [nodejs]="command -v node"
  [npm]="command -v npm"
)
missing=()
for pkg in "${!checks[@]}"; do
  if ! PYTHONNOUSERSITE=1 bash -c "${checks[$pkg]}" >/dev/null 2>&1; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing the client matrix's Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    if ! apt-get install -y -qq "${missing[@]}" >/dev/null; then
      echo "apt-get install ${missing[*]} failed: the client matrix cannot run without them" >&2
      exit 1
    fi
  else
    echo "the client matrix needs these Debian packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

# npm ci only when node_modules is missing or older than the lock file:
# npm writes node_modules/.package-lock.json after each install.
dir=internal/clients/testdata
if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
  echo "installing the client matrix's Node.js packages (npm ci in $dir)..." >&2
  if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
    echo "npm ci in $dir failed: the Node.js clients of the matrix cannot run; check that the npm registry is reachable" >&2
    exit 1
  fi
fi
