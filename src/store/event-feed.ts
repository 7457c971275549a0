import type { SqlDatabase } from './sql.js';

/**
 * The saga log as one ordered feed, for `GET /api/events`: every row of saga_events in
 * `event_id` order, with the saga's status as it is when the row is read. `event_id` is the
 * feed's cursor (an SSE client's Last-Event-ID), so a reader that went away, or a server that
 * restarted, resumes where it stopped.
 */
export interface FeedEvent {
  readonly eventId: number;
  readonly sagaId: string;
  readonly step: string;
  readonly phase: string;
  readonly event: string;
  readonly attempt: number;
  readonly at: number;
  readonly durationMs: number | null;
  readonly error: string | null;
  readonly errorKind: string | null;
  readonly uncertain: boolean | null;
  readonly sagaStatus: string;
}

export async function eventsAfter(db: SqlDatabase, afterId: number, limit: number): Promise<FeedEvent[]> {
  const rows = await db.all<FeedEvent & { uncertain: unknown }>(
    `SELECT e.event_id AS "eventId", e.saga_id AS "sagaId", e.step, e.phase, e.event, e.attempt, e.at,
       e.duration_ms AS "durationMs", e.error, e.error_kind AS "errorKind", e.uncertain, s.status AS "sagaStatus"
     FROM saga_events e JOIN sagas s ON s.saga_id = e.saga_id
     WHERE e.event_id > ? ORDER BY e.event_id LIMIT ?`,
    [afterId, limit],
  );
  return rows.map((r) => ({ ...r, uncertain: r.uncertain === null ? null : Boolean(r.uncertain) }));
}

export async function lastEventId(db: SqlDatabase): Promise<number> {
  return (await db.get<{ id: number }>('SELECT coalesce(max(event_id), 0) AS id FROM saga_events'))?.id ?? 0;
}

/**
 * PostgreSQL only: the oldest transaction still running and the next transaction id to be
 * given out (pg_current_snapshot). Every transaction older than `xmin` has ended.
 */
export async function transactionBounds(db: SqlDatabase): Promise<{ xmin: bigint; xmax: bigint }> {
  const row = await db.get<{ xmin: string; xmax: string }>(
    'SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, pg_snapshot_xmax(pg_current_snapshot())::text AS xmax',
  );
  return { xmin: BigInt(row!.xmin), xmax: BigInt(row!.xmax) };
}
