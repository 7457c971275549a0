import type Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseUnusableError, UsageError } from '../../errors.js';
import type { Durability } from '../sql.js';
import { openKeptDatabase } from './kept-database.js';
import { registerLockWait, SLICE_MS, whenUnlockedSync, type OnLockWait } from './lock-wait.js';

export type Db = Database.Database;

/** A pragma's value (or nothing, for a setting), through a statement kept for life (see kept-database.ts). */
export function pragma(db: Db, text: string): unknown {
  const stmt = db.prepare(`PRAGMA ${text}`);
  return stmt.reader ? stmt.pluck().get() : stmt.run();
}

/**
 * Fails early, before anything is created, when `--db` cannot be used: a missing directory is the
 * user's to fix (exit 2); a file that exists but is not SQLite is unusable (exit 1).
 */
export function checkDatabasePath(path: string): { exists: boolean } {
  if (path === ':memory:') return { exists: false };
  const dir = dirname(resolve(path));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UsageError(`the directory of --db ${path} does not exist: create ${dir} first or choose another path`, 'bad_path');
  }
  if (!existsSync(path)) return { exists: false };
  const stat = statSync(path);
  if (stat.isDirectory()) throw new UsageError(`--db ${path} is a directory: give a file path such as ${path}/saga.db`, 'bad_path');
  // An empty file is an empty SQLite database: as good as none.
  return { exists: stat.size > 0 };
}

/** A SQLite file with tables but no saga schema belongs to another program: never touch it. */
function refuseForeignDatabase(db: Db, path: string): void {
  if (pragma(db, 'user_version') !== 0) return;
  const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).all() as { name: string }[]).map((t) => t.name);
  if (tables.length > 0 && !tables.includes('schema_migrations')) {
    throw new DatabaseUnusableError(`${path} is another program's SQLite database (tables: ${tables.slice(0, 5).join(', ')}): point --db at another file`);
  }
}

/**
 * Opens a SQLite database for saga: WAL (readers never block the writer, and a crash loses
 * nothing committed), a busy wait so concurrent processes queue for the write lock instead of
 * failing (in slices, telling `onLockWait` when one runs long: see lock-wait.ts), and the chosen durability (`full` fsyncs each commit; `normal` survives a process
 * crash but may lose the last commits on power loss).
 */
export function openSqlite(path: string, opts: { durability: Durability; mustExist?: boolean; onLockWait?: OnLockWait }): Db {
  let db: Db | undefined;
  try {
    const opened = openKeptDatabase(path, { fileMustExist: opts.mustExist ?? false, timeout: SLICE_MS });
    db = opened;
    registerLockWait(opened, path, opts.onLockWait);
    whenUnlockedSync(opened, () => {
      refuseForeignDatabase(opened, path);
      pragma(opened, 'journal_mode = WAL');
      pragma(opened, `synchronous = ${opts.durability === 'full' ? 'FULL' : 'NORMAL'}`);
      pragma(opened, 'foreign_keys = ON');
    });
    return opened;
  } catch (err) {
    db?.close();
    const code = (err as { code?: string }).code ?? '';
    if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
      throw new DatabaseUnusableError(`${path} is not a saga database (not a readable SQLite file): point --db at another path or move the file away`);
    }
    if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code === 'SQLITE_PERM') {
      throw new DatabaseUnusableError(`cannot open ${path} for writing (${code}): saga needs to write the file and its directory; check their permissions or choose another --db`);
    }
    throw err;
  }
}
