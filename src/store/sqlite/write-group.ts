import type { Db } from './open.js';
import { isBusy, whenUnlocked } from './lock-wait.js';
import { statementCache } from './statements.js';
import type { SagasInFlight, WriteGroupOptions } from '../group-commit.js';

/**
 * Group commit on one SQLite connection (docs/guarantees.md, rule 12). With several sagas in
 * flight in this process, a write is not committed on its own: it waits for the end of the
 * event-loop turn, and every write submitted by then commits in one `BEGIN IMMEDIATE`
 * transaction, one fsync for all of them. Each write runs in a savepoint of its own, so one that
 * throws (a saga that lost its lease, a simulated crash) is undone alone and the others commit.
 * A write whose error ends the whole transaction (SQLITE_FULL, an I/O error: SQLite rolls it all
 * back) is rejected alone too, and the others run again in a new one. Nobody's promise settles
 * before the COMMIT holding its write returned: nothing is acknowledged before it is durable.
 *
 * With one saga in flight there is nobody to wait for: the write commits at once, in its own
 * transaction, exactly as without grouping. A server sets `expectCompany` (group-commit.ts): there
 * the next requests are waiting to be read, and a turn lets them in.
 *
 * better-sqlite3 is synchronous, so the "turn" is what makes groups: while a transaction runs,
 * no other saga can progress, and a saga that committed at once would never share its fsync.
 * Every write's work must be safe to run again (it is, when another process's lock makes the
 * transaction wait and start over): it is a function of the database, not of what ran before.
 *
 * Order: a group waiting for another process's lock does not hold back later writes of other
 * sagas, which may commit first. Each saga has one write outstanding at a time, so its own writes
 * are never reordered.
 */
export interface WriteGroup {
  /** Runs `work` inside a transaction (shared, when others are waiting) and settles once that transaction committed. */
  submit<T>(work: () => T): Promise<T>;
  /** Transactions committed so far (a group counts once). */
  readonly commits: number;
}

interface Waiting {
  readonly work: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; err: unknown };

/** One write's error ended the shared transaction: SQLite rolled back everybody's work. */
class TransactionEnded extends Error {
  constructor(readonly index: number, readonly error: unknown) {
    super('a write ended the shared transaction');
  }
}

export function writeGroup(db: Db, inFlight: SagasInFlight, opts: WriteGroupOptions = {}): WriteGroup {
  const stmt = statementCache(db);
  let queue: Waiting[] = [];
  let scheduled = false;
  let commits = 0;
  let shared = 0;

  const alone = db.transaction((work: () => unknown) => work());
  // Each write in its own savepoint: what it did is undone alone when it throws.
  const together = db.transaction((items: readonly Waiting[], k: number): Outcome[] => {
    const outcomes = items.map((item, index): Outcome => {
      stmt('SAVEPOINT grouped').run();
      try {
        const value = item.work();
        stmt('RELEASE grouped').run();
        return { ok: true, value };
      } catch (err) {
        if (!db.inTransaction) throw new TransactionEnded(index, err);
        // Another process's lock met inside the transaction: the whole group waits and starts over.
        if (isBusy(err)) throw err;
        stmt('ROLLBACK TO grouped').run();
        stmt('RELEASE grouped').run();
        return { ok: false, err };
      }
    });
    opts.point?.(`group:${k}:before`);
    return outcomes;
  });

  const commitAlone = <T>(work: () => T): Promise<T> => whenUnlocked(db, () => alone.immediate(work) as T);
  const commitGroup = (items: readonly Waiting[], k: number): Promise<Outcome[]> =>
    items.length === 1
      ? commitAlone(items[0]!.work).then((value): Outcome[] => [{ ok: true, value }])
      : whenUnlocked(db, () => together.immediate(items, k));

  const flush = async (): Promise<void> => {
    scheduled = false;
    let items = queue;
    queue = [];
    // Counted before it runs: a group that dies at its crash point keeps its number.
    const k = items.length > 1 ? ++shared : shared;
    let outcomes: Outcome[];
    for (;;) {
      try {
        outcomes = await commitGroup(items, k);
        if (items.length > 1) opts.point?.(`group:${k}:after`);
        break;
      } catch (err) {
        if (err instanceof TransactionEnded) {
          items[err.index]!.reject(err.error);
          items = items.filter((_, i) => i !== err.index);
          if (items.length > 0) continue;
          return;
        }
        // The transaction itself failed (a COMMIT that could not be written, a lock never got, a
        // crash point): nothing of it is durable, and every writer in it is told so.
        for (const item of items) item.reject(err);
        return;
      }
    }
    commits += 1;
    outcomes.forEach((o, i) => (o.ok ? items[i]!.resolve(o.value) : items[i]!.reject(o.err)));
  };

  return {
    submit<T>(work: () => T): Promise<T> {
      // better-sqlite3 would quietly turn this commit into a savepoint of the open transaction,
      // and call it done before that transaction is.
      if (db.inTransaction) return Promise.reject(new Error('a commit was submitted inside an open transaction on the same connection'));
      if (inFlight.count <= 1 && queue.length === 0 && !inFlight.expectCompany) {
        return commitAlone(work).then((value) => {
          commits += 1;
          return value;
        });
      }
      return new Promise<T>((resolve, reject) => {
        queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
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
