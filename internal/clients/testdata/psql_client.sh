#!/usr/bin/env bash
# psql through Tombstone: a session of SQL and meta-commands (\d, \dt,
# \copy, PREPARE/EXECUTE, \; multi-statement) run through Tombstone and
# directly against the twin whose deletes are real must print the same;
# tab completion is driven in a terminal by expect.
set -euo pipefail
echo "version: psql $(psql --version | sed 's/^psql (PostgreSQL) //')"
echo "version: expect $(expect -v | sed 's/^expect version //')"
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

psql -X -d "$TS_SOFT_URL" -f psql_session.sql >"$tmp/soft" 2>&1 || fail "psql session through Tombstone: $(cat "$tmp/soft")"
echo "ok: soft: psql session ran"
psql -X -d "$TS_REAL_URL" -f psql_session.sql >"$tmp/real" 2>&1 || fail "psql session direct: $(cat "$tmp/real")"
echo "ok: real: psql session ran"
if ! diff -u "$tmp/real" "$tmp/soft" >"$tmp/diff"; then
  fail "psql printed differently through Tombstone (+) and direct (-):
$(cat "$tmp/diff")"
fi
echo "ok: through Tombstone and direct psql print the same $(wc -l <"$tmp/soft") lines"

# What they both printed must also be what a delete prints.
want() { grep -qxF -- "$1" "$tmp/soft" || fail "psql did not print '$1'; it printed:
$(cat "$tmp/soft")"; echo "ok: printed '$1'"; }
want "DELETE 1"
want "DELETE 0"
want "DELETE 3"
want "DELETE 2"
want "(0 rows)"
want "ROLLBACK"
want "COPY 1"
want "Referenced by:"
want "8	book8"
grep -q '^1	book1$' "$tmp/soft" && fail "\\copy printed book1, which was deleted"
echo "ok: \\copy leaves deleted rows out"

on_disk=$(psql -X -At -d "$TS_ADMIN_SOFT_URL" -c "SELECT string_agg(id || ':' || (deleted_at IS NOT NULL), ',' ORDER BY id) FROM books WHERE id <= 3")
[ "$on_disk" = "1:true,2:true,3:true" ] || fail "books 1-3 must be on disk with deleted_at set (cascade of author 1); on disk: $on_disk"
echo "ok: soft: books 1-3 kept on disk with deleted_at set"

for side in SOFT REAL; do
  md5="TS_${side}_MD5_URL"
  out=$(psql -X -d "${!md5}" -c "DELETE FROM books WHERE id = 13" 2>&1) || fail "MD5 login ($side): $out"
  [ "$out" = "DELETE 1" ] || fail "MD5 login ($side): DELETE printed $out"
  echo "ok: ${side,,}: MD5 login, DELETE 1"
done

for side in SOFT REAL; do
  url="TS_${side}_URL"
  TERM=xterm expect psql_complete.exp "${!url}" >"$tmp/complete" 2>&1 || fail "tab completion ($side): $(tr -d '\r' <"$tmp/complete")"
  grep '^ok: ' "$tmp/complete" | tr -d '\r' | sed "s/^ok: /ok: ${side,,}: /"
done
