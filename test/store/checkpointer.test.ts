/**
 * WAL checkpoints in a worker thread (src/store/sqlite/checkpointer.ts), on a real SQLite file: the
 * commits of the main connection only append to the log, and the worker copies it back into the
 * database file, which is how the file grows while the main connection's own automatic checkpoint
 * is pushed far out of the way.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startCheckpointer } from '../../src/store/sqlite/checkpointer.js';
import { openSqlite, pragma } from '../../src/store/sqlite/open.js';
import { tempDir } from '../support/cli.js';

/** Waits for `done`, giving up after `ms` (what is waited for is the worker's work, not a duration). */
async function until(done: () => boolean, ms = 20_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

describe('WAL checkpoints in a worker thread', () => {
  it('copies the log back into the database file while the main connection only appends; stop hands checkpoints back', async () => {
    const path = join(tempDir('saga-checkpointer-'), 'c.db');
    const db = openSqlite(path, { durability: 'normal' });
    try {
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)');
      pragma(db, 'wal_checkpoint(TRUNCATE)');
      const before = statSync(path).size;
      const checkpointer = startCheckpointer(db, path, 'normal', 20);
      expect(checkpointer).toBeDefined();
      // The main connection's own checkpoint now waits for 16,384 pages: far more than written here.
      expect(pragma(db, 'wal_autocheckpoint')).toBe(16_384);
      const insert = db.prepare('INSERT INTO t (body) VALUES (?)');
      for (let i = 0; i < 1500; i++) insert.run(Buffer.alloc(4000, i % 256));
      // About 1,500 pages went to the log; only a checkpoint moves them into the file.
      expect(await until(() => statSync(path).size > before + 1000 * 4096)).toBe(true);
      await checkpointer!.stop();
      await checkpointer!.stop(); // a second stop is answered too
      expect(pragma(db, 'wal_autocheckpoint')).toBe(1000);
      expect(db.prepare('SELECT count(*) FROM t').pluck().get()).toBe(1500);
    } finally {
      db.close();
    }
  });

  it('an in-memory database gets no worker', () => {
    const db = openSqlite(':memory:', { durability: 'normal' });
    try {
      expect(startCheckpointer(db, ':memory:', 'normal')).toBeUndefined();
    } finally {
      db.close();
    }
  });
});
