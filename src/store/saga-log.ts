import type { SqlWrite } from '../engine/definition.js';
import { DuplicateSagaKeyError, LostOwnershipError } from '../engine/errors.js';
import type { Batch, BatchResult, CancelRequest, SagaStatus, SagaStore, StepEvent } from '../engine/store.js';
import { toSagaRecord, toStepEvent, toTakeOver, type EventRow, type SagaRow, type TakeOverRow } from './saga-rows.js';
import type { SqlDatabase } from './sql.js';

/**
 * The saga log's write path, written once for both databases. `applyBatch` is a generator: it
 * yields each statement and receives the number of rows it changed, so SQLite can drive it
 * synchronously inside one `BEGIN IMMEDIATE` transaction and PostgreSQL asynchronously inside
 * one transaction on one connection, with the same rules.
 *
 * The generator reads back only two kinds of result: a query's value (`value`) and the rows a
 * guarded write changed (`expectChanges`). A driver may therefore send every other statement
 * without waiting for its answer (PostgreSQL pipelines them: postgres/saga-store.ts), as long as
 * an error of one still fails the batch before it commits.
 */
export interface Statement {
  readonly sql: string;
  readonly params: readonly unknown[];
  /** The error to raise instead when the statement breaks a unique constraint. */
  readonly onUniqueViolation?: () => Error;
  /** A query: the driver sends back the first column of its first row (undefined when none), not a count of changes. */
  readonly value?: true;
}

/** What a driver sends back for a statement: rows changed, or a query's value. */
export type StatementResult = number | unknown;

