import type pg from 'pg';
import type { SagasInFlight, WriteGroupOptions } from '../group-commit.js';
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
 * Round trips: the pool's connections pipeline (pg's `pipeline: true`, open.ts), so a statement
 * whose result nobody reads (`Tx.defer`: BEGIN, savepoints, log records, unguarded writes) is sent
 * at once and not waited for; the next statement whose result is read brings back all of theirs
 * in the same round trip, and the first error among them. A checkout's commit then costs about
 * three round trips (the lease check, a guarded write, COMMIT) instead of one per statement.
 * Statements with parameters are named, so each connection parses and plans each text once.
 * Between the writes of a group, `RELEASE SAVEPOINT w; SAVEPOINT w` is one query text.
 */
export interface PgWriteGroup {
  /** Runs `work` inside a transaction (shared, when others are waiting) and settles once that transaction committed. */
  submit<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** Transactions committed so far (a group counts once). */
  readonly commits: number;
  /** Round trips so far: the queries this group's transactions waited for (deferred ones ride along and are not counted). */
  readonly roundTrips: number;
}

/**
 * The statements of one write, on its transaction's connection. `query` returns the result (and
 * throws the first error of anything deferred before it); `defer` sends a statement whose result
 * nobody reads without waiting for it: its error, mapped by `onError`, surfaces at the next
 * `query` or when the write ends.
 */
export interface Tx {
  query(text: string, params?: readonly unknown[]): Promise<pg.QueryResult>;
  defer(text: string, params?: readonly unknown[], onError?: (err: unknown) => unknown): void;
}

const names = new Map<string, string>();
/** Each parameterized text under one name in this process: prepared once per connection. */
function named(text: string, params: readonly unknown[] | undefined): pg.QueryConfig {
  if (params === undefined) return { text };
  let name = names.get(text);
  if (name === undefined) {
    name = `saga_${names.size + 1}`;
    names.set(text, name);
  }
  return { name, text, values: params as unknown[] };
}

/** A `Tx` on `client` for one write; `end()` waits for what was deferred and throws its first error. */
function pipe(client: PoolClient, count: () => void): Tx & { end(): Promise<void> } {
  const pending: Promise<void>[] = [];
  let failure: { err: unknown } | undefined;
  const fire = (text: string, params?: readonly unknown[]) => client.query(named(text, params));
  const end = async () => {
    await Promise.all(pending.splice(0));
    if (failure !== undefined) throw failure.err;
  };
  return {
    defer(text, params, onError) {
      pending.push(fire(text, params).then(() => undefined, (err: unknown) => void (failure ??= { err: onError === undefined ? err : onError(err) })));
    },
    async query(text, params) {
      count();
      const result = fire(text, params);
      try {
        const r = await result;
        await end();
        return r;
      } catch (err) {
        // A deferred statement that failed first is the cause; this one only saw the aborted transaction.
        await end();
        throw err;
      }
    },
    end,
  };
}

interface Waiting {
  readonly work: (tx: Tx) => Promise<unknown>;
  readonly resolve: (value: never) => void;
  readonly reject: (err: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; err: unknown };

export function pgWriteGroup(pool: Pool, inFlight: SagasInFlight, opts: WriteGroupOptions = {}): PgWriteGroup {
  let queue: Waiting[] = [];
  let flushing = false;
  let commits = 0;
  let shared = 0;
  let roundTrips = 0;

  const count = () => void (roundTrips += 1);

  /** BEGIN, the write, COMMIT: a transaction of its own (today's path for a lone saga). */
  const alone = <T>(work: (tx: Tx) => Promise<T>): Promise<T> =>
    withClient(pool, async (client, markBroken) => {
      const tx = pipe(client, count);
      try {
        tx.defer('BEGIN');
        const value = await work(tx);
        await checkCommitted(tx.query('COMMIT'));
        commits += 1;
        return value;
      } catch (err) {
        await tx.end().catch(() => undefined);
        await client.query('ROLLBACK').catch(markBroken);
        throw err;
      }
    });

  /**
   * Every item in one transaction, each in savepoint `w`; `outcomes` gets each item's as it ends.
   * Throws only when the whole transaction failed (then nothing of it committed).
   */
  const together = (items: readonly Waiting[], outcomes: Outcome[], k: number): Promise<void> =>
    withClient(pool, async (client, markBroken) => {
      try {
        let next = 'BEGIN; SAVEPOINT w';
        for (const item of items) {
          const tx = pipe(client, count);
          try {
            tx.defer(next);
            next = 'RELEASE SAVEPOINT w; SAVEPOINT w';
            const value = await item.work(tx);
            await tx.end();
            outcomes.push({ ok: true, value });
          } catch (err) {
            // Undoes this item alone, and ends the aborted state an error of PostgreSQL's leaves
            // the transaction in. If even that fails (the connection is gone), the group fails.
            outcomes.push({ ok: false, err });
            await tx.end().catch(() => undefined);
            count();
            await client.query('ROLLBACK TO SAVEPOINT w');
          }
        }
        opts.point?.(`group:${k}:before`);
        count();
        await checkCommitted(client.query('RELEASE SAVEPOINT w; COMMIT'));
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
        // Counted before it runs: a group that dies at its crash point keeps its number.
        const k = ++shared;
        try {
          await together(items, outcomes, k);
        } catch (err) {
          // Nothing of the group committed: a writer whose own write failed hears why, the others the group's error.
          items.forEach((item, i) => {
            const o = outcomes[i];
            item.reject(o !== undefined && !o.ok ? o.err : err);
          });
          continue;
        }
        commits += 1;
        try {
          opts.point?.(`group:${k}:after`);
        } catch (err) {
          // A crash point that throws (tests): durable, and nobody told so, as after a real crash.
          for (const item of items) item.reject(err);
          continue;
        }
        outcomes.forEach((o, i) => (o.ok ? items[i]!.resolve(o.value as never) : items[i]!.reject(o.err)));
      }
    } finally {
      flushing = false;
    }
  };

  return {
    submit<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
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
async function checkCommitted(result: Promise<pg.QueryResult | pg.QueryResult[]>): Promise<void> {
  const r = await result;
  const last = Array.isArray(r) ? r[r.length - 1] : r;
  if (last?.command !== 'COMMIT') throw new Error(`the transaction was rolled back by the server (COMMIT answered ${last?.command ?? 'nothing'})`);
}
