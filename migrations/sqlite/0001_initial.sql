-- Catalog, business tables, the simulated payment provider, and the durable saga log.
-- Times are milliseconds since the epoch (INTEGER). Money is integer cents.

CREATE TABLE products (
  product_id   INTEGER PRIMARY KEY,
  name         TEXT    NOT NULL,
  price_cents  INTEGER NOT NULL CHECK (price_cents > 0),
  -- Units ever put on sale (seed plus restocks): the left side of the stock invariant.
  seeded_stock INTEGER NOT NULL CHECK (seeded_stock >= 0)
);

-- Stock available to sell.
CREATE TABLE inventory (
  product_id INTEGER PRIMARY KEY REFERENCES products (product_id),
  stock      INTEGER NOT NULL CHECK (stock >= 0)
);

CREATE TABLE customers (
  customer_id INTEGER PRIMARY KEY,
  name        TEXT NOT NULL,
  email       TEXT NOT NULL
);

-- Stock taken out of inventory by a saga; released (never deleted) by its compensation.
CREATE TABLE reservations (
  saga_id    TEXT    PRIMARY KEY,
  product_id INTEGER NOT NULL REFERENCES products (product_id),
  qty        INTEGER NOT NULL CHECK (qty > 0),
  status     TEXT    NOT NULL CHECK (status IN ('held', 'released')),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX reservations_product ON reservations (product_id, status);

CREATE TABLE payments (
  payment_id         INTEGER PRIMARY KEY,
  saga_id            TEXT    NOT NULL UNIQUE,
  customer_id        INTEGER NOT NULL,
  amount_cents       INTEGER NOT NULL CHECK (amount_cents > 0),
  provider_charge_id TEXT    NOT NULL,
  status             TEXT    NOT NULL CHECK (status IN ('charged', 'refunded')),
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL
);

CREATE TABLE orders (
  order_id     INTEGER PRIMARY KEY,
  saga_id      TEXT    NOT NULL UNIQUE,
  customer_id  INTEGER NOT NULL,
  product_id   INTEGER NOT NULL,
  qty          INTEGER NOT NULL CHECK (qty > 0),
  amount_cents INTEGER NOT NULL,
  status       TEXT    NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
);

CREATE TABLE shipments (
  shipment_id INTEGER PRIMARY KEY,
  saga_id     TEXT    NOT NULL UNIQUE,
  order_id    INTEGER NOT NULL REFERENCES orders (order_id),
  status      TEXT    NOT NULL CHECK (status IN ('scheduled', 'cancelled')),
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);

-- The simulated payment provider. Conceptually outside our database: it is only ever written
-- in its own transactions, never in one with our tables, exactly as a remote service would be.
CREATE TABLE provider_accounts (
  customer_id           INTEGER PRIMARY KEY,
  opening_balance_cents INTEGER NOT NULL,
  balance_cents         INTEGER NOT NULL CHECK (balance_cents >= 0)
);

-- One row per idempotency key: asking twice with a key returns the first answer.
CREATE TABLE provider_ledger (
  idempotency_key TEXT    PRIMARY KEY,
  kind            TEXT    NOT NULL CHECK (kind IN ('charge', 'refund', 'void')),
  customer_id     INTEGER,
  amount_cents    INTEGER NOT NULL DEFAULT 0,
  -- For refunds and voids: the key of the charge they undo or block.
  charge_key      TEXT,
  created_at      INTEGER NOT NULL
);
-- Refunds and voids are found by the charge they undo (verify, and the provider).
CREATE INDEX provider_ledger_charge ON provider_ledger (charge_key) WHERE charge_key IS NOT NULL;

-- The saga log: one row per saga (its head: status and owner) ...
CREATE TABLE sagas (
  saga_id         TEXT    PRIMARY KEY,
  definition      TEXT    NOT NULL,
  input           TEXT    NOT NULL,
  status          TEXT    NOT NULL CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'stuck')),
  idempotency_key TEXT    UNIQUE,
  request_hash    TEXT,
  owner_id        TEXT,
  owner_host      TEXT,
  owner_pid       INTEGER,
  lease_until     INTEGER,
  failed_step     TEXT,
  error           TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  ended_at        INTEGER
);
CREATE INDEX sagas_created ON sagas (created_at DESC, saga_id);
CREATE INDEX sagas_status_created ON sagas (status, created_at DESC);
-- `list` walks sagas_created backwards; `list --status` and recovery's look-up of unfinished
-- sagas search sagas_status_created.

-- ... and one append-only row per transition of every action and compensation attempt.
CREATE TABLE saga_events (
  event_id        INTEGER PRIMARY KEY,
  saga_id         TEXT    NOT NULL REFERENCES sagas (saga_id),
  step            TEXT    NOT NULL,
  step_index      INTEGER NOT NULL,
  phase           TEXT    NOT NULL CHECK (phase IN ('action', 'compensation')),
  event           TEXT    NOT NULL CHECK (event IN ('started', 'succeeded', 'failed', 'retrying')),
  attempt         INTEGER NOT NULL CHECK (attempt >= 1),
  at              INTEGER NOT NULL,
  duration_ms     REAL,
  error           TEXT,
  error_kind      TEXT CHECK (error_kind IN ('permanent', 'transient', 'timeout')),
  uncertain       INTEGER,
  delay_ms        INTEGER,
  idempotency_key TEXT
);
CREATE INDEX saga_events_saga ON saga_events (saga_id, event_id);

CREATE TRIGGER saga_events_append_only BEFORE UPDATE ON saga_events
BEGIN
  SELECT RAISE(ABORT, 'saga_events is append-only');
END;
