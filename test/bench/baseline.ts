/**
 * The hand-written baseline for `npm run bench`: one checkout with plain better-sqlite3 and no
 * engine, making the same business writes and the same durable log records (docs/guarantees.md,
 * rules 1 and 2), one transaction per step as a straightforward implementation would:
 *   1. saga row + reserve stock + its log records
 *   2. payment write-ahead record (rule 1)
 *   3. the provider's charge (its own transaction, as in the engine)
 *   4. payment outcome record + payments row
 *   5. order + its log records
 *   6. shipment + its log records + saga completed
 * No logging, no retries, no timeouts: what the engine adds on top is exactly what the ratio shows.
 */
import { newSagaId } from '../../src/engine/saga-id.js';
import { sqlitePaymentProvider } from '../../src/checkout/payment-provider-sqlite.js';
import type { Db } from '../../src/store/sqlite/open.js';

export async function baselineCheckouts(db: Db, n: number, concurrency: number): Promise<number> {
  const provider = sqlitePaymentProvider(db);
  const product = db.prepare('SELECT price_cents FROM products WHERE product_id = 101').get() as { price_cents: number };
  db.prepare('UPDATE inventory SET stock = stock + ? WHERE product_id = 101').run(n);
  db.prepare('UPDATE products SET seeded_stock = seeded_stock + ? WHERE product_id = 101').run(n);

  const insertSaga = db.prepare(`INSERT INTO sagas (saga_id, definition, input, status, owner_id, owner_host, owner_pid, lease_until, created_at, updated_at)
    VALUES (?, 'checkout', ?, 'running', 'baseline', 'bench', ?, ?, ?, ?)`);
  const renew = db.prepare('UPDATE sagas SET lease_until = ?, updated_at = ? WHERE saga_id = ? AND owner_id = ?');
  const event = db.prepare(`INSERT INTO saga_events (saga_id, step, step_index, phase, event, attempt, at, duration_ms, idempotency_key)
    VALUES (?, ?, ?, 'action', ?, 1, ?, ?, ?)`);
  const reserve = db.prepare('UPDATE inventory SET stock = stock - ? WHERE product_id = ? AND stock >= ?');
  const reservation = db.prepare(`INSERT INTO reservations (saga_id, product_id, qty, status, created_at, updated_at) VALUES (?, ?, ?, 'held', ?, ?)`);
  const payment = db.prepare(`INSERT INTO payments (saga_id, customer_id, amount_cents, provider_charge_id, status, created_at, updated_at) VALUES (?, ?, ?, ?, 'charged', ?, ?)`);
  const order = db.prepare(`INSERT INTO orders (saga_id, customer_id, product_id, qty, amount_cents, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'confirmed', ?, ?)`);
  const shipment = db.prepare(`INSERT INTO shipments (saga_id, order_id, status, created_at, updated_at) SELECT saga_id, order_id, 'scheduled', ?, ? FROM orders WHERE saga_id = ? AND status = 'confirmed'`);
  const complete = db.prepare(`UPDATE sagas SET status = 'completed', ended_at = ?, updated_at = ?, owner_id = NULL, owner_pid = NULL, owner_host = NULL, lease_until = NULL WHERE saga_id = ?`);

  const local = (sagaId: string, step: string, index: number, writes: () => void) => {
    const t = Date.now();
    renew.run(t + 30_000, t, sagaId, 'baseline');
    event.run(sagaId, step, index, 'started', t, null, null);
    writes();
    event.run(sagaId, step, index, 'succeeded', Date.now(), 0, null);
  };

  const reserveTx = db.transaction((sagaId: string, input: string) => {
    const t = Date.now();
    insertSaga.run(sagaId, input, process.pid, t + 30_000, t, t);
    local(sagaId, 'inventory', 0, () => {
      if (reserve.run(1, 101, 1).changes !== 1) throw new Error('out of stock');
      reservation.run(sagaId, 101, 1, t, t);
    });
  });
  const writeAheadTx = db.transaction((sagaId: string, key: string) => {
    const t = Date.now();
    renew.run(t + 30_000, t, sagaId, 'baseline');
    event.run(sagaId, 'payment', 1, 'started', t, null, key);
  });
  const paymentOutcomeTx = db.transaction((sagaId: string, chargeId: string) => {
    const t = Date.now();
    renew.run(t + 30_000, t, sagaId, 'baseline');
    event.run(sagaId, 'payment', 1, 'succeeded', t, 0, null);
    payment.run(sagaId, 1, product.price_cents, chargeId, t, t);
  });
  const orderTx = db.transaction((sagaId: string) => local(sagaId, 'order', 2, () => order.run(sagaId, 1, 101, 1, product.price_cents, Date.now(), Date.now())));
  const shipTx = db.transaction((sagaId: string) => {
    local(sagaId, 'shipping', 3, () => {
      if (shipment.run(Date.now(), Date.now(), sagaId).changes !== 1) throw new Error('no order');
    });
    complete.run(Date.now(), Date.now(), sagaId);
  });

  const input = JSON.stringify({ productId: 101, qty: 1, customerId: 1, unitPriceCents: product.price_cents, amountCents: product.price_cents });
  const one = async () => {
    const sagaId = newSagaId(); // the same ids as the engine's
    const key = `${sagaId}:payment`;
    reserveTx.immediate(sagaId, input);
    writeAheadTx.immediate(sagaId, key);
    const charge = await provider.charge({ key, customerId: 1, amountCents: product.price_cents });
    paymentOutcomeTx.immediate(sagaId, charge.chargeId);
    orderTx.immediate(sagaId);
    shipTx.immediate(sagaId);
  };

  return checkoutsPerSecond(n, concurrency, one);
}

