/**
 * The hand-written PostgreSQL baseline for `npm run bench`: the same business writes and durable
 * log records as the engine's checkout, through `pg`, one transaction per step (see
 * baseline.ts for the SQLite twin and the list of transactions). The payment provider is the
 * same PostgreSQL provider the engine calls.
 */
import { newSagaId } from '../../src/engine/saga-id.js';
import { postgresPaymentProvider } from '../../src/checkout/payment-provider-postgres.js';
import type { Pool, PoolClient } from '../../src/store/postgres/open.js';
import { inTransaction } from '../../src/store/postgres/transaction.js';
import { checkoutsPerSecond } from './baseline.js';

export async function postgresBaselineCheckouts(pool: Pool, n: number, concurrency: number): Promise<number> {
  const provider = postgresPaymentProvider(pool);
  const price = Number((await pool.query('SELECT price_cents FROM products WHERE product_id = 101')).rows[0].price_cents);
  await pool.query('UPDATE inventory SET stock = stock + $1 WHERE product_id = 101', [n]);
  await pool.query('UPDATE products SET seeded_stock = seeded_stock + $1 WHERE product_id = 101', [n]);
  await pool.query('UPDATE provider_accounts SET balance_cents = balance_cents + $1, opening_balance_cents = opening_balance_cents + $1 WHERE customer_id = 1', [n * price]);

  const event = (c: PoolClient, sagaId: string, step: string, index: number, kind: string, key: string | null = null) =>
    c.query(`INSERT INTO saga_events (saga_id, step, step_index, phase, event, attempt, at, duration_ms, idempotency_key) VALUES ($1, $2, $3, 'action', $4, 1, $5, $6, $7)`,
      [sagaId, step, index, kind, Date.now(), kind === 'succeeded' ? 0 : null, key]);
  const renew = (c: PoolClient, sagaId: string) =>
    c.query('UPDATE sagas SET lease_until = $1, updated_at = $2 WHERE saga_id = $3 AND owner_id = $4', [Date.now() + 30_000, Date.now(), sagaId, 'baseline']);
  const local = async (c: PoolClient, sagaId: string, step: string, index: number, writes: () => Promise<void>) => {
    await renew(c, sagaId);
    await event(c, sagaId, step, index, 'started');
    await writes();
    await event(c, sagaId, step, index, 'succeeded');
  };
  const input = JSON.stringify({ productId: 101, qty: 1, customerId: 1, unitPriceCents: price, amountCents: price });

  const one = async () => {
    const sagaId = newSagaId(); // the same ids as the engine's
    const key = `${sagaId}:payment`;
    await inTransaction(pool, async (c) => {
      const t = Date.now();
      await c.query(`INSERT INTO sagas (saga_id, definition, input, status, owner_id, owner_host, owner_pid, lease_until, created_at, updated_at)
        VALUES ($1, 'checkout', $2, 'running', 'baseline', 'bench', $3, $4, $5, $6)`, [sagaId, input, process.pid, t + 30_000, t, t]);
      await local(c, sagaId, 'inventory', 0, async () => {
        if ((await c.query('UPDATE inventory SET stock = stock - 1 WHERE product_id = 101 AND stock >= 1')).rowCount !== 1) throw new Error('out of stock');
        await c.query(`INSERT INTO reservations (saga_id, product_id, qty, status, created_at, updated_at) VALUES ($1, 101, 1, 'held', $2, $2)`, [sagaId, t]);
      });
    });
    await inTransaction(pool, async (c) => {
      await renew(c, sagaId);
      await event(c, sagaId, 'payment', 1, 'started', key);
    });
    const charge = await provider.charge({ key, customerId: 1, amountCents: price });
    await inTransaction(pool, async (c) => {
      await renew(c, sagaId);
      await event(c, sagaId, 'payment', 1, 'succeeded');
      await c.query(`INSERT INTO payments (saga_id, customer_id, amount_cents, provider_charge_id, status, created_at, updated_at) VALUES ($1, 1, $2, $3, 'charged', $4, $4)`, [sagaId, price, charge.chargeId, Date.now()]);
    });
    await inTransaction(pool, (c) => local(c, sagaId, 'order', 2, async () => {
      await c.query(`INSERT INTO orders (saga_id, customer_id, product_id, qty, amount_cents, status, created_at, updated_at) VALUES ($1, 1, 101, 1, $2, 'confirmed', $3, $3)`, [sagaId, price, Date.now()]);
    }));
    await inTransaction(pool, async (c) => {
      await local(c, sagaId, 'shipping', 3, async () => {
        const r = await c.query(`INSERT INTO shipments (saga_id, order_id, status, created_at, updated_at) SELECT saga_id, order_id, 'scheduled', $1::bigint, $1::bigint FROM orders WHERE saga_id = $2 AND status = 'confirmed'`, [Date.now(), sagaId]);
        if (r.rowCount !== 1) throw new Error('no order');
      });
      await c.query(`UPDATE sagas SET status = 'completed', ended_at = $1, updated_at = $1, owner_id = NULL, owner_pid = NULL, owner_host = NULL, lease_until = NULL WHERE saga_id = $2`, [Date.now(), sagaId]);
    });
  };

  return checkoutsPerSecond(n, concurrency, one);
}

/**
 * The minimal PostgreSQL baseline, the twin of baseline.ts `minimalCheckouts`: five one-row
 * transactions per checkout with plain pg and no engine, no saga log, no provider: the floor any
 * hand-written code that commits each step could reach. 1. the saga row, 2. reserve stock, 3. the
 * payment, 4. the order, 5. the shipment. Each is BEGIN, the statement, COMMIT on a pooled
 * connection, as `inTransaction` does for the engine.
 */
export async function postgresMinimalCheckouts(pool: Pool, n: number, concurrency: number): Promise<number> {
  await pool.query('UPDATE inventory SET stock = stock + $1 WHERE product_id = 101', [n]);
  const one = async () => {
    const id = newSagaId();
    const t = Date.now();
    await inTransaction(pool, (c) => c.query(`INSERT INTO sagas (saga_id, definition, input, status, created_at, updated_at) VALUES ($1, 'checkout', '{}', 'completed', $2, $2)`, [id, t]));
    await inTransaction(pool, async (c) => {
      if ((await c.query('UPDATE inventory SET stock = stock - 1 WHERE product_id = 101 AND stock >= 1')).rowCount !== 1) throw new Error('out of stock');
    });
    await inTransaction(pool, (c) => c.query(`INSERT INTO payments (saga_id, customer_id, amount_cents, provider_charge_id, status, created_at, updated_at) VALUES ($1, 1, 100, $2, 'charged', $3, $3)`, [id, `ch_${id}`, t]));
    const orderId = await inTransaction(pool, async (c) =>
      (await c.query(`INSERT INTO orders (saga_id, customer_id, product_id, qty, amount_cents, status, created_at, updated_at) VALUES ($1, 1, 101, 1, 100, 'confirmed', $2, $2) RETURNING order_id`, [id, t])).rows[0].order_id as number);
    await inTransaction(pool, (c) => c.query(`INSERT INTO shipments (saga_id, order_id, status, created_at, updated_at) VALUES ($1, $2, 'scheduled', $3, $3)`, [id, orderId, t]));
  };
  return checkoutsPerSecond(n, concurrency, one);
}
