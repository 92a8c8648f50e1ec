-- Read-only, sent straight to PostgreSQL, filtered by hand the way an
-- application without Tombstone would have to.
\set aid random(1, :naccounts)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid AND deleted_at IS NULL;
