import { DuplicateSagaKeyError, LostOwnershipError } from '../../engine/errors.js';
import type { Batch, BatchResult, SagaStatus, SagaStore, StepEvent } from '../../engine/store.js';
import { toSagaRecord, toStepEvent, type EventRow, type SagaRow } from '../saga-rows.js';
import { inTransaction, pgSql, runWrite, type Pool, type PoolClient } from './connect.js';

const INSERT_SAGA = `INSERT INTO sagas (saga_id, definition, input, status, idempotency_key, request_hash,
  owner_id, owner_host, owner_pid, lease_until, created_at, updated_at)
  VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8, $9, $10, $11)`;
const RENEW_LEASE = 'UPDATE sagas SET lease_until = $1, updated_at = $2 WHERE saga_id = $3 AND owner_id = $4';
const INSERT_EVENT = `INSERT INTO saga_events (saga_id, step, step_index, phase, event, attempt, at, duration_ms,
  error, error_kind, uncertain, delay_ms, idempotency_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`;
// A saga that is terminal or stuck has no owner: nothing is working on it.
const SET_STATUS = `UPDATE sagas SET status = $1, failed_step = coalesce($2, failed_step), error = coalesce($3, error),
  updated_at = $4, ended_at = $5,
  owner_id = CASE WHEN $6 THEN NULL ELSE owner_id END,
  owner_pid = CASE WHEN $6 THEN NULL ELSE owner_pid END,
  owner_host = CASE WHEN $6 THEN NULL ELSE owner_host END,
  lease_until = CASE WHEN $6 THEN NULL ELSE lease_until END
  WHERE saga_id = $7`;
// Recoverers on several hosts: a row another transaction holds is skipped, not waited for, and
// the update only happens if the saga is still as the recoverer saw it.
const TAKE_OVER = `WITH claim AS (
    SELECT saga_id FROM sagas
    WHERE saga_id = $6 AND status = $7 AND owner_id IS NOT DISTINCT FROM $8 AND lease_until IS NOT DISTINCT FROM $9
    FOR UPDATE SKIP LOCKED)
  UPDATE sagas SET owner_id = $1, owner_host = $2, owner_pid = $3, lease_until = $4, updated_at = $5
  FROM claim WHERE sagas.saga_id = claim.saga_id`;

class GuardFailed extends Error {}

