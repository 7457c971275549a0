-- `saga prune` deletes the whole log (saga row, events, take-overs) of terminal sagas that ended
-- before a cutoff, in batches. Each batch records here, in its own transaction, the cutoff it
-- used and how many sagas it removed, so `saga verify` can tell a business row whose saga was
-- pruned (its log is gone on purpose) from one that never had a saga.
CREATE TABLE saga_prunes (
  prune_id     INTEGER PRIMARY KEY,
  at           INTEGER NOT NULL,
  ended_before INTEGER NOT NULL,
  sagas        INTEGER NOT NULL
);
-- Prune walks terminal sagas oldest-ended first.
CREATE INDEX sagas_ended ON sagas (ended_at) WHERE ended_at IS NOT NULL;
