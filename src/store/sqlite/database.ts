import type { SqlWrite } from '../../engine/definition.js';
import type { SqlDatabase } from '../sql.js';
import { whenUnlocked } from './lock-wait.js';
import type { Db } from './open.js';
import { statementCache } from './statements.js';

/** better-sqlite3 behind the portable interface: every call runs synchronously, results as promises. */
export function sqliteDatabase(db: Db, label: string): SqlDatabase {
  const stmt = statementCache(db);
  const batch = db.transaction((writes: readonly SqlWrite[]) => writes.map((w) => stmt(w.sql).run(...(w.params as unknown[])).changes));
  return {
    dialect: 'sqlite',
    label,
    all: <T>(sql: string, params: readonly unknown[] = []) => whenUnlocked(db, () => stmt(sql).all(...(params as unknown[])) as T[]),
    get: <T>(sql: string, params: readonly unknown[] = []) => whenUnlocked(db, () => stmt(sql).get(...(params as unknown[])) as T | undefined),
    batch: (writes) => whenUnlocked(db, () => batch.immediate(writes)),
    // Not cached: such statements (VACUUM) are rare, and a prepared VACUUM holds nothing worth keeping.
    run: (sql) => whenUnlocked(db, () => db.prepare(sql).run().changes),
    close: async () => {
      db.close();
    },
  };
}
