import type { Db } from './open.js';
import { whenUnlocked } from './lock-wait.js';
import { statementCache } from './statements.js';

/**
 * Group commit on one SQLite connection (docs/guarantees.md, rule 12). With several sagas in
 * flight in this process, a write is not committed on its own: it waits for the end of the
 * event-loop turn, and every write submitted by then commits in one `BEGIN IMMEDIATE`
 * transaction, one fsync for all of them. Each write runs in a savepoint of its own, so one that
 * throws (a saga that lost its lease, a simulated crash) is undone alone and the others commit.
 * Nobody's promise settles before the shared COMMIT returned: nothing is acknowledged before it is
 * durable.
 *
 * With one saga in flight there is nobody to wait for: the write commits at once, in its own
 * transaction, exactly as without grouping.
 *
 * better-sqlite3 is synchronous, so the "turn" is what makes groups: while a transaction runs,
 * no other saga can progress, and a saga that committed at once would never share its fsync.
 */
export interface WriteGroup {
  /** Runs `work` inside a transaction (shared, when others are waiting) and settles once that transaction committed. */
  submit<T>(work: () => T): Promise<T>;
  /** Transactions committed so far (a group counts once). */
  readonly commits: number;
}

interface Waiting {
  readonly work: () => unknown;
  readonly resolve: (value: never) => void;
  readonly reject: (err: unknown) => void;
}

/** How many sagas this process drives at a time: what decides between "commit now" and "group". */
export interface InFlight {
  enter(): void;
  leave(): void;
  readonly count: number;
}

export function inFlightCounter(): InFlight {
  let count = 0;
  return {
    enter: () => void (count += 1),
    leave: () => void (count -= 1),
    get count() {
      return count;
    },
  };
}

export interface WriteGroupOptions {
  /**
   * Crash points inside a shared transaction, for tests: called with `group:<k>:before` once all of
   * the k-th shared transaction's writes ran and before its COMMIT, and with `group:<k>:after` once
   * it committed and before any of its writers is told.
   */
  readonly point?: (name: string) => void;
}

export function writeGroup(db: Db, inFlight: InFlight, opts: WriteGroupOptions = {}): WriteGroup {
  const stmt = statementCache(db);
  let queue: Waiting[] = [];
  let scheduled = false;
  let commits = 0;
  let shared = 0;

  const alone = db.transaction((work: () => unknown) => work());
  // Each write in its own savepoint: what it did is undone alone when it throws.
  const together = db.transaction((items: readonly Waiting[], k: number) => {
    const outcomes = items.map((item): { ok: true; value: unknown } | { ok: false; err: unknown } => {
      stmt('SAVEPOINT grouped').run();
      try {
        const value = item.work();
        stmt('RELEASE grouped').run();
        return { ok: true, value };
      } catch (err) {
        // An I/O error can end the whole transaction: then nothing of the group may commit.
        if (!db.inTransaction) throw err;
        stmt('ROLLBACK TO grouped').run();
        stmt('RELEASE grouped').run();
        return { ok: false, err };
      }
    });
    opts.point?.(`group:${k}:before`);
    return outcomes;
  });

  const flush = async (): Promise<void> => {
    scheduled = false;
    const items = queue;
    queue = [];
    let outcomes: ReturnType<typeof together>;
    // Counted before it runs: a group that dies at its crash point keeps its number.
    const k = items.length > 1 ? ++shared : shared;
    try {
      outcomes = items.length === 1 ? [{ ok: true, value: await whenUnlocked(db, () => alone.immediate(items[0]!.work)) }] : await whenUnlocked(db, () => together.immediate(items, k));
    } catch (err) {
      // The transaction itself failed (a COMMIT that could not be written, a lock never got):
      // nothing of it is durable, and every writer in it is told so.
      for (const item of items) item.reject(err);
      return;
    }
    commits += 1;
    if (items.length > 1) opts.point?.(`group:${k}:after`);
    outcomes.forEach((o, i) => (o.ok ? items[i]!.resolve(o.value as never) : items[i]!.reject(o.err)));
  };

  return {
    submit<T>(work: () => T): Promise<T> {
      if (inFlight.count <= 1 && queue.length === 0) {
        return whenUnlocked(db, () => alone.immediate(work)).then((value) => {
          commits += 1;
          return value as T;
        });
      }
      return new Promise<T>((resolve, reject) => {
        queue.push({ work, resolve: resolve as (v: never) => void, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(() => void flush());
        }
      });
    },
    get commits() {
      return commits;
    },
  };
}
