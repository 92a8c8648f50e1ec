-- Unique text, sent straight to PostgreSQL, filtered by hand.
\set aid random(1, :naccounts)
\set floor random(-2000000000, -1000000000)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid AND abalance > :floor AND deleted_at IS NULL;
