import type { SqlWrite } from '../../engine/definition.js';
import type { Pool, PoolClient } from './open.js';
import { toNumberedPlaceholders } from './placeholders.js';

const translated = new Map<string, string>();

/** Translates each SQL text once per process and reuses it: the portable `?` placeholders as PostgreSQL's `$1, $2, …`. */
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
