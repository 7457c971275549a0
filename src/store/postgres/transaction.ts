import type { Pool, PoolClient } from './open.js';

/**
 * One pooled client for `fn`, handed back afterwards, or closed when `fn` marked it broken (a
 * failed ROLLBACK or unlock). A checked-out client has no error listener of the pool's: a
 * connection lost between two queries must fail the next query, not crash the process with an
 * unhandled 'error' event.
 */
export async function withClient<T>(pool: Pool, fn: (client: PoolClient, markBroken: (err: Error) => void) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const markBroken = (err: Error) => {
    broken = err;
  };
  client.on('error', markBroken);
  try {
    return await fn(client, markBroken);
  } finally {
    client.removeListener('error', markBroken);
    client.release(broken);
  }
}

/** BEGIN, fn, COMMIT on a client (ROLLBACK on any error; a client whose ROLLBACK fails is marked broken). */
export async function transactionOn<T>(client: PoolClient, markBroken: (err: Error) => void, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(markBroken);
    throw err;
  }
}

/** A PostgreSQL transaction on one pooled client: BEGIN, fn, COMMIT (ROLLBACK on any error). */
export function inTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  return withClient(pool, (client, markBroken) => transactionOn(client, markBroken, () => fn(client)));
}
