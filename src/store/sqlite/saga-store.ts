import type { SqlWrite } from '../../engine/definition.js';
import { DuplicateSagaKeyError, LostOwnershipError } from '../../engine/errors.js';
import type { Batch, BatchOp, BatchResult, Owner, SagaStatus, SagaStore, StepEvent } from '../../engine/store.js';
import type { Db } from './open.js';
import { statementCache } from './statements.js';
import { toSagaRecord, toStepEvent, type EventRow, type SagaRow } from '../saga-rows.js';

const INSERT_SAGA = `INSERT INTO sagas (saga_id, definition, input, status, idempotency_key, request_hash,
  owner_id, owner_host, owner_pid, lease_until, created_at, updated_at)
  VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)`;
const RENEW_LEASE = 'UPDATE sagas SET lease_until = ?, updated_at = ? WHERE saga_id = ? AND owner_id = ?';
const INSERT_EVENT = `INSERT INTO saga_events (saga_id, step, step_index, phase, event, attempt, at, duration_ms,
  error, error_kind, uncertain, delay_ms, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
// A saga that is terminal or stuck has no owner: nothing is working on it.
const SET_STATUS = `UPDATE sagas SET status = ?, failed_step = coalesce(?, failed_step), error = coalesce(?, error),
  updated_at = ?, ended_at = ?,
  owner_id = CASE WHEN ? THEN NULL ELSE owner_id END,
  owner_pid = CASE WHEN ? THEN NULL ELSE owner_pid END,
  owner_host = CASE WHEN ? THEN NULL ELSE owner_host END,
  lease_until = CASE WHEN ? THEN NULL ELSE lease_until END
  WHERE saga_id = ?`;
const TAKE_OVER = `UPDATE sagas SET owner_id = ?, owner_host = ?, owner_pid = ?, lease_until = ?, updated_at = ?
  WHERE saga_id = ? AND status = ? AND owner_id IS ? AND lease_until IS ?`;

class GuardFailed extends Error {}

/** The saga log on SQLite. Every `commit` is one `BEGIN IMMEDIATE` transaction. */
export function sqliteSagaStore(db: Db, now: () => number = Date.now): SagaStore {
  const stmt = statementCache(db);

  function appendEvent(ev: StepEvent): void {
    stmt(INSERT_EVENT).run(
      ev.sagaId, ev.step, ev.stepIndex, ev.phase, ev.event, ev.attempt, ev.at, ev.durationMs ?? null,
      ev.error ?? null, ev.errorKind ?? null, ev.uncertain === undefined ? null : Number(ev.uncertain),
      ev.delayMs ?? null, ev.idempotencyKey ?? null,
    );
  }

  function runWrite(w: SqlWrite): void {
    const info = stmt(w.sql).run(...(w.params as unknown[]));
    if (w.expectChanges !== undefined && info.changes !== w.expectChanges.count) throw new GuardFailed(w.expectChanges.failure);
  }

  function setStatus(sagaId: string, status: SagaStatus, failedStep: string | null, error: string | null): void {
    const t = now();
    const ended = status === 'completed' || status === 'compensated';
    const released = Number(ended || status === 'stuck');
    stmt(SET_STATUS).run(status, failedStep, error, t, ended ? t : null, released, released, released, released, sagaId);
  }

  // A nested better-sqlite3 transaction is a SAVEPOINT: a failed guard undoes only this step.
  const runLocalWrites = db.transaction((writes: readonly SqlWrite[]) => {
    for (const w of writes) runWrite(w);
  });

  function applyOps(batch: Batch, events: StepEvent[]): BatchResult['failed'] {
    for (const op of batch.ops as BatchOp[]) {
      switch (op.op) {
        case 'event':
          appendEvent(op.event);
          events.push(op.event);
          break;
        case 'writes':
          for (const w of op.writes) runWrite(w);
          break;
        case 'status':
          setStatus(batch.sagaId, op.status, op.failedStep ?? null, op.error ?? null);
          break;
        case 'local': {
          const base = { sagaId: batch.sagaId, step: op.step, stepIndex: op.stepIndex, phase: op.phase, attempt: op.attempt };
          const t0 = performance.now();
          const started: StepEvent = { ...base, event: 'started', at: op.at };
          appendEvent(started);
          events.push(started);
          try {
            // A step with a guard runs in a savepoint, so a failed guard undoes all of its writes
            // (a guard can fail after changing rows: an INSERT that expected two made one).
            if (op.writes.some((w) => w.expectChanges !== undefined)) runLocalWrites(op.writes);
            else for (const w of op.writes) runWrite(w);
          } catch (err) {
            if (!(err instanceof GuardFailed)) throw err;
            const failed: StepEvent = { ...base, event: 'failed', at: now(), durationMs: round(performance.now() - t0), error: err.message, errorKind: 'permanent', uncertain: false };
            appendEvent(failed);
            events.push(failed);
            setStatus(batch.sagaId, op.phase === 'action' ? 'compensating' : 'stuck', op.phase === 'action' ? op.step : null, op.phase === 'action' ? `${op.step}: ${err.message}` : null);
            return { stepIndex: op.stepIndex, step: op.step, error: err.message };
          }
          const succeeded: StepEvent = { ...base, event: 'succeeded', at: now(), durationMs: round(performance.now() - t0) };
          appendEvent(succeeded);
          events.push(succeeded);
          break;
        }
      }
    }
    return undefined;
  }

  const commitTx = db.transaction((batch: Batch): BatchResult => {
    const t = now();
    if (batch.create !== undefined) {
      const c = batch.create;
      const { owner } = batch;
      try {
        stmt(INSERT_SAGA).run(c.sagaId, c.definition, JSON.stringify(c.input), c.idempotencyKey ?? null, c.requestHash ?? null,
          owner.id, owner.host, owner.pid, batch.leaseUntil, c.createdAt, t);
      } catch (err) {
        if (c.idempotencyKey !== undefined && (err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
          throw new DuplicateSagaKeyError(c.idempotencyKey);
        }
        throw err;
      }
    } else if (stmt(RENEW_LEASE).run(batch.leaseUntil, t, batch.sagaId, batch.owner.id).changes !== 1) {
      throw new LostOwnershipError(batch.sagaId);
    }
    const events: StepEvent[] = [];
    const failed = applyOps(batch, events);
    batch.beforeCommit?.();
    return failed === undefined ? { events } : { events, failed };
  });

  return {
    async commit(batch) {
      return commitTx.immediate(batch);
    },
    async renewLease(sagaId, owner, leaseUntil) {
      return stmt(RENEW_LEASE).run(leaseUntil, now(), sagaId, owner.id).changes === 1;
    },
    async getSaga(sagaId) {
      const row = stmt('SELECT * FROM sagas WHERE saga_id = ?').get(sagaId) as SagaRow | undefined;
      return row === undefined ? undefined : toSagaRecord(row);
    },
    async getEvents(sagaId) {
      return (stmt('SELECT * FROM saga_events WHERE saga_id = ? ORDER BY event_id').all(sagaId) as EventRow[]).map(toStepEvent);
    },
    async findByIdempotencyKey(key) {
      const row = stmt('SELECT * FROM sagas WHERE idempotency_key = ?').get(key) as SagaRow | undefined;
      return row === undefined ? undefined : toSagaRecord(row);
    },
    async listUnfinished() {
      const rows = stmt(`SELECT * FROM sagas WHERE status IN ('running', 'compensating', 'stuck') ORDER BY created_at`).all() as SagaRow[];
      return rows.map(toSagaRecord);
    },
    async takeOver(sagaId, expected, owner: Owner, leaseUntil) {
      const info = stmt(TAKE_OVER).run(owner.id, owner.host, owner.pid, leaseUntil, now(), sagaId, expected.status, expected.ownerId, expected.leaseUntil);
      return info.changes === 1;
    },
  };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

