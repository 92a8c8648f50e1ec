-- pgbench's TPC-B-like transaction plus the DELETE of a random history row,
-- sent through Tombstone: the UPDATE and SELECT of pgbench_accounts get the
-- live-rows filter and the DELETE becomes a soft-delete UPDATE.
\set aid random(1, :naccounts)
\set bid random(1, :nbranches)
\set tid random(1, :ntellers)
\set delta random(-5000, 5000)
\set hid random(1, :nhistory)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
DELETE FROM pgbench_history WHERE hid = :hid;
END;
