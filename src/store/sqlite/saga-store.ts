import type { SagaStore } from '../../engine/store.js';
import { applyBatch, RENEW_LEASE, REQUEST_CANCEL, sagaLogReads, TAKE_OVER_COLUMNS, type Statement, type StatementResult } from '../saga-log.js';
import { whenUnlocked } from './lock-wait.js';
import type { Db } from './open.js';
import { sqliteDatabase } from './database.js';
import { statementCache } from './statements.js';
import { sagasInFlight, type SagasInFlight, type WriteGroupOptions } from '../group-commit.js';
import { writeGroup } from './write-group.js';

// Conditional on the owner and lease the recoverer saw: of two recoverers only one changes the row.
const TAKE_OVER = `UPDATE sagas SET owner_id = ?, owner_host = ?, owner_pid = ?, owner_pid_scope = ?, owner_started_at = ?, lease_until = ?, updated_at = ?
  WHERE saga_id = ? AND status = ? AND owner_id IS ? AND lease_until IS ?`;

const RECORD_TAKE_OVER = `INSERT INTO ${TAKE_OVER_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

/**
 * The saga log on SQLite. A `commit` is one `BEGIN IMMEDIATE` transaction, run synchronously, or,
 * with other sagas of this process in flight, a savepoint in one transaction shared with theirs
 * (write-group.ts). `inFlight` counts the sagas this process drives; the payment provider on the
 * same connection is handed the same counter.
 */
export function sqliteSagaStore(db: Db, opts: { now?: () => number; inFlight?: SagasInFlight; group?: WriteGroupOptions } = {}): SagaStore & { readonly inFlight: SagasInFlight; commits(): number } {
  const now = opts.now ?? Date.now;
  const inFlight = opts.inFlight ?? sagasInFlight();
  const group = writeGroup(db, inFlight, opts.group);
  const stmt = statementCache(db);
  const run = (s: Statement): StatementResult => {
    try {
      if (s.value) return stmt(s.sql).pluck().get(...(s.params as unknown[]));
      return stmt(s.sql).run(...(s.params as unknown[])).changes;
    } catch (err) {
      if (s.onUniqueViolation !== undefined && (err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw s.onUniqueViolation();
      throw err;
    }
  };
  // Runs inside the group's transaction (its own, or a savepoint of a shared one).
  const apply = (batch: Parameters<SagaStore['commit']>[0]) => {
    const steps = applyBatch(batch, now);
    let next = steps.next();
    while (!next.done) next = steps.next(run(next.value));
    return next.value;
  };
  // The take-over and its record, together or not at all.
  const takeOver = db.transaction((...[sagaId, expected, owner, leaseUntil, reason]: Parameters<SagaStore['takeOver']>) => {
    const at = now();
    if (run({ sql: TAKE_OVER, params: [owner.id, owner.host, owner.pid, owner.pidScope, owner.startedAt, leaseUntil, at, sagaId, expected.status, expected.ownerId, expected.leaseUntil] }) !== 1) return false;
    run({ sql: RECORD_TAKE_OVER, params: [sagaId, at, reason, expected.status, owner.id, owner.host, owner.pid, expected.ownerId, expected.ownerHost, expected.ownerPid, expected.leaseUntil] });
    return true;
  });
  return {
    ...sagaLogReads(sqliteDatabase(db, 'sqlite')),
    inFlight,
    commits: () => group.commits,
    commit: (batch) => group.submit(() => apply(batch)),
    renewLease: async (sagaId, owner, leaseUntil) => (await whenUnlocked(db, () => run({ sql: RENEW_LEASE, params: [leaseUntil, now(), sagaId, owner.id] }))) === 1,
    takeOver: (sagaId, expected, owner, leaseUntil, reason) => whenUnlocked(db, () => takeOver.immediate(sagaId, expected, owner, leaseUntil, reason)),
    requestCancel: async (sagaId, request) => (await whenUnlocked(db, () => run({ sql: REQUEST_CANCEL, params: [request.at, request.by, now(), sagaId] }))) === 1,
  };
}