const INSERT_SAGA = `INSERT INTO sagas (saga_id, definition, input, status, idempotency_key, request_hash,
  owner_id, owner_host, owner_pid, owner_pid_scope, owner_started_at, lease_until, created_at, updated_at, trace_context)
  VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
/** The record of a take-over, written with it (see the stores' TAKE_OVER). */
export const TAKE_OVER_COLUMNS = `saga_takeovers (saga_id, at, reason, status, owner_id, owner_host, owner_pid,
  previous_owner_id, previous_owner_host, previous_owner_pid, previous_lease_until)`;
export const RENEW_LEASE = 'UPDATE sagas SET lease_until = ?, updated_at = ? WHERE saga_id = ? AND owner_id = ?';
// The lease renewal every batch starts with also reads the saga's cancel request, in the batch's
// transaction (after its row lock), so a cancel and a completion never both win: 0 means none;
// no row at all means this process lost the saga.
const RENEW_LEASE_READ_CANCEL = `UPDATE sagas SET lease_until = ?, updated_at = ? WHERE saga_id = ? AND owner_id = ?
  RETURNING coalesce(cancel_requested_at, 0)`;
const CANCEL_REQUESTED_BY = 'SELECT cancel_requested_by FROM sagas WHERE saga_id = ?';
/** Only a running saga with no request yet takes one (see `SagaStore.requestCancel`). */
export const REQUEST_CANCEL = `UPDATE sagas SET cancel_requested_at = ?, cancel_requested_by = ?, updated_at = ?
  WHERE saga_id = ? AND status = 'running' AND cancel_requested_at IS NULL`;
const EVENT_COLUMNS = 13;
const EVENT_ROW = `(${Array(EVENT_COLUMNS).fill('?').join(', ')})`;
/** At most this many records per INSERT: far below either database's limit on parameters. */
const EVENTS_PER_INSERT = 64;
const insertEventsSql: string[] = [];
/** One INSERT for n log records (the text is made once per n, so each is prepared once). */
function insertEventsOf(n: number): string {
  return (insertEventsSql[n] ??= `INSERT INTO saga_events (saga_id, step, step_index, phase, event, attempt, at, duration_ms,
  error, error_kind, uncertain, delay_ms, idempotency_key) VALUES ${Array(n).fill(EVENT_ROW).join(', ')}`);
}
// A saga that is terminal or stuck has no owner: nothing is working on it.
const SET_STATUS = `UPDATE sagas SET status = ?, failed_step = coalesce(?, failed_step), error = coalesce(?, error),
  updated_at = ?, ended_at = ?,
  owner_id = CASE WHEN ? = 1 THEN NULL ELSE owner_id END,
  owner_pid = CASE WHEN ? = 1 THEN NULL ELSE owner_pid END,
  owner_host = CASE WHEN ? = 1 THEN NULL ELSE owner_host END,
  owner_pid_scope = CASE WHEN ? = 1 THEN NULL ELSE owner_pid_scope END,
  owner_started_at = CASE WHEN ? = 1 THEN NULL ELSE owner_started_at END,
  lease_until = CASE WHEN ? = 1 THEN NULL ELSE lease_until END
  WHERE saga_id = ?`;

class GuardFailed extends Error {}

/**
 * The batch's log records, in order, in as few statements as possible: one multi-row INSERT
 * (rows get their ids in the order given, so the log's order is the order of the batch).
 */
function* insertEvents(events: readonly StepEvent[]): Generator<Statement, void, StatementResult> {
  for (let from = 0; from < events.length; from += EVENTS_PER_INSERT) {
    const chunk = events.slice(from, from + EVENTS_PER_INSERT);
    const params: unknown[] = [];
    for (const ev of chunk) {
      params.push(
        ev.sagaId, ev.step, ev.stepIndex, ev.phase, ev.event, ev.attempt, ev.at, ev.durationMs ?? null,
        ev.error ?? null, ev.errorKind ?? null, ev.uncertain === undefined ? null : Number(ev.uncertain),
        ev.delayMs ?? null, ev.idempotencyKey ?? null,
      );
    }
    yield { sql: insertEventsOf(chunk.length), params };
  }
}

function setStatus(sagaId: string, status: SagaStatus, failedStep: string | null, error: string | null, now: number): Statement {
  const ended = status === 'completed' || status === 'compensated';
  const released = Number(ended || status === 'stuck');
  return { sql: SET_STATUS, params: [status, failedStep, error, now, ended ? now : null, released, released, released, released, released, released, sagaId] };
}

/** Runs business writes in order, checking each one's guard (one sub-generator per op, not per write). */
function* runWrites(writes: readonly SqlWrite[]): Generator<Statement, void, StatementResult> {
  for (const w of writes) {
    const changes = yield w;
    if (w.expectChanges !== undefined && changes !== w.expectChanges.count) throw new GuardFailed(yield* guardFailure(w.expectChanges));
  }
}

/** A failed guard's message: its own, or said from what its `explain` query finds in the transaction. */
function* guardFailure(guard: NonNullable<SqlWrite['expectChanges']>): Generator<Statement, string, StatementResult> {
  const explain = guard.explain;
  return explain === undefined ? guard.failure : explain.say(yield { sql: explain.sql, params: explain.params, value: true });
}

export function* applyBatch(batch: Batch, now: () => number): Generator<Statement, BatchResult, StatementResult> {
  const t = now();
  let cancel: CancelRequest | undefined;
  if (batch.create !== undefined) {
    const c = batch.create;
    const { owner } = batch;
    yield {
      sql: INSERT_SAGA,
      params: [c.sagaId, c.definition, JSON.stringify(c.input), c.idempotencyKey ?? null, c.requestHash ?? null, owner.id, owner.host, owner.pid, owner.pidScope, owner.startedAt, batch.leaseUntil, c.createdAt, t, c.traceContext ?? null],
      ...(c.idempotencyKey === undefined ? {} : { onUniqueViolation: () => new DuplicateSagaKeyError(c.idempotencyKey!) }),
    };
  } else {
    const cancelAt = yield { sql: RENEW_LEASE_READ_CANCEL, params: [batch.leaseUntil, t, batch.sagaId, batch.owner.id], value: true };
    // Every commit proves this process still owns the saga (docs/guarantees.md, rule 7).
    if (cancelAt === undefined || cancelAt === null) throw new LostOwnershipError(batch.sagaId);
    if (Number(cancelAt) > 0) cancel = { at: Number(cancelAt), by: String((yield { sql: CANCEL_REQUESTED_BY, params: [batch.sagaId], value: true }) ?? 'unknown') };
  }
  // The records are written together at the end, in the same transaction: where in it they are
  // inserted changes nothing, and one statement costs less than one per record.
  const events: StepEvent[] = [];
  const append = (ev: StepEvent) => void events.push(ev);
  let leftOut: BatchResult['leftOut'];
  for (const op of batch.ops) {
    // A step the engine left to be decided here, and a cancel recorded first: it never runs.
    if (op.op === 'local' && op.unlessCancelled === true && cancel !== undefined) {
      leftOut ??= { stepIndex: op.stepIndex, step: op.step };
      continue;
    }
    if (op.op === 'event') {
      append(op.event);
    } else if (op.op === 'writes') {
      yield* runWrites(op.writes);
    } else if (op.op === 'status') {
      // A cancel recorded before this commit wins: the saga stays running and its owner rolls it back.
      if (op.status === 'completed' && cancel !== undefined) continue;
      yield setStatus(batch.sagaId, op.status, op.failedStep ?? null, op.error ?? null, now());
    } else {
      const base = { sagaId: batch.sagaId, step: op.step, stepIndex: op.stepIndex, phase: op.phase, attempt: op.attempt };
      const t0 = performance.now();
      append({ ...base, event: 'started', at: op.at });
      // A step with a guard runs in a savepoint, so a failed guard undoes all of its writes
      // (a guard can fail after changing rows: an INSERT that expected two made one).
      const savepoint = op.writes.some((w) => w.expectChanges !== undefined);
      if (savepoint) yield { sql: 'SAVEPOINT step', params: [] };
      try {
        yield* runWrites(op.writes);
      } catch (err) {
        if (!(err instanceof GuardFailed)) throw err;
        if (savepoint) yield { sql: 'ROLLBACK TO SAVEPOINT step', params: [] };
        if (savepoint) yield { sql: 'RELEASE SAVEPOINT step', params: [] };
        append({ ...base, event: 'failed', at: now(), durationMs: elapsed(t0), error: err.message, errorKind: 'permanent', uncertain: false });
        yield* insertEvents(events);
        // A failed action starts the rollback; a failed compensation leaves the saga stuck. The
        // saga's failed step and error stay those of what started the rollback.
        const action = op.phase === 'action';
        yield setStatus(batch.sagaId, action ? 'compensating' : 'stuck', action ? op.step : null, action ? `${op.step}: ${err.message}` : null, now());
        batch.beforeCommit?.();
        return { events, failed: { stepIndex: op.stepIndex, step: op.step, error: err.message }, ...(cancel === undefined ? {} : { cancel }), ...(leftOut === undefined ? {} : { leftOut }) };
      }
      if (savepoint) yield { sql: 'RELEASE SAVEPOINT step', params: [] };
      append({ ...base, event: 'succeeded', at: now(), durationMs: elapsed(t0) });
    }
  }
  yield* insertEvents(events);
  batch.beforeCommit?.();
  return { events, ...(cancel === undefined ? {} : { cancel }), ...(leftOut === undefined ? {} : { leftOut }) };
}

function elapsed(t0: number): number {
  return Math.round((performance.now() - t0) * 1000) / 1000;
}

/** The saga log's reads, portable: the same SQL on both databases. */
export function sagaLogReads(db: SqlDatabase): Pick<SagaStore, 'getSaga' | 'getEvents' | 'findByIdempotencyKey' | 'listUnfinished' | 'getTakeOvers' | 'getCancelRequest'> {
  return {
    async getCancelRequest(sagaId) {
      const row = await db.get<{ cancel_requested_at: number | null; cancel_requested_by: string | null }>('SELECT cancel_requested_at, cancel_requested_by FROM sagas WHERE saga_id = ?', [sagaId]);
      const at = row?.cancel_requested_at;
      return at === null || at === undefined ? undefined : { at: Number(at), by: row?.cancel_requested_by ?? 'unknown' };
    },
    async getTakeOvers(sagaId) {
      return (await db.all<TakeOverRow>('SELECT * FROM saga_takeovers WHERE saga_id = ? ORDER BY takeover_id', [sagaId])).map(toTakeOver);
    },
    async getSaga(sagaId) {
      const row = await db.get<SagaRow>('SELECT * FROM sagas WHERE saga_id = ?', [sagaId]);
      return row === undefined ? undefined : toSagaRecord(row);
    },
    async getEvents(sagaId) {
      return (await db.all<EventRow>('SELECT * FROM saga_events WHERE saga_id = ? ORDER BY event_id', [sagaId])).map(toStepEvent);
    },
    async findByIdempotencyKey(key) {
      const row = await db.get<SagaRow>('SELECT * FROM sagas WHERE idempotency_key = ?', [key]);
      return row === undefined ? undefined : toSagaRecord(row);
    },
    async listUnfinished() {
      return (await db.all<SagaRow>(`SELECT * FROM sagas WHERE status IN ('running', 'compensating', 'stuck') ORDER BY created_at`)).map(toSagaRecord);
    },
  };
}
