import type { SagaStatus } from '../engine/store.js';
import type { SqlDatabase } from './sql.js';

/**
 * Retention of the saga log (docs/guarantees.md, rule 10): the whole log (saga row, events,
 * take-overs) of terminal sagas that ended before a cutoff, deleted in batches of `batchSize`
 * sagas, each batch one short transaction, so the database is never held for long and concurrent
 * checkouts go on between batches. Never a saga that is not terminal, never part of a log, never
 * a business row (orders, payments, shipments, reservations, the provider's ledger stay).
 */
export const PRUNE_BATCH_SIZE = 500;

export interface PruneOptions {
  /** Sagas that ended strictly before this time (ms since the epoch). */
  readonly endedBefore: number;
  readonly now: number;
  readonly dryRun: boolean;
  readonly batchSize?: number;
  /** Stop between batches (Ctrl-C): every batch is whole, so stopping anywhere between is safe. */
  readonly signal?: AbortSignal;
}

export interface PruneReport {
  /** Sagas whose log was (or, with a dry run, would be) removed, by status. */
  readonly sagas: { readonly completed: number; readonly compensated: number };
  readonly events: number;
  readonly takeOvers: number;
  /** Transactions used (0 for a dry run). */
  readonly batches: number;
  readonly oldestEndedAt: number | null;
  readonly newestEndedAt: number | null;
  /** Stopped by the signal before every batch ran. */
  readonly stopped: boolean;
}

const TERMINAL = `status IN ('completed', 'compensated')`;

export async function pruneSagas(db: SqlDatabase, opts: PruneOptions): Promise<PruneReport> {
  return opts.dryRun ? countPrunable(db, opts.endedBefore) : prune(db, opts);
}

async function countPrunable(db: SqlDatabase, endedBefore: number): Promise<PruneReport> {
  const rows = await db.all<{ status: SagaStatus; n: number; oldest: number; newest: number }>(
    `SELECT status, count(*) AS n, min(ended_at) AS oldest, max(ended_at) AS newest FROM sagas
     WHERE ${TERMINAL} AND ended_at < ? GROUP BY status`,
    [endedBefore],
  );
  const count = async (table: string) =>
    Number((await db.get<{ n: number }>(`SELECT count(*) AS n FROM ${table} WHERE saga_id IN (SELECT saga_id FROM sagas WHERE ${TERMINAL} AND ended_at < ?)`, [endedBefore]))?.n ?? 0);
  const of = (status: SagaStatus) => Number(rows.find((r) => r.status === status)?.n ?? 0);
  const ends = rows.flatMap((r) => [Number(r.oldest), Number(r.newest)]);
  return {
    sagas: { completed: of('completed'), compensated: of('compensated') },
    events: await count('saga_events'),
    takeOvers: await count('saga_takeovers'),
    batches: 0,
    oldestEndedAt: ends.length === 0 ? null : Math.min(...ends),
    newestEndedAt: ends.length === 0 ? null : Math.max(...ends),
    stopped: false,
  };
}

async function prune(db: SqlDatabase, opts: PruneOptions): Promise<PruneReport> {
  const size = opts.batchSize ?? PRUNE_BATCH_SIZE;
  const totals = { completed: 0, compensated: 0, events: 0, takeOvers: 0, batches: 0 };
  let oldest: number | null = null;
  let newest: number | null = null;
  for (;;) {
    if (opts.signal?.aborted) return report(true);
    // Oldest ended first (index sagas_ended). A terminal saga never changes again, so the ids
    // read here still name terminal sagas when the batch below deletes them.
    const picked = await db.all<{ saga_id: string; status: SagaStatus; ended_at: number }>(
      `SELECT saga_id, status, ended_at FROM sagas WHERE ended_at < ? AND ${TERMINAL} ORDER BY ended_at LIMIT ?`,
      [opts.endedBefore, size],
    );
    if (picked.length === 0) return report(false);
    const ids = picked.map((r) => r.saga_id);
    const list = ids.map(() => '?').join(', ');
    // The same condition in every statement, so each deletes exactly the logs of the sagas the
    // last one deletes: a whole log or none of it (events and take-overs first: they reference
    // the saga row). The prune's record goes in the same transaction.
    const mine = `saga_id IN (${list}) AND ${TERMINAL} AND ended_at < ?`;
    const [, events, takeOvers, completed, compensated] = await db.batch([
      { sql: `INSERT INTO saga_prunes (at, ended_before, sagas) SELECT CAST(? AS BIGINT), CAST(? AS BIGINT), count(*) FROM sagas WHERE ${mine}`, params: [opts.now, opts.endedBefore, ...ids, opts.endedBefore] },
      { sql: `DELETE FROM saga_events WHERE saga_id IN (SELECT saga_id FROM sagas WHERE ${mine})`, params: [...ids, opts.endedBefore] },
      { sql: `DELETE FROM saga_takeovers WHERE saga_id IN (SELECT saga_id FROM sagas WHERE ${mine})`, params: [...ids, opts.endedBefore] },
      // By status, so the counts are of what this batch deleted (a concurrent prune may have taken some).
      { sql: `DELETE FROM sagas WHERE ${mine} AND status = 'completed'`, params: [...ids, opts.endedBefore] },
      { sql: `DELETE FROM sagas WHERE ${mine} AND status = 'compensated'`, params: [...ids, opts.endedBefore] },
    ]);
    totals.batches++;
    totals.events += events ?? 0;
    totals.takeOvers += takeOvers ?? 0;
    totals.completed += completed ?? 0;
    totals.compensated += compensated ?? 0;
    for (const r of picked) {
      oldest = oldest === null ? Number(r.ended_at) : Math.min(oldest, Number(r.ended_at));
      newest = newest === null ? Number(r.ended_at) : Math.max(newest, Number(r.ended_at));
    }
    if (picked.length < size) return report(false);
  }

  function report(stopped: boolean): PruneReport {
    return {
      sagas: { completed: totals.completed, compensated: totals.compensated },
      events: totals.events,
      takeOvers: totals.takeOvers,
      batches: totals.batches,
      oldestEndedAt: oldest,
      newestEndedAt: newest,
      stopped,
    };
  }
}

/**
 * Gives the space of deleted rows back. SQLite: VACUUM rewrites the whole file, smaller (it takes
 * the write lock while it runs). PostgreSQL: VACUUM of saga's log tables makes their dead rows'
 * space reusable (not VACUUM FULL, which would lock checkouts out); the file shrinks only where
 * whole pages at its end are free.
 */
export async function vacuumSagaLog(db: SqlDatabase): Promise<void> {
  if (db.dialect === 'sqlite') await db.run('VACUUM');
  else await db.run('VACUUM (ANALYZE) sagas, saga_events, saga_takeovers, saga_prunes');
}
