import type pg from 'pg';
import type { InFlight, WriteGroupOptions } from '../sqlite/write-group.js';
import type { Pool, PoolClient } from './open.js';
import { withClient } from './transaction.js';

/**
 * Group commit on PostgreSQL (docs/guarantees.md, rule 12), the twin of sqlite/write-group.ts.
 * With one saga in flight in this process, a write runs at once in a transaction of its own, on
 * a pooled connection of its own: no added latency. With several, the classic group commit:
 * while one shared transaction is running, the writes that arrive wait; when it ends, all of them
 * go into the next one, on one connection, each in its own savepoint. One that fails (a unique
 * violation, a lost lease, a simulated crash, any error PostgreSQL reports, which aborts the
 * transaction until `ROLLBACK TO`) is rolled back to its savepoint and rejected alone; the others
 * commit. Nobody's promise settles before COMMIT returned; if COMMIT itself (or the connection)
 * fails, every writer of the group is rejected, and none of them was told anything before.
 *
 * Round trips: the parameterless statements around the writes are sent as one simple-protocol
 * query text each time two of them meet (`BEGIN; SAVEPOINT w`, `RELEASE SAVEPOINT w; SAVEPOINT w`,
 * `RELEASE SAVEPOINT w; COMMIT`), so a group of k writes costs k + 1 round trips of its own where
 * k transactions would cost 2k. (A statement with parameters travels alone: pg's extended
 * protocol carries one statement per query.)
 */
export interface PgWriteGroup {
  /** Runs `work` inside a transaction (shared, when others are waiting) and settles once that transaction committed. */
  submit<T>(work: (send: Send) => Promise<T>): Promise<T>;
  /** Transactions committed so far (a group counts once). */
  readonly commits: number;
  /** Queries sent so far by this group's transactions (one merged text counts once). */
  readonly roundTrips: number;
}

/** One round trip on the transaction's connection: what a write runs its statements through. */
export type Send = (text: string, params?: readonly unknown[]) => Promise<pg.QueryResult>;

interface Waiting {
  readonly work: (send: Send) => Promise<unknown>;
  readonly resolve: (value: never) => void;
  readonly reject: (err: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; err: unknown };

export function pgWriteGroup(pool: Pool, inFlight: InFlight, opts: WriteGroupOptions = {}): PgWriteGroup {
  let queue: Waiting[] = [];
  let flushing = false;
  let commits = 0;
  let shared = 0;
  let roundTrips = 0;

  const sender = (client: PoolClient): Send => (text, params) => {
    roundTrips += 1;
    return client.query(text, params as unknown[] | undefined);
  };

  /** BEGIN, the write, COMMIT: a transaction of its own (today's path for a lone saga). */
  const alone = <T>(work: (send: Send) => Promise<T>): Promise<T> =>
    withClient(pool, async (client, markBroken) => {
      const send = sender(client);
      await send('BEGIN');
      try {
        const value = await work(send);
        await commit(send('COMMIT'));
        commits += 1;
        return value;
      } catch (err) {
        await client.query('ROLLBACK').catch(markBroken);
        throw err;
      }
    });

  /**
   * Every item in one transaction, each in savepoint `w`; `outcomes` gets each item's as it ends.
   * Throws only when the whole transaction failed (then nothing of it committed).
   */
  const together = (items: readonly Waiting[], outcomes: Outcome[]): Promise<void> =>
    withClient(pool, async (client, markBroken) => {
      const send = sender(client);
      try {
        let next = 'BEGIN; SAVEPOINT w';
        for (const item of items) {
          await send(next);
          next = 'RELEASE SAVEPOINT w; SAVEPOINT w';
          try {
            outcomes.push({ ok: true, value: await item.work(send) });
          } catch (err) {
            // Undoes this item alone, and ends the aborted state an error of PostgreSQL's leaves
            // the transaction in. If even that fails (the connection is gone), the group fails.
            outcomes.push({ ok: false, err });
            await send('ROLLBACK TO SAVEPOINT w');
          }
        }
        opts.point?.(`group:${shared + 1}:before`);
        await commit(send('RELEASE SAVEPOINT w; COMMIT'));
      } catch (err) {
        await client.query('ROLLBACK').catch(markBroken);
        throw err;
      }
    });

  const flush = async (): Promise<void> => {
    flushing = true;
    try {
      // Whatever arrived while a transaction ran goes into the next one, until nobody waits.
      while (queue.length > 0) {
        const items = queue;
        queue = [];
        if (items.length === 1) {
          await alone(items[0]!.work).then((v) => items[0]!.resolve(v as never), items[0]!.reject);
          continue;
        }
        const outcomes: Outcome[] = [];
        try {
          await together(items, outcomes);
        } catch (err) {
          // Nothing of the group committed: a writer whose own write failed hears why, the others the group's error.
          items.forEach((item, i) => {
            const o = outcomes[i];
            item.reject(o !== undefined && !o.ok ? o.err : err);
          });
          continue;
        }
        commits += 1;
        shared += 1;
        opts.point?.(`group:${shared}:after`);
        outcomes.forEach((o, i) => (o.ok ? items[i]!.resolve(o.value as never) : items[i]!.reject(o.err)));
      }
    } finally {
      flushing = false;
    }
  };

  return {
    submit<T>(work: (send: Send) => Promise<T>): Promise<T> {
      if (inFlight.count <= 1 && !flushing) return alone(work);
      return new Promise<T>((resolve, reject) => {
        queue.push({ work, resolve: resolve as (v: never) => void, reject });
        if (!flushing) void flush();
      });
    },
    get commits() {
      return commits;
    },
    get roundTrips() {
      return roundTrips;
    },
  };
}

/**
 * COMMIT of a transaction PostgreSQL had aborted answers `ROLLBACK`, without an error: that must
 * never pass for a commit.
 */
async function commit(result: Promise<pg.QueryResult | pg.QueryResult[]>): Promise<void> {
  const r = await result;
  const last = Array.isArray(r) ? r[r.length - 1] : r;
  if (last?.command !== 'COMMIT') throw new Error(`the transaction was rolled back by the server (COMMIT answered ${last?.command ?? 'nothing'})`);
}
