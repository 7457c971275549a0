import { randomUUID } from 'node:crypto';
import pg from 'pg';

/** Creates a database on the test server (empty, or a copy of `template`) and returns its URL. */
export async function createPostgresDatabase(adminUrl: string, template?: string): Promise<string> {
  const name = `saga_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}${template === undefined ? '' : ` TEMPLATE ${template}`}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}


/** Runs `fn` on a connection of its own to `url` (test set-up and checks, outside saga). */
export async function withPg<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
