import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseUnusableError } from '../../errors.js';
import { PACKAGE_ROOT } from '../../paths.js';
import type { Db } from './open.js';

export const SQLITE_MIGRATIONS = join(PACKAGE_ROOT, 'migrations', 'sqlite');

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly path: string;
}

export function listMigrations(dir: string): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 4)), name: f.replace(/\.sql$/, ''), path: `${dir}/${f}` }));
}

/**
 * Applies the migrations the database does not have yet, in order, each together with its
 * bookkeeping (a `schema_migrations` row and `PRAGMA user_version`) in one transaction that takes
 * the write lock up front, so two processes migrating at once apply each file exactly once.
 * Returns the names applied; rerunning applies nothing.
 */
export function migrate(db: Db, dir: string = SQLITE_MIGRATIONS, label = 'the database'): string[] {
  const migrations = listMigrations(dir);
  const latest = migrations.at(-1)?.version ?? 0;
  const current = () => db.pragma('user_version', { simple: true }) as number;
  refuseNewer(current(), latest, label);
  if (current() === latest) return [];
  const applied: string[] = [];
  for (const m of migrations) {
    db.transaction(() => {
      const now = current();
      refuseNewer(now, latest, label);
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

function refuseNewer(current: number, latest: number, label: string): void {
  if (current > latest) {
    throw new DatabaseUnusableError(
      `${label} has schema version ${current}, made by a newer saga (this one knows up to ${latest}): upgrade saga or use another --db`,
    );
  }
}
