import type Database from 'better-sqlite3';

/**
 * Waiting for another process's write lock on a SQLite file. better-sqlite3's busy wait is native
 * and synchronous: for as long as it lasts, the process can neither print nor handle Ctrl-C. So a
 * connection waits `SLICE_MS` at a time; between slices the event loop turns (signals are handled,
 * leases renewed), and after the first slice whoever opened the database is told, once, so it can
 * say what the process is waiting for. The whole wait is still bounded by `BUDGET_MS`, after which
 * SQLITE_BUSY reaches the caller as before.
 */
export const SLICE_MS = 1000;
export const BUDGET_MS = 30_000;

/** Told once per connection, the first time one of its statements waits longer than a slice. */
export type OnLockWait = (wait: { readonly database: string; readonly budgetMs: number }) => void;

interface Waiting {
  readonly database: string;
  readonly onWait?: OnLockWait;
  told: boolean;
}

// Keyed by connection, so every module that writes through one (the saga log, the payment
// provider, plain batches) waits the same way without each being handed the callback.
const waits = new WeakMap<Database.Database, Waiting>();

/** Called by `openSqlite` on a connection opened with a busy timeout of SLICE_MS. */
export function registerLockWait(db: Database.Database, database: string, onWait?: OnLockWait): void {
  waits.set(db, { database, ...(onWait === undefined ? {} : { onWait }), told: false });
}

export function isBusy(err: unknown): boolean {
  return String((err as { code?: unknown }).code ?? '').startsWith('SQLITE_BUSY');
}

/**
 * Runs `fn` (a whole transaction, or one statement outside any) until it gets past another
 * process's lock. On SQLITE_BUSY nothing of it was applied (better-sqlite3 rolls a transaction
 * back on a throw), so running it again is safe.
 */
export async function whenUnlocked<T>(db: Database.Database, fn: () => T): Promise<T> {
  const started = Date.now();
  for (;;) {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err) || Date.now() - started >= BUDGET_MS - SLICE_MS) throw err;
      tell(db);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

/**
 * `whenUnlocked` for the few synchronous paths (opening, migrating): told after the first slice,
 * then one native wait for the rest of the budget.
 */
export function whenUnlockedSync<T>(db: Database.Database, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (!isBusy(err)) throw err;
    tell(db);
    setBusyTimeout(db, BUDGET_MS - SLICE_MS);
    try {
      return fn();
    } finally {
      setBusyTimeout(db, SLICE_MS);
    }
  }
}

function tell(db: Database.Database): void {
  const w = waits.get(db);
  if (w === undefined || w.told) return;
  w.told = true;
  w.onWait?.({ database: w.database, budgetMs: BUDGET_MS });
}

function setBusyTimeout(db: Database.Database, ms: number): void {
  const stmt = db.prepare(`PRAGMA busy_timeout = ${ms}`);
  if (stmt.reader) stmt.get();
  else stmt.run();
}
