-- Unique text: run with -M simple, where pgbench writes each variable into
-- the statement as a literal, so (with two random literals drawn from large
-- ranges) practically no statement text repeats. A cache keyed by exact text
-- cannot help; one keyed by the text without its literals (Tombstone's
-- template cache) can, since only literals vary.
\set aid random(1, :naccounts)
\set floor random(-2000000000, -1000000000)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid AND abalance > :floor;
