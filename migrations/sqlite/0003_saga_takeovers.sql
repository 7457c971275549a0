-- One row each time a recoverer took a saga over: who took it, from whom, when, why (its owner
-- died, or its lease ran out, or it had none) and in what status, so `saga show` can tell the
-- story of a crashed saga. Written in the transaction that takes the saga over.
CREATE TABLE saga_takeovers (
  takeover_id          INTEGER PRIMARY KEY,
  saga_id              TEXT    NOT NULL REFERENCES sagas (saga_id),
  at                   INTEGER NOT NULL,
  reason               TEXT    NOT NULL CHECK (reason IN ('owner-died', 'lease-expired', 'no-owner')),
  status               TEXT    NOT NULL,
  owner_id             TEXT    NOT NULL,
  owner_host           TEXT,
  owner_pid            INTEGER,
  previous_owner_id    TEXT,
  previous_owner_host  TEXT,
  previous_owner_pid   INTEGER,
  previous_lease_until INTEGER
);
CREATE INDEX saga_takeovers_saga ON saga_takeovers (saga_id, takeover_id);
