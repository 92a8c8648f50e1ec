-- Unique shape: run with -M simple. The column alias takes a random number,
-- so every statement differs in an identifier, not only in literals, and no
-- cache (exact text or text without literals) can help: each statement is
-- parsed and rewritten cold, which is what issue 5's "no cache can help"
-- asks to measure.
\set aid random(1, :naccounts)
\set n random(1, 1000000000)
SELECT abalance AS balance_:n FROM pgbench_accounts WHERE aid = :aid;
