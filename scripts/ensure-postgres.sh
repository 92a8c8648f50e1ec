#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries (initdb, postgres) and psql are
# on this machine, because the tests and the demo start throwaway clusters.
# On Debian/Ubuntu as root it installs the distribution's postgresql package;
# anywhere else it says in one line what to install.
set -euo pipefail

have_server() {
  if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ]; then return 0; fi
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then return 0; fi
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

if [ -n "${TOMBSTONE_TEST_DSN:-}" ] || { have_server && command -v psql >/dev/null && command -v pgbench >/dev/null; }; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing PostgreSQL from the distribution's packages (needed by tests and demo)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql postgresql-client postgresql-contrib >/dev/null
  # The package may start a cluster of its own; tests never use it.
  exit 0
fi
echo "PostgreSQL server binaries not found: install the postgresql package (initdb, postgres, psql, pgbench), set PG_BINDIR, or set TOMBSTONE_TEST_DSN to a server to test against" >&2
exit 1