/** Runs `one` n times with `concurrency` in flight at a time; checkouts per second. */
export async function checkoutsPerSecond(n: number, concurrency: number, one: () => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      next++;
      await one();
    }
  }));
  return Math.round((n / (performance.now() - started)) * 1000 * 100) / 100;
}

/**
 * The minimal baseline: five one-row transactions per checkout with plain better-sqlite3 and no
 * engine, no saga log, no provider: the floor any hand-written code that commits each step could
 * reach. 1. the saga row, 2. reserve stock, 3. the payment, 4. the order, 5. the shipment.
 */
export async function minimalCheckouts(db: Db, n: number, concurrency: number): Promise<number> {
  db.prepare('UPDATE inventory SET stock = stock + ? WHERE product_id = 101').run(n);
  const insertSaga = db.prepare(`INSERT INTO sagas (saga_id, definition, input, status, created_at, updated_at) VALUES (?, 'checkout', '{}', 'completed', ?, ?)`);
  const reserve = db.prepare('UPDATE inventory SET stock = stock - 1 WHERE product_id = 101 AND stock >= 1');
  const payment = db.prepare(`INSERT INTO payments (saga_id, customer_id, amount_cents, provider_charge_id, status, created_at, updated_at) VALUES (?, 1, 100, ?, 'charged', ?, ?)`);
  const order = db.prepare(`INSERT INTO orders (saga_id, customer_id, product_id, qty, amount_cents, status, created_at, updated_at) VALUES (?, 1, 101, 1, 100, 'confirmed', ?, ?)`);
  const shipment = db.prepare(`INSERT INTO shipments (saga_id, order_id, status, created_at, updated_at) VALUES (?, ?, 'scheduled', ?, ?)`);
  const tx = <A extends unknown[]>(fn: (...args: A) => unknown) => db.transaction(fn);
  const sagaTx = tx((id: string, t: number) => insertSaga.run(id, t, t));
  const reserveTx = tx(() => {
    if (reserve.run().changes !== 1) throw new Error('out of stock');
  });
  const paymentTx = tx((id: string, t: number) => payment.run(id, `ch_${id}`, t, t));
  const orderTx = tx((id: string, t: number): number | bigint => order.run(id, t, t).lastInsertRowid);
  const shipTx = tx((id: string, orderId: number | bigint, t: number) => shipment.run(id, orderId, t, t));
  const one = async () => {
    const id = newSagaId();
    const t = Date.now();
    sagaTx.immediate(id, t);
    reserveTx.immediate();
    // Each step a promise away from the last, as any code calling services would be.
    await Promise.resolve();
    paymentTx.immediate(id, t);
    const orderId = orderTx.immediate(id, t);
    shipTx.immediate(id, orderId as number | bigint, t);
  };
  return checkoutsPerSecond(n, concurrency, one);
}
