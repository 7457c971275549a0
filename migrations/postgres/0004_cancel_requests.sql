-- A cancel is a durable request on the saga's row (who asked, and when), recorded before the
-- cancel command answers. The owner reads it at its next decision point (before a step, before a
-- retry, at the commit that would complete the saga) and rolls the saga back; a recoverer that
-- takes over a saga with a cancel request drives it backward. Set only while the saga is
-- `running`: a saga that completed first refuses the cancel, so exactly one of the two wins.
ALTER TABLE sagas ADD COLUMN cancel_requested_at BIGINT;
ALTER TABLE sagas ADD COLUMN cancel_requested_by TEXT;
