import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Durability } from '../sql.js';
import { pragma, type Db } from './open.js';

/**
 * WAL checkpoints off the hot path, for the commands that run for long (`saga serve`, `saga bench`,
 * `saga recover --watch`). SQLite copies the write-ahead log back into the database file every
 * 1000 pages, inside whichever commit crosses that mark: a commit that takes milliseconds instead
 * of microseconds, on the thread every saga of the process waits on. Here a worker thread with a
 * connection of its own runs a PASSIVE checkpoint (it never blocks a writer) every `intervalMs`,
 * so the commits of the main thread only append to the log. The main connection keeps an
 * automatic checkpoint as a backstop, at a mark the worker should never let the log reach.
 *
 * A short command (`saga checkout`) starts no worker: its one or two commits never reach the mark,
 * and a thread would cost more at start than it saves.
 */
export interface Checkpointer {
  stop(): Promise<void>;
}

/** Pages the log may grow to before a commit of the main thread checkpoints after all (64 MiB). */
const BACKSTOP_PAGES = 16_384;

// Plain JavaScript, so it runs the same from the sources and from the bundle. Its database and
// statement stay referenced for the worker's life (see kept-database.ts for why that matters).
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path, { fileMustExist: true, timeout: 0 });
const kept = [db];
kept.push(db.prepare('PRAGMA synchronous = ' + workerData.synchronous));
kept[1].run();
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
kept.push(checkpoint);
let told = false;
const tick = () => {
  try { checkpoint.get(); } catch (err) {
    // Busy (another checkpoint is running): the next tick will do. Anything else is said once.
    if (!String(err && err.code).startsWith('SQLITE_BUSY') && !told) { told = true; parentPort.postMessage({ failed: String(err && err.message) }); }
  }
};
const timer = setInterval(tick, workerData.intervalMs);
parentPort.on('message', () => { clearInterval(timer); tick(); db.close(); parentPort.postMessage({ stopped: true }); });
`;

export function startCheckpointer(db: Db, path: string, durability: Durability, intervalMs = 100): Checkpointer | undefined {
  if (path === ':memory:') return undefined;
  let worker: Worker;
  try {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    worker = new Worker(WORKER, { eval: true, workerData: { module, path, intervalMs, synchronous: durability === 'full' ? 'FULL' : 'NORMAL' } });
  } catch {
    // No worker (no threads here, a module that cannot be found): checkpoints stay in the commits.
    return undefined;
  }
  worker.unref();
  pragma(db, `wal_autocheckpoint = ${BACKSTOP_PAGES}`);
  let running = true;
  // A worker that cannot do its job hands the checkpoints back to the commits, as without it.
  const giveBack = () => {
    running = false;
    if (db.open) pragma(db, 'wal_autocheckpoint = 1000');
  };
  worker.on('error', giveBack);
  worker.on('message', (m: { failed?: string }) => {
    if (m.failed !== undefined) giveBack();
  });
  let stopped: Promise<void> | undefined;
  return {
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        if (!running) return void worker.terminate().then(() => resolve(), () => resolve());
        worker.on('message', (m: { stopped?: boolean }) => m.stopped && void worker.terminate().then(() => resolve(), () => resolve()));
        worker.once('exit', () => resolve());
        worker.postMessage('stop');
      }).then(giveBack)),
  };
}
