-- Unique shape, sent straight to PostgreSQL, filtered by hand.
\set aid random(1, :naccounts)
\set n random(1, 1000000000)
SELECT abalance AS balance_:n FROM pgbench_accounts WHERE aid = :aid AND deleted_at IS NULL;
