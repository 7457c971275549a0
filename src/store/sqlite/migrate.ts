import { readFileSync } from 'node:fs';
import { listMigrations, migrationsDir, refuseNewerSchema } from '../migrations.js';
import type { Db } from './open.js';

/**
 * Applies the migrations the database does not have yet, in order, each together with its
 * bookkeeping (a `schema_migrations` row and `PRAGMA user_version`, read at start-up without
 * touching a table) in one transaction that takes the write lock up front, so two processes
 * migrating at once apply each file exactly once. Returns the names applied.
 */
export function migrate(db: Db, dir: string = migrationsDir('sqlite'), label = 'the database'): string[] {
  const migrations = listMigrations(dir);
  const latest = migrations.at(-1)?.version ?? 0;
  const current = () => db.pragma('user_version', { simple: true }) as number;
  refuseNewerSchema(current(), latest, label);
  if (current() === latest) return [];
  const applied: string[] = [];
  for (const m of migrations) {
    db.transaction(() => {
      const now = current();
      refuseNewerSchema(now, latest, label);
      if (now >= m.version) return; // another process applied it meanwhile
      db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
      db.exec(readFileSync(m.path, 'utf8'));
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      db.pragma(`user_version = ${m.version}`);
      applied.push(m.name);
    }).immediate();
  }
  return applied;
}
