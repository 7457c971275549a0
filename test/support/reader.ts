import { openKeptDatabase } from '../../src/store/sqlite/kept-database.js';
import pg from 'pg';
import { toNumberedPlaceholders } from '../../src/store/postgres/placeholders.js';

/** Reads (and, for tamper tests, writes) a saga database by its --db value, whichever kind it is. */
export interface Reader {
  all<T>(sql: string, params?: unknown[]): Promise<T[]>;
  run(sql: string, params?: unknown[]): Promise<void>;
  close(): Promise<void>;
}

export async function openReader(dbArg: string): Promise<Reader> {
  if (/^postgres(ql)?:\/\//.test(dbArg)) {
    // saga's tables live in the `saga` schema (the CLI's default SAGA_PG_SCHEMA).
    const client = new pg.Client({ connectionString: dbArg, options: '-c search_path=saga' });
    await client.connect();
    return {
      all: async <T>(sql: string, params: unknown[] = []) => (await client.query(toNumberedPlaceholders(sql), params)).rows as T[],
      run: async (sql, params = []) => void (await client.query(toNumberedPlaceholders(sql), params)),
      close: () => client.end(),
    };
  }
  const db = openKeptDatabase(dbArg, { fileMustExist: true });
  return {
    all: async <T>(sql: string, params: unknown[] = []) => db.prepare(sql).all(...params) as T[],
    run: async (sql, params = []) => void db.prepare(sql).run(...params),
    close: async () => void db.close(),
  };
}
