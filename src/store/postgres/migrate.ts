import { readFileSync } from 'node:fs';
import { listMigrations, migrationsDir, refuseNewerSchema } from '../migrations.js';
import { inTransaction, type Pool } from './connect.js';

/** Any fixed number: every saga process migrating one database takes this advisory lock. */
const MIGRATION_LOCK = 74_112_024;

/**
 * Applies pending migrations, each with its `schema_migrations` row in one transaction that
 * first takes a transaction-scoped advisory lock, so processes migrating at once queue up and
 * each file is applied exactly once.
 */
export async function migratePostgres(pool: Pool, label: string, dir: string = migrationsDir('postgres')): Promise<string[]> {
  const migrations = listMigrations(dir);
  const latest = migrations.at(-1)?.version ?? 0;
  const currentVersion = async (q: Pick<Pool, 'query'>) => {
    const exists = await q.query(`SELECT to_regclass('schema_migrations') IS NOT NULL AS present`);
    if (!exists.rows[0].present) return 0;
    return Number((await q.query('SELECT coalesce(max(version), 0) AS v FROM schema_migrations')).rows[0].v);
  };
  const start = await currentVersion(pool);
  refuseNewerSchema(start, latest, label);
  if (start === latest) return [];
  const applied: string[] = [];
  for (const m of migrations) {
    await inTransaction(pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const now = await currentVersion(client);
      refuseNewerSchema(now, latest, label);
      if (now >= m.version) return;
      await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
      await client.query(readFileSync(m.path, 'utf8'));
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
      applied.push(m.name);
    });
  }
  return applied;
}
