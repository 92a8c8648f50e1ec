-- Schema and data the golden cases run against (see pg_test.go). The
-- soft-delete database keeps the rows with deleted_at set; the hard one has
-- them really deleted. No foreign keys: the hard delete must not cascade.
-- Every parent/child pair has a live parent whose only children are
-- deleted (org 3, contact 12 'ivy', contact 6 'fay'): only then does a
-- filter misplaced from ON into WHERE change an outer join's result.
CREATE SCHEMA s1;
CREATE TABLE contacts (id int PRIMARY KEY, name text NOT NULL, org_id int, deleted_at timestamptz);
CREATE TABLE orders (id int PRIMARY KEY, contact_id int, amount int NOT NULL, note text,
                     deleted_at timestamptz, deleted_by text);
CREATE TABLE orgs (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE notes (id int PRIMARY KEY, contact_id int, body text);
CREATE TABLE s1.accounts (id int PRIMARY KEY, owner_id int, balance int NOT NULL, deleted_at timestamptz);
CREATE TABLE public.ledger (id int PRIMARY KEY, account_id int, delta int);
CREATE TABLE archive (id int, name text);

INSERT INTO orgs VALUES (1, 'acme'), (2, 'globex'), (3, 'initech'), (4, 'empty');
INSERT INTO contacts VALUES
  (1, 'ann', 1, NULL), (2, 'bob', 1, NULL), (3, 'cid', 2, now()), (4, 'dee', 2, NULL),
  (5, 'eve', 3, now()), (6, 'fay', NULL, NULL), (7, 'gus', 4, NULL), (8, 'hal', 1, now()),
  (12, 'ivy', 2, NULL);
INSERT INTO orders VALUES
  (1, 1, 10, 'a', NULL, NULL), (2, 1, 20, 'b', now(), 'x'), (3, 2, 30, 'c', NULL, NULL),
  (4, 3, 40, 'd', NULL, NULL), (5, 3, 50, 'e', now(), 'x'), (6, 4, 60, NULL, NULL, NULL),
  (7, 5, 70, 'g', NULL, NULL), (8, 9, 80, 'h', NULL, NULL), (9, NULL, 90, 'i', now(), 'x'),
  (10, 8, 100, 'j', NULL, NULL), (11, 12, 110, 'k', now(), 'x');
INSERT INTO notes VALUES (1, 1, 'n1'), (2, 3, 'n3'), (3, 5, 'n5'), (4, 6, 'n6'), (5, 42, 'n42');
INSERT INTO s1.accounts VALUES (1, 1, 100, NULL), (2, 3, 200, now()), (3, 4, 300, NULL), (4, 8, 400, NULL), (5, 2, 500, now()), (6, 6, 600, now());
INSERT INTO ledger VALUES (1, 1, 5), (2, 2, -5), (3, 4, 7);
