#!/usr/bin/env bash
# The compose demo's "application": a loop that adds a contact, deletes the
# oldest one and counts what is left, through Tombstone as the
# non-privileged role "app". Every DELETE reports "DELETE 1" while the row
# stays in the table with deleted_at set; connect as postgres to see it.
#
# DATABASE_URL: where to connect (Tombstone). ITERATIONS: how many rounds;
# 0 or unset runs until stopped. INTERVAL: seconds between rounds.
set -euo pipefail
: "${DATABASE_URL:?set DATABASE_URL to Tombstone, e.g. postgres://app:app@tombstone:6432/demo}"
iterations=${ITERATIONS:-0}
interval=${INTERVAL:-5}

until psql "$DATABASE_URL" -Xqc 'SELECT 1' >/dev/null 2>&1; do
  echo "waiting for Tombstone at ${DATABASE_URL%%\?*} ..." >&2
  sleep 1
done

i=0
while [ "$iterations" -eq 0 ] || [ "$i" -lt "$iterations" ]; do
  i=$((i + 1))
  psql "$DATABASE_URL" -X -v ON_ERROR_STOP=1 --echo-queries <<SQL
INSERT INTO contacts (customer_id, name, email) VALUES (1 + $i % 3, 'contact $i', 'contact$i@example.com');
DELETE FROM contacts WHERE id = (SELECT min(id) FROM contacts);
SELECT count(*) AS live_contacts FROM contacts;
SQL
  if [ "$iterations" -eq 0 ] || [ "$i" -lt "$iterations" ]; then sleep "$interval"; fi
done
