import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { writable } from '../../files.js';

/**
 * A SQLite database in WAL mode is written through three files: the database, its `-wal` log
 * and its `-shm` index, the last two created next to it (so its directory must be writable) and
 * deleted by the last connection to close. Even a reader needs to create `-shm`, and a read-only
 * connection leaves both files behind (owned by whoever read). So saga asks up front whether it
 * may write all of them, and refuses to write rather than fail half-way.
 *
 * Returns why saga cannot write the database at `path` (an existing file), or undefined when it can.
 */
export function whyUnwritable(path: string): string | undefined {
  const dir = dirname(resolve(path));
  if (!writable(path)) return 'the file is read-only';
  if (!writable(dir)) return `its directory ${dir} is read-only`;
  for (const suffix of ['-wal', '-shm']) {
    if (existsSync(path + suffix) && !writable(path + suffix)) return `${basename(path)}${suffix} beside it is read-only`;
  }
  return undefined;
}

/** Why saga cannot create a database at `path` (not there yet), or undefined when it can. */
export function whyUncreatable(path: string): string | undefined {
  const dir = dirname(resolve(path));
  return writable(dir) ? undefined : `its directory ${dir} is read-only`;
}

/**
 * A private copy of the database and its committed log (`-wal`, whose commits may not be in the
 * database file yet), for a command that only reads a database it cannot write: SQLite could not
 * open it in place without creating files beside it. Nobody can write a database whose directory
 * is read-only, but a file that is only read-only for us may be written by its owner meanwhile:
 * a copy during which either file changed is taken again.
 */
export function snapshotCopy(path: string): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'saga-read-only-'));
  const copy = join(dir, basename(path));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  const state = () => [path, `${path}-wal`].map((p) => (existsSync(p) ? `${statSync(p).size}:${statSync(p).mtimeMs}` : '-')).join(' ');
  try {
    for (let tries = 0; ; tries++) {
      const before = state();
      rmSync(`${copy}-wal`, { force: true });
      copyFileSync(path, copy);
      if (existsSync(`${path}-wal`)) copyFileSync(`${path}-wal`, `${copy}-wal`);
      // The copies keep the originals' modes; ours must be writable for SQLite to open them.
      for (const p of [copy, `${copy}-wal`]) if (existsSync(p)) chmodSync(p, 0o600);
      if (state() === before || tries === 4) break;
    }
    return { path: copy, remove };
  } catch (err) {
    remove();
    throw err;
  }
}
