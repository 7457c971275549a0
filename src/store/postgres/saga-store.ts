import type { SqlWrite } from '../../engine/definition.js';
import type { SagaStore } from '../../engine/store.js';
import { applyBatch, RENEW_LEASE, REQUEST_CANCEL, sagaLogReads, TAKE_OVER_COLUMNS, type Statement, type StatementResult } from '../saga-log.js';
import { postgresDatabase } from './database.js';
import { sagasInFlight, type SagasInFlight, type WriteGroupOptions } from '../group-commit.js';
import type { Pool } from './open.js';
import { pgSql } from './statements.js';
import { pgWriteGroup, type Tx } from './write-group.js';

// Recoverers on several hosts: a row another transaction holds is skipped, not waited for, and
// the update only happens if the saga is still as the recoverer saw it. The take-over's record is
// written by the same statement, so there is one exactly when the saga was taken.
const TAKE_OVER = `WITH claim AS (
    SELECT saga_id FROM sagas
    WHERE saga_id = $8 AND status = $9 AND owner_id IS NOT DISTINCT FROM $10 AND lease_until IS NOT DISTINCT FROM $11
    FOR UPDATE SKIP LOCKED),
  taken AS (
    UPDATE sagas SET owner_id = $1, owner_host = $2, owner_pid = $3, owner_pid_scope = $4, owner_started_at = $5, lease_until = $6, updated_at = $7
    FROM claim WHERE sagas.saga_id = claim.saga_id RETURNING sagas.saga_id)
  INSERT INTO ${TAKE_OVER_COLUMNS}
  SELECT saga_id, $7::bigint, $12::text, $9::text, $1::text, $2::text, $3::bigint, $10::text, $13::text, $14::bigint, $11::bigint FROM taken`;

/**
 * The saga log on PostgreSQL. A `commit` is one transaction on one pooled connection or, with
 * other sagas of this process in flight, a savepoint in one transaction shared with theirs
 * (write-group.ts). `inFlight` counts the sagas this process drives; the payment provider is
 * handed the same counter.
 */
export function postgresSagaStore(
  pool: Pool,
  opts: { now?: () => number; inFlight?: SagasInFlight; group?: WriteGroupOptions } = {},
): SagaStore & { readonly inFlight: SagasInFlight; commits(): number; roundTrips(): number } {
  const now = opts.now ?? Date.now;
  const inFlight = opts.inFlight ?? sagasInFlight();
  const group = pgWriteGroup(pool, inFlight, opts.group);
  // Queries outside the group's transactions (lease renewals, cancels, take-overs).
  let ownRoundTrips = 0;
  const onPool = (text: string, params: readonly unknown[]) => {
    ownRoundTrips += 1;
    return pool.query(text, params as unknown[]);
  };
  const onUnique = (s: Statement) => (err: unknown) => (s.onUniqueViolation !== undefined && (err as { code?: string }).code === '23505' ? s.onUniqueViolation() : err);
  // In a commit, a statement whose result the write path reads (a query, a guarded write) is
  // waited for; any other is deferred: pipelined behind the others, its error surfacing later
  // in the same transaction (write-group.ts). The write path reads a write's count only for its
  // guard (`expectChanges`); it is handed 0 for the others, which it ignores.
  const run = async (tx: Tx, s: Statement): Promise<StatementResult> => {
    const text = pgSql(s.sql);
    if (!s.value && (s as SqlWrite).expectChanges === undefined) {
      tx.defer(text, s.params, onUnique(s));
      return 0;
    }
    try {
      const r = await tx.query(text, s.params);
      return s.value ? Object.values(r.rows[0] ?? {})[0] : (r.rowCount ?? 0);
    } catch (err) {
      throw onUnique(s)(err);
    }
  };
  const runOnPool = async (s: Statement) => (await onPool(pgSql(s.sql), s.params)).rowCount ?? 0;
  return {
    ...sagaLogReads(postgresDatabase(pool, 'postgres')),
    inFlight,
    commits: () => group.commits,
    roundTrips: () => group.roundTrips + ownRoundTrips,
    commit: (batch) =>
      group.submit(async (tx) => {
        const steps = applyBatch(batch, now);
        let next = steps.next();
        while (!next.done) next = steps.next(await run(tx, next.value));
        return next.value;
      }),
    renewLease: async (sagaId, owner, leaseUntil) => (await runOnPool({ sql: RENEW_LEASE, params: [leaseUntil, now(), sagaId, owner.id] })) === 1,
    requestCancel: async (sagaId, request) => (await runOnPool({ sql: REQUEST_CANCEL, params: [request.at, request.by, now(), sagaId] })) === 1,
    takeOver: async (sagaId, expected, owner, leaseUntil, reason) =>
      (await onPool(TAKE_OVER, [owner.id, owner.host, owner.pid, owner.pidScope, owner.startedAt, leaseUntil, now(), sagaId, expected.status, expected.ownerId, expected.leaseUntil, reason, expected.ownerHost, expected.ownerPid])).rowCount === 1,
  };
}
