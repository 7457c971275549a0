import type { SqlDatabase } from '../sql.js';
import { DEFAULT_PG_SCHEMA, type Pool } from './open.js';
import { runWrite, pgSql } from './statements.js';
import { inTransaction } from './transaction.js';
import { redactUrl } from './url.js';

/** A pg pool behind the portable interface: `batch` runs in one transaction on one pooled client. */
export function postgresDatabase(pool: Pool, url: string, schema: string = DEFAULT_PG_SCHEMA): SqlDatabase {
  return {
    dialect: 'postgres',
    label: schema === DEFAULT_PG_SCHEMA ? redactUrl(url) : `${redactUrl(url)} (schema ${schema})`,
    all: async <T>(sql: string, params: readonly unknown[] = []) => (await pool.query(pgSql(sql), params as unknown[])).rows as T[],
    get: async <T>(sql: string, params: readonly unknown[] = []) => (await pool.query(pgSql(sql), params as unknown[])).rows[0] as T | undefined,
    batch: (writes) =>
      inTransaction(pool, async (client) => {
        const changes: number[] = [];
        for (const w of writes) changes.push(await runWrite(client, w));
        return changes;
      }),
    run: async (sql) => (await pool.query(sql)).rowCount ?? 0,
    close: () => pool.end(),
  };
}
