import pg from 'pg';
import type { SqlWrite } from '../../engine/definition.js';
import { DatabaseUnusableError } from '../../errors.js';
import { toNumberedPlaceholders, type SqlDatabase } from '../sql.js';
import { redactUrl } from './url.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

/** BIGINT and COUNT come back as numbers (our values fit in 2^53), NUMERIC (sums) too. */
const types = {
  getTypeParser(oid: number, format?: string) {
    if (oid === pg.types.builtins.INT8 || oid === pg.types.builtins.NUMERIC) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/** `durability: 'normal'` maps to PostgreSQL's `synchronous_commit = off` (same trade-off as SQLite's). */
export async function openPool(url: string, durability: 'full' | 'normal' = 'full', max = 20): Promise<Pool> {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    types,
    connectionTimeoutMillis: 10_000,
    ...(durability === 'normal' ? { options: '-c synchronous_commit=off' } : {}),
  });
  // An idle client that errors (server restart) must not crash the process.
  pool.on('error', () => undefined);
  try {
    const client = await pool.connect();
    client.release();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new DatabaseUnusableError(`cannot connect to ${redactUrl(url)}: ${(err as Error).message}; check the URL and that the server is running`);
  }
  return pool;
}

/** A PostgreSQL transaction on one pooled client: BEGIN, fn, COMMIT (ROLLBACK on any error). */
export async function inTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // A connection whose ROLLBACK fails is not handed back to the pool for the next caller.
    await client.query('ROLLBACK').catch((rollbackErr: Error) => (broken = rollbackErr));
    throw err;
  } finally {
    client.release(broken);
  }
}

const translated = new Map<string, string>();
export function pgSql(sql: string): string {
  let text = translated.get(sql);
  if (text === undefined) {
    text = toNumberedPlaceholders(sql);
    translated.set(sql, text);
  }
  return text;
}

export async function runWrite(client: PoolClient | Pool, w: SqlWrite): Promise<number> {
  const r = await client.query(pgSql(w.sql), w.params as unknown[]);
  return r.rowCount ?? 0;
}

export function postgresDatabase(pool: Pool, url: string): SqlDatabase {
  return {
    dialect: 'postgres',
    label: redactUrl(url),
    all: async <T>(sql: string, params: readonly unknown[] = []) => (await pool.query(pgSql(sql), params as unknown[])).rows as T[],
    get: async <T>(sql: string, params: readonly unknown[] = []) => (await pool.query(pgSql(sql), params as unknown[])).rows[0] as T | undefined,
    batch: (writes) =>
      inTransaction(pool, async (client) => {
        const changes: number[] = [];
        for (const w of writes) changes.push(await runWrite(client, w));
        return changes;
      }),
    close: () => pool.end(),
  };
}
