-- The same transaction sent straight to PostgreSQL with the soft-delete
-- statements written by hand.
\set aid random(1, :naccounts)
\set bid random(1, :nbranches)
\set tid random(1, :ntellers)
\set delta random(-5000, 5000)
\set hid random(1, :nhistory)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid AND deleted_at IS NULL;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid AND deleted_at IS NULL;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
UPDATE pgbench_history SET deleted_at = now() WHERE hid = :hid AND deleted_at IS NULL;
END;
