import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { DatabaseUnusableError, UsageError } from '../../errors.js';
import type { Durability } from '../sql.js';
import { parsePostgresUrl, scrubPassword, type PostgresTarget } from './url.js';

/** Where saga's tables live unless SAGA_PG_SCHEMA says otherwise. */
export const DEFAULT_PG_SCHEMA = 'saga';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

/** BIGINT and COUNT come back as numbers (our values fit in 2^53), NUMERIC (sums) too. */
const types = {
  getTypeParser(oid: number, format?: string) {
    if (oid === pg.types.builtins.INT8 || oid === pg.types.builtins.NUMERIC) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/**
 * A pool whose every connection has `search_path` set to saga's own schema (the SQL stays
 * unqualified, and nothing outside that schema is touched), and `durability: 'normal'` as
 * PostgreSQL's `synchronous_commit = off` (same trade-off as SQLite's). The first connection is
 * made here so that an unreachable server is one clear error.
 */
export async function openPostgres(url: string, opts: { durability?: Durability; max?: number; schema?: string } = {}): Promise<Pool> {
  const { durability = 'full', max = 20, schema = DEFAULT_PG_SCHEMA } = opts;
  const target = parsePostgresUrl(url);
  const ssl = sslOption(target);
  // saga's own settings come last: for one setting the last wins, so a URL's `options` cannot move
  // saga's tables out of its schema.
  const options = [...(target.options === undefined ? [] : [target.options]), `-c search_path=${schema}`, ...(durability === 'normal' ? ['-c synchronous_commit=off'] : [])].join(' ');
  const connect = async (withSsl: typeof ssl): Promise<Pool> => {
    const pool = new pg.Pool({ connectionString: target.connectionString, max, types, connectionTimeoutMillis: 10_000, options, pipeline: true, ...(withSsl === undefined ? {} : { ssl: withSsl }) });
    // An idle client that errors (server restart) must not crash the process.
    pool.on('error', () => undefined);
    try {
      (await pool.connect()).release();
      return pool;
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
  };
  try {
    return await connect(ssl).catch((err: Error) => {
      // libpq's `prefer`: TLS if the server offers it, else a plain connection.
      if (target.sslMode === 'prefer' && /does not support SSL/i.test(err.message)) return connect(false);
      throw err;
    });
  } catch (err) {
    const why = scrubPassword((err as Error).message, target.password);
    throw new DatabaseUnusableError(`cannot connect to ${target.label}: ${why}; check the URL and that the server is running`);
  }
}

/**
 * libpq's `sslmode` (and its certificate files) as pg's `ssl` option. pg's own reading of
 * `sslmode` differs from libpq's and prints a multi-line warning, so pg never sees it.
 * `require` encrypts without checking the certificate, unless a root certificate is given (then it
 * is checked, as `verify-ca`); `verify-ca` checks the chain; `verify-full` also the host name.
 */
function sslOption(target: PostgresTarget): ConnectionOptions | false | undefined {
  const read = (what: string, path: string | undefined) => {
    if (path === undefined) return {};
    try {
      return { [what]: readFileSync(path, 'utf8') };
    } catch (err) {
      throw new UsageError(`cannot read the certificate file ${path} named in the database URL (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): fix the path`, 'bad_path');
    }
  };
  const files: ConnectionOptions = { ...read('ca', target.sslFiles.rootcert), ...read('cert', target.sslFiles.cert), ...read('key', target.sslFiles.key) };
  const chainOnly: ConnectionOptions = { ...files, checkServerIdentity: () => undefined };
  switch (target.sslMode) {
    case undefined:
      return Object.keys(files).length > 0 ? files : undefined;
    case 'disable':
    case 'allow':
      return false;
    case 'prefer':
    case 'require':
      return files.ca === undefined ? { ...files, rejectUnauthorized: false } : chainOnly;
    case 'verify-ca':
      return chainOnly;
    case 'verify-full':
      return files;
  }
}
