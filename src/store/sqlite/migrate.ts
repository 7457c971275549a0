import { readFileSync } from 'node:fs';
import type { SqlWrite } from '../../engine/definition.js';
import { listMigrations, migrationsDir, refuseNewerSchema } from '../migrations.js';
import { whenUnlockedSync } from './lock-wait.js';
import { pragma, type Db } from './open.js';

export interface SqliteMigrateOptions {
  readonly dir?: string;
  /** Rows a new database is created with, written in the transaction that creates the schema. */
  readonly initialWrites?: readonly SqlWrite[];
}

/**
 * Applies the migrations the database does not have yet, with their bookkeeping (a
 * `schema_migrations` row and `PRAGMA user_version`, read at start-up without touching a table)
 * and, for a new database, `initialWrites`, in one transaction that takes the write lock up
 * front: processes migrating at once apply each file exactly once, and none ever sees the schema
 * without its initial rows. Returns the names applied; `created` when this call made the schema.
 */
export function migrateSqlite(db: Db, label: string, opts: SqliteMigrateOptions = {}): { applied: string[]; created: boolean } {
  const migrations = listMigrations(opts.dir ?? migrationsDir('sqlite'));
  const latest = migrations.at(-1)?.version ?? 0;
  const current = () => pragma(db, 'user_version') as number;
  refuseNewerSchema(current(), latest, label);
  if (current() === latest) return { applied: [], created: false };
  return whenUnlockedSync(db, () => db.transaction(() => {
    const now = current();
    refuseNewerSchema(now, latest, label);
    const applied: string[] = [];
    if (now === latest) return { applied, created: false }; // another process migrated meanwhile
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    for (const m of migrations) {
      if (m.version <= now) continue;
      db.exec(readFileSync(m.path, 'utf8'));
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      applied.push(m.name);
    }
    pragma(db, `user_version = ${latest}`);
    const created = now === 0;
    if (created) for (const w of opts.initialWrites ?? []) db.prepare(w.sql).run(...(w.params as unknown[]));
    return { applied, created };
  }).immediate());
}