/** The saga log on PostgreSQL: every `commit` is one transaction on one pooled connection. */
export function postgresSagaStore(pool: Pool, now: () => number = Date.now): SagaStore {
  async function appendEvent(client: PoolClient, ev: StepEvent): Promise<void> {
    await client.query(INSERT_EVENT, [
      ev.sagaId, ev.step, ev.stepIndex, ev.phase, ev.event, ev.attempt, ev.at, ev.durationMs ?? null,
      ev.error ?? null, ev.errorKind ?? null, ev.uncertain === undefined ? null : Number(ev.uncertain),
      ev.delayMs ?? null, ev.idempotencyKey ?? null,
    ]);
  }

  async function setStatus(client: PoolClient, sagaId: string, status: SagaStatus, failedStep: string | null, error: string | null) {
    const t = now();
    const ended = status === 'completed' || status === 'compensated';
    await client.query(SET_STATUS, [status, failedStep, error, t, ended ? t : null, ended || status === 'stuck', sagaId]);
  }

  async function apply(client: PoolClient, batch: Batch): Promise<BatchResult> {
    const t = now();
    if (batch.create !== undefined) {
      const c = batch.create;
      const { owner } = batch;
      try {
        await client.query(INSERT_SAGA, [c.sagaId, c.definition, JSON.stringify(c.input), c.idempotencyKey ?? null, c.requestHash ?? null,
          owner.id, owner.host, owner.pid, batch.leaseUntil, c.createdAt, t]);
      } catch (err) {
        if (c.idempotencyKey !== undefined && (err as { code?: string }).code === '23505') throw new DuplicateSagaKeyError(c.idempotencyKey);
        throw err;
      }
    } else if ((await client.query(RENEW_LEASE, [batch.leaseUntil, t, batch.sagaId, batch.owner.id])).rowCount !== 1) {
      throw new LostOwnershipError(batch.sagaId);
    }
    const events: StepEvent[] = [];
    for (const op of batch.ops) {
      if (op.op === 'event') {
        await appendEvent(client, op.event);
        events.push(op.event);
      } else if (op.op === 'writes') {
        for (const w of op.writes) await runWrite(client, w);
      } else if (op.op === 'status') {
        await setStatus(client, batch.sagaId, op.status, op.failedStep ?? null, op.error ?? null);
      } else {
        const base = { sagaId: batch.sagaId, step: op.step, stepIndex: op.stepIndex, phase: op.phase, attempt: op.attempt };
        const t0 = performance.now();
        const started: StepEvent = { ...base, event: 'started', at: op.at };
        await appendEvent(client, started);
        events.push(started);
        const savepoint = op.writes.some((w) => w.expectChanges !== undefined);
        if (savepoint) await client.query('SAVEPOINT step');
        try {
          for (const w of op.writes) {
            const changes = await runWrite(client, w);
            if (w.expectChanges !== undefined && changes !== w.expectChanges.count) throw new GuardFailed(w.expectChanges.failure);
          }
          if (savepoint) await client.query('RELEASE SAVEPOINT step');
        } catch (err) {
          if (!(err instanceof GuardFailed)) throw err;
          if (savepoint) await client.query('ROLLBACK TO SAVEPOINT step');
          const failed: StepEvent = { ...base, event: 'failed', at: now(), durationMs: elapsed(t0), error: err.message, errorKind: 'permanent', uncertain: false };
          await appendEvent(client, failed);
          events.push(failed);
          await setStatus(client, batch.sagaId, op.phase === 'action' ? 'compensating' : 'stuck', op.phase === 'action' ? op.step : null, op.phase === 'action' ? `${op.step}: ${err.message}` : null);
          batch.beforeCommit?.();
          return { events, failed: { stepIndex: op.stepIndex, step: op.step, error: err.message } };
        }
        const succeeded: StepEvent = { ...base, event: 'succeeded', at: now(), durationMs: elapsed(t0) };
        await appendEvent(client, succeeded);
        events.push(succeeded);
      }
    }
    batch.beforeCommit?.();
    return { events };
  }

  return {
    commit: (batch) => inTransaction(pool, (client) => apply(client, batch)),
    async renewLease(sagaId, owner, leaseUntil) {
      return (await pool.query(RENEW_LEASE, [leaseUntil, now(), sagaId, owner.id])).rowCount === 1;
    },
    async getSaga(sagaId) {
      const row = (await pool.query('SELECT * FROM sagas WHERE saga_id = $1', [sagaId])).rows[0] as SagaRow | undefined;
      return row === undefined ? undefined : toSagaRecord(row);
    },
    async getEvents(sagaId) {
      return ((await pool.query('SELECT * FROM saga_events WHERE saga_id = $1 ORDER BY event_id', [sagaId])).rows as EventRow[]).map(toStepEvent);
    },
    async findByIdempotencyKey(key) {
      const row = (await pool.query('SELECT * FROM sagas WHERE idempotency_key = $1', [key])).rows[0] as SagaRow | undefined;
      return row === undefined ? undefined : toSagaRecord(row);
    },
    async listUnfinished() {
      const rows = (await pool.query(pgSql(`SELECT * FROM sagas WHERE status IN ('running', 'compensating', 'stuck') ORDER BY created_at`))).rows as SagaRow[];
      return rows.map(toSagaRecord);
    },
    async takeOver(sagaId, expected, owner, leaseUntil) {
      const r = await pool.query(TAKE_OVER, [owner.id, owner.host, owner.pid, leaseUntil, now(), sagaId, expected.status, expected.ownerId, expected.leaseUntil]);
      return r.rowCount === 1;
    },
  };
}

function elapsed(t0: number): number {
  return Math.round((performance.now() - t0) * 1000) / 1000;
}
