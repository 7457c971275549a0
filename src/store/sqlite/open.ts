import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseUnusableError, UsageError } from '../../errors.js';

export type Durability = 'full' | 'normal';
export type Db = Database.Database;

/**
 * Fails early, before anything is created, when `--db` cannot be used: a missing directory is the
 * user's to fix (exit 2); a file that exists but is not SQLite is unusable (exit 1).
 */
export function checkDatabasePath(path: string): { exists: boolean } {
  if (path === ':memory:') return { exists: false };
  const dir = dirname(resolve(path));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UsageError(`the directory of --db ${path} does not exist: create ${dir} first or choose another path`);
  }
  if (!existsSync(path)) return { exists: false };
  if (statSync(path).isDirectory()) throw new UsageError(`--db ${path} is a directory: give a file path such as ${path}/saga.db`);
  return { exists: true };
}

/**
 * Opens a SQLite database for saga: WAL (readers never block the writer, and a crash loses
 * nothing committed), a busy timeout so concurrent processes queue for the write lock instead of
 * failing, and the chosen durability (`full` fsyncs each commit; `normal` survives a process
 * crash but may lose the last commits on power loss).
 */
export function openSqlite(path: string, opts: { durability: Durability; mustExist?: boolean }): Db {
  let db: Db | undefined;
  try {
    db = new Database(path, { fileMustExist: opts.mustExist ?? false, timeout: 30_000 });
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.durability === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    return db;
  } catch (err) {
    db?.close();
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
      throw new DatabaseUnusableError(`${path} is not a saga database (not a readable SQLite file): point --db at another path or move the file away`);
    }
    if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY' || code === 'SQLITE_PERM') {
      throw new DatabaseUnusableError(`cannot open ${path} (${code}): check its permissions or choose another --db`);
    }
    throw err;
  }
}
