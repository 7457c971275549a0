import type { SqlDatabase } from '../store/sql.js';
import { eventsAfter, lastEventId, transactionBounds, type FeedEvent } from '../store/event-feed.js';

/**
 * Server-Sent Events over the saga log. Each client holds a cursor (the last `event_id` it was
 * sent) and is sent the rows after it, in order, each with `id: <event_id>`. A client that
 * reconnects sends that id back as Last-Event-ID and misses nothing, even across a restart of
 * the server or a switch to another server on the same PostgreSQL: the feed is the table, not
 * memory.
 *
 * The catch is the order in which rows become visible. SQLite has one writer at a time, so a
 * row with a higher id never commits before a lower one: reading `event_id > cursor` is exact.
 * PostgreSQL hands out ids when rows are inserted, and transactions commit in any order: id 41
 * may be visible while id 40's transaction is still open. Moving the cursor past 41 would lose
 * 40 for good. So on PostgreSQL a reader stops at the first hole and waits until the hole is
 * explained: every transaction that was running when the hole was seen has ended (the current
 * snapshot's xmin has passed the xmax seen then) and a moment has passed (an insert takes its id
 * a moment before its transaction id). A hole that is still there then is an id no row will
 * ever have (a rolled-back insert: a guard that failed), and is skipped.
 */
export class EventCursor {
  private hole: { id: number; seenAt: number; xmax: bigint } | undefined;

  constructor(private readonly db: SqlDatabase, private position: number) {}

  get lastId(): number {
    return this.position;
  }

  /** The next events in order (empty when there are none yet). */
  async next(limit = 500): Promise<FeedEvent[]> {
    const rows = await eventsAfter(this.db, this.position, limit);
    if (this.db.dialect === 'sqlite') {
      if (rows.length > 0) this.position = rows[rows.length - 1]!.eventId;
      return rows;
    }
    const out: FeedEvent[] = [];
    for (const row of rows) {
      if (row.eventId !== this.position + 1 && !(await this.holeExplained(this.position + 1))) break;
      out.push(row);
      this.position = row.eventId;
      this.hole = undefined;
    }
    return out;
  }

  private async holeExplained(id: number): Promise<boolean> {
    const { xmin, xmax } = await transactionBounds(this.db);
    if (this.hole?.id !== id) {
      this.hole = { id, seenAt: Date.now(), xmax };
      return false;
    }
    return Date.now() - this.hole.seenAt >= HOLE_SETTLE_MS && xmin >= this.hole.xmax;
  }
}

/** How long a hole is watched before its transactions' end is taken to explain it. */
const HOLE_SETTLE_MS = 250;

/** A cursor from a client's Last-Event-ID, or from the end of the log for a new client. */
export async function openCursor(db: SqlDatabase, lastEventIdHeader: string | undefined): Promise<EventCursor> {
  if (lastEventIdHeader !== undefined && /^\d{1,15}$/.test(lastEventIdHeader.trim())) return new EventCursor(db, Number(lastEventIdHeader.trim()));
  return new EventCursor(db, await lastEventId(db));
}

/** One SSE message. The `data` is one line of JSON, so it never needs splitting. */
export function sseMessage(e: FeedEvent): string {
  const data = { ...e, at: new Date(e.at).toISOString() };
  return `id: ${e.eventId}\nevent: saga\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Wakes waiting streams when this process logs a transition, so they do not wait for the next poll. */
export class Wakeup {
  private waiters = new Set<() => void>();

  notify(): void {
    const waiting = this.waiters;
    this.waiters = new Set();
    for (const wake of waiting) wake();
  }

  /** Resolves on `notify`, after `ms`, or when `signal` aborts, whichever comes first. */
  wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
      this.waiters.add(done);
    });
  }
}
