import { randomUUID } from 'node:crypto';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseUnusableError, UsageError } from '../errors.js';
import { openKeptDatabase } from '../store/sqlite/kept-database.js';
import { isPostgresUrl, redactUrl } from '../store/postgres/url.js';

/**
 * Throwaway copies of one database, one per scenario. SQLite: a template file made with
 * `VACUUM INTO` (a consistent copy, triggers included, read without writing the source), copied
 * file by file. PostgreSQL: a template database made with `CREATE DATABASE … TEMPLATE`, and one
 * database per scenario made from it, dropped afterwards. `CopySource` is plain data, so a worker
 * process rebuilds the same copier from it.
 */
export type CopySource =
  | { readonly kind: 'sqlite'; readonly dir: string; readonly template: string }
  | { readonly kind: 'postgres'; readonly url: string; readonly template: string };

export interface Copies {
  readonly source: CopySource;
  /** A new copy of the template: its `--db` value. */
  make(): Promise<string>;
  drop(db: string): Promise<void>;
  /** Closes what this process opened (not the template: see `disposeTemplate`). */
  close(): Promise<void>;
}

/** The template copies are made from: of `db` when given, else of what `seedInto` creates. */
export async function makeTemplate(db: string | undefined, dir: string, seedInto: (db: string) => Promise<void>): Promise<CopySource> {
  if (db !== undefined && isPostgresUrl(db)) {
    const source: CopySource = { kind: 'postgres', url: db, template: `saga_explore_${randomUUID().replaceAll('-', '').slice(0, 12)}` };
    const name = new URL(db).pathname.slice(1) || 'postgres';
    await onServer(db, async (client) => {
      try {
        await client.query(`CREATE DATABASE ${ident(source.template)} TEMPLATE ${ident(decodeURIComponent(name))}`);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === '55006') throw new UsageError(`saga explore copies ${redactUrl(db)} with CREATE DATABASE … TEMPLATE, which PostgreSQL allows only while no other session is connected to it: stop them (or explore a copy of it)`, 'invalid_value');
        if (code === '42501') throw new UsageError(`saga explore makes a database per scenario, and the role in ${redactUrl(db)} may not create databases: use a role with CREATEDB`, 'invalid_value');
        throw err;
      }
    });
    return source;
  }
  const template = join(dir, 'template.db');
  if (db === undefined) {
    await seedInto(template);
  } else {
    // Kept for life, as every better-sqlite3 object saga makes (see kept-database.ts: Node 24).
    const src = openKeptDatabase(db, { readonly: true, fileMustExist: true });
    try {
      src.prepare('VACUUM INTO ?').run(template);
    } finally {
      src.close();
    }
  }
  return { kind: 'sqlite', dir, template };
}

export async function disposeTemplate(source: CopySource): Promise<void> {
  if (source.kind === 'sqlite') return rmSync(source.dir, { recursive: true, force: true });
  await onServer(source.url, (client) => client.query(`DROP DATABASE IF EXISTS ${ident(source.template)} WITH (FORCE)`));
}

let made = 0;

export function copiesOf(source: CopySource): Copies {
  if (source.kind === 'sqlite') {
    return {
      source,
      make: async () => {
        const copy = join(source.dir, `scenario-${process.pid}-${++made}.db`);
        copyFileSync(source.template, copy);
        return copy;
      },
      drop: async (db) => removeSqlite(db),
      close: async () => undefined,
    };
  }
  // One connection to the server's maintenance database, for CREATE and DROP DATABASE.
  let admin: Promise<import('pg').Client> | undefined;
  const client = () => (admin ??= connect(source.url));
  return {
    source,
    make: async () => {
      const name = `${source.template}_${++made}_${process.pid}`;
      await (await client()).query(`CREATE DATABASE ${ident(name)} TEMPLATE ${ident(source.template)}`);
      const url = new URL(source.url);
      url.pathname = `/${name}`;
      return url.href;
    },
    drop: async (db) => {
      await (await client()).query(`DROP DATABASE IF EXISTS ${ident(decodeURIComponent(new URL(db).pathname.slice(1)))} WITH (FORCE)`);
    },
    close: async () => {
      if (admin !== undefined) await (await admin).end();
    },
  };
}

function removeSqlite(path: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${path}${suffix}`, { force: true });
}

async function connect(url: string): Promise<import('pg').Client> {
  const { default: pg } = await import('pg');
  const maintenance = new URL(url);
  maintenance.pathname = '/postgres';
  const client = new pg.Client({ connectionString: maintenance.href });
  try {
    await client.connect();
  } catch (err) {
    throw new DatabaseUnusableError(`cannot connect to ${redactUrl(url)}: ${err instanceof Error ? err.message : String(err)}; check the URL and that the server is running`);
  }
  return client;
}

async function onServer<T>(url: string, fn: (client: import('pg').Client) => Promise<T>): Promise<T> {
  const client = await connect(url);
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
