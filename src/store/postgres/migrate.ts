import { readFileSync } from 'node:fs';
import type { SqlWrite } from '../../engine/definition.js';
import { listMigrations, migrationsDir, refuseNewerSchema } from '../migrations.js';
import { DEFAULT_PG_SCHEMA, type Pool, type PoolClient } from './open.js';
import { runWrite } from './statements.js';
import { transactionOn, withClient } from './transaction.js';

/** Any fixed number: with the schema's hash, the advisory lock every process migrating that schema takes. */
const MIGRATION_LOCK = 74_112_024;

export interface PostgresMigrateOptions {
  /** The schema the pool's search_path points at: created here, and the lock is per schema. */
  readonly schema?: string;
  readonly dir?: string;
  /** Rows a new database is created with, written in the transaction that creates it. */
  readonly initialWrites?: readonly SqlWrite[];
}

/**
 * Applies the pending migrations (and, for a new schema, `initialWrites`) in one transaction,
 * under a session-level advisory lock per schema. The lock is taken before the transaction
 * begins: a transaction that waited for a lock inside itself may still see the catalog as it was
 * before the wait (`relation "products" already exists`); one that begins after the lock is held
 * sees everything the previous holder committed. So processes migrating at once queue up, each
 * file is applied exactly once, and nobody sees the schema without its initial rows.
 * Returns the names applied; `created` when this call made the schema from nothing.
 */
export async function migratePostgres(pool: Pool, label: string, opts: PostgresMigrateOptions = {}): Promise<{ applied: string[]; created: boolean }> {
  const schema = opts.schema ?? DEFAULT_PG_SCHEMA;
  const migrations = listMigrations(opts.dir ?? migrationsDir('postgres'));
  const latest = migrations.at(-1)?.version ?? 0;
  const start = await currentVersion(pool);
  refuseNewerSchema(start, latest, label);
  if (start === latest) return { applied: [], created: false };
  // A connection that could not roll back or unlock is closed, which also drops its lock.
  return withClient(pool, async (client, markBroken) => {
    await client.query('SELECT pg_advisory_lock($1, hashtext($2))', [MIGRATION_LOCK, schema]);
    try {
      return await transactionOn(client, markBroken, () => applyPending(client, schema, migrations, latest, label, opts.initialWrites ?? []));
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [MIGRATION_LOCK, schema]).catch(markBroken);
    }
  });
}

async function applyPending(client: PoolClient, schema: string, migrations: ReturnType<typeof listMigrations>, latest: number, label: string, initialWrites: readonly SqlWrite[]) {
  const now = await currentVersion(client);
  refuseNewerSchema(now, latest, label);
  const applied: string[] = [];
  if (now === latest) return { applied, created: false };
  // The schema name was checked to be a plain identifier (parsePgSchema): no quoting needed.
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
  for (const m of migrations) {
    if (m.version <= now) continue;
    await client.query(readFileSync(m.path, 'utf8'));
    await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
    applied.push(m.name);
  }
  const created = now === 0;
  if (created) for (const w of initialWrites) await runWrite(client, w);
  return { applied, created };
}

async function currentVersion(q: Pick<Pool, 'query'>): Promise<number> {
  const exists = await q.query(`SELECT to_regclass('schema_migrations') IS NOT NULL AS present`);
  if (!exists.rows[0].present) return 0;
  return Number((await q.query('SELECT coalesce(max(version), 0) AS v FROM schema_migrations')).rows[0].v);
}
