import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseUnusableError } from '../errors.js';
import { PACKAGE_ROOT } from '../paths.js';
import type { Dialect } from './sql.js';

/**
 * Numbered SQL files, `migrations/<dialect>/NNNN_name.sql`, applied in order, never edited once
 * released. Each dialect's runner applies a file together with its bookkeeping in one transaction.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly path: string;
}

export function migrationsDir(dialect: Dialect): string {
  return join(PACKAGE_ROOT, 'migrations', dialect);
}

export function listMigrations(dir: string): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 4)), name: f.replace(/\.sql$/, ''), path: join(dir, f) }));
}

export function refuseNewerSchema(current: number, latest: number, label: string): void {
  if (current > latest) {
    throw new DatabaseUnusableError(
      `${label} has schema version ${current}, made by a newer saga (this one knows up to ${latest}): upgrade saga or use another --db`,
    );
  }
}
