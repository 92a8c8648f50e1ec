-- Read-only, sent through Tombstone: the proxy adds "AND deleted_at IS NULL".
\set aid random(1, :naccounts)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
