-- The demo schema, used by docker compose (run by the postgres image on
-- first start, in database "demo") and by `make demo` (cmd/tombstone-demo
-- runs it in its throwaway cluster). Plain SQL without psql meta-commands,
-- so it can be sent as one simple-protocol query.
--
-- customers and contacts are soft-delete tables in tombstone.yaml; orders
-- is not, so a DELETE there really removes rows.

-- The application's role: not privileged, so Tombstone rewrites its
-- statements. The DO block keeps the script re-runnable on a server where
-- the role already exists.
DO $$
BEGIN
  CREATE ROLE app LOGIN PASSWORD 'app';
EXCEPTION WHEN duplicate_object THEN
  RAISE NOTICE 'role app already exists, keeping it';
END
$$;

CREATE TABLE customers (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name       text NOT NULL,
  email      text NOT NULL,
  deleted_at timestamptz
);
-- An email may be reused once its customer is deleted: uniqueness applies
-- to live rows only.
CREATE UNIQUE INDEX customers_email_live ON customers (email) WHERE deleted_at IS NULL;

CREATE TABLE contacts (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES customers (id),
  name        text NOT NULL,
  email       text NOT NULL,
  deleted_at  timestamptz,
  deleted_by  text
);
CREATE INDEX contacts_customer_live ON contacts (customer_id) WHERE deleted_at IS NULL;

CREATE TABLE orders (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES customers (id),
  total       numeric(10, 2) NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO customers (name, email) VALUES
  ('Acme Corp', 'billing@acme.example'),
  ('Globex', 'accounts@globex.example'),
  ('Initech', 'finance@initech.example');

INSERT INTO contacts (customer_id, name, email) VALUES
  (1, 'Ada Lovelace', 'ada@acme.example'),
  (1, 'Charles Babbage', 'charles@acme.example'),
  (2, 'Grace Hopper', 'grace@globex.example'),
  (2, 'Alan Turing', 'alan@globex.example'),
  (3, 'Edsger Dijkstra', 'edsger@initech.example');

-- One contact deleted before the demo starts: the app never sees it.
UPDATE contacts SET deleted_at = now() - interval '30 days', deleted_by = 'postgres'
 WHERE name = 'Alan Turing';

INSERT INTO orders (customer_id, total) VALUES (1, 120.00), (1, 75.50), (2, 300.00), (3, 42.00);

GRANT SELECT, INSERT, UPDATE, DELETE ON customers, contacts, orders TO app;
