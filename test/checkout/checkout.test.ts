import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { seedCatalog, SEED_CUSTOMERS, SEED_PRODUCTS } from '../../src/checkout/catalog.js';
import { checkoutSaga, CHECKOUT_STEPS, type CheckoutInput, type CheckoutStepName } from '../../src/checkout/checkout-saga.js';
import { checkInvariants } from '../../src/checkout/invariants.js';
import { faultInjector } from '../../src/engine/faults.js';
import { startSaga, type EngineDeps } from '../../src/engine/runner.js';
import type { SqlDatabase } from '../../src/store/sql.js';
import { BACKENDS, type OpenedBackend } from '../support/backends.js';
import { tempDir } from '../support/cli.js';

const PRODUCT = SEED_PRODUCTS[0]; // 101, stock 25
const CUSTOMER = SEED_CUSTOMERS[0]; // 1, plenty of funds
const QTY = 2;
const AMOUNT = PRODUCT.priceCents * QTY;

describe.each(BACKENDS)('checkout saga, in process on $name', (backend) => {
  let dir: string;
  let opened: OpenedBackend;
  let db: SqlDatabase;

  beforeEach(async () => {
    dir = tempDir('saga-checkout-');
    opened = await backend.open(dir);
    db = opened.db;
    await seedCatalog(db);
  });
  afterEach(async () => {
    await opened.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function checkout(opts: { failAt?: CheckoutStepName; qty?: number } = {}) {
    const qty = opts.qty ?? QTY;
    const input: CheckoutInput = { productId: PRODUCT.productId, qty, customerId: CUSTOMER.customerId, unitPriceCents: PRODUCT.priceCents, amountCents: PRODUCT.priceCents * qty };
    const def = checkoutSaga({ provider: opened.provider, now: Date.now, timeoutMs: 5_000, retryBaseDelayMs: 1 });
    const deps: EngineDeps = {
      store: opened.store,
      logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
      clock: { now: Date.now, sleep: async () => undefined },
      random: Math.random,
      owner: { id: 'test', host: hostname(), pid: process.pid, pidScope: null, startedAt: null },
      leaseMs: 30_000,
      ...(opts.failAt === undefined ? {} : { faults: faultInjector({ failAt: opts.failAt, mode: 'error' }) }),
    };
    const sagaId = randomUUID();
    const outcome = await startSaga(def, input, deps, { sagaId });
    return { sagaId, outcome };
  }

  // ---- what the tables say ----

  const one = <T>(sql: string, ...params: unknown[]) => db.get<T>(sql, params);
  const all = <T>(sql: string, ...params: unknown[]) => db.all<T>(sql, params);

  async function rowsOf(sagaId: string) {
    return {
      stock: (await one<{ stock: number }>('SELECT stock FROM inventory WHERE product_id = ?', PRODUCT.productId))?.stock,
      reservation: (await one('SELECT product_id, qty, status FROM reservations WHERE saga_id = ?', sagaId)) ?? null,
      payment: (await one('SELECT customer_id, amount_cents, status FROM payments WHERE saga_id = ?', sagaId)) ?? null,
      order: (await one('SELECT customer_id, product_id, qty, amount_cents, status FROM orders WHERE saga_id = ?', sagaId)) ?? null,
      shipment: (await one<{ status: string }>('SELECT status FROM shipments WHERE saga_id = ?', sagaId))?.status ?? null,
      ledger: await all('SELECT idempotency_key, kind, customer_id, amount_cents, charge_key FROM provider_ledger ORDER BY created_at, idempotency_key'),
      balance: (await one<{ balance_cents: number }>('SELECT balance_cents FROM provider_accounts WHERE customer_id = ?', CUSTOMER.customerId))?.balance_cents,
      saga: await one('SELECT definition, status, failed_step, owner_id FROM sagas WHERE saga_id = ?', sagaId),
    };
  }

  /** The saga log, one string per record: `payment compensation succeeded`. */
  async function log(sagaId: string): Promise<string[]> {
    const events = await all<{ step: string; phase: string; event: string }>('SELECT step, phase, event FROM saga_events WHERE saga_id = ? ORDER BY event_id', sagaId);
    return events.map((e) => `${e.step} ${e.phase} ${e.event}`);
  }

  const did = (...steps: string[]) => steps.flatMap((s) => [`${s} action started`, `${s} action succeeded`]);
  const failed = (step: string) => [`${step} action started`, `${step} action failed`];
  const undid = (...steps: string[]) => steps.flatMap((s) => [`${s} compensation started`, `${s} compensation succeeded`]);

  async function expectInvariantsHold(): Promise<void> {
    expect(await checkInvariants(db, { now: Date.now(), machine: { host: hostname(), pidScope: null, process: () => ({ alive: true, startedAt: null }) } })).toEqual([]);
  }

  it('happy path: stock held, customer charged once, order confirmed, shipment scheduled', async () => {
    const { sagaId, outcome } = await checkout();

    expect(outcome.status).toBe('completed');
    const charge = { idempotency_key: `${sagaId}:payment`, kind: 'charge', customer_id: CUSTOMER.customerId, amount_cents: AMOUNT, charge_key: null };
    expect(await rowsOf(sagaId)).toEqual({
      stock: PRODUCT.stock - QTY,
      reservation: { product_id: PRODUCT.productId, qty: QTY, status: 'held' },
      payment: { customer_id: CUSTOMER.customerId, amount_cents: AMOUNT, status: 'charged' },
      order: { customer_id: CUSTOMER.customerId, product_id: PRODUCT.productId, qty: QTY, amount_cents: AMOUNT, status: 'confirmed' },
      shipment: 'scheduled',
      ledger: [charge],
      balance: CUSTOMER.balanceCents - AMOUNT,
      saga: { definition: 'checkout', status: 'completed', failed_step: null, owner_id: null },
    });
    expect(await log(sagaId)).toEqual(did(...CHECKOUT_STEPS));
    await expectInvariantsHold();
  });

  // --fail-at <step>: a permanent failure before the step's effect; the steps before it are
  // compensated in reverse order, the failed step is not.
  it.each([
    {
      failAt: 'inventory',
      log: failed('inventory'),
      reservation: null,
      payment: null,
      order: null,
      ledger: () => [],
    },
    {
      failAt: 'payment',
      log: [...did('inventory'), ...failed('payment'), ...undid('inventory')],
      reservation: 'released',
      payment: null,
      order: null,
      ledger: () => [],
    },
    {
      failAt: 'order',
      log: [...did('inventory', 'payment'), ...failed('order'), ...undid('payment', 'inventory')],
      reservation: 'released',
      payment: 'refunded',
      order: null,
      ledger: (id: string) => [
        { idempotency_key: `${id}:payment`, kind: 'charge', customer_id: CUSTOMER.customerId, amount_cents: AMOUNT, charge_key: null },
        { idempotency_key: `${id}:payment:compensate`, kind: 'refund', customer_id: CUSTOMER.customerId, amount_cents: AMOUNT, charge_key: `${id}:payment` },
      ],
    },
    {
      failAt: 'shipping',
      log: [...did('inventory', 'payment', 'order'), ...failed('shipping'), ...undid('order', 'payment', 'inventory')],
      reservation: 'released',
      payment: 'refunded',
      order: 'cancelled',
      ledger: (id: string) => [
        { idempotency_key: `${id}:payment`, kind: 'charge', customer_id: CUSTOMER.customerId, amount_cents: AMOUNT, charge_key: null },
        { idempotency_key: `${id}:payment:compensate`, kind: 'refund', customer_id: CUSTOMER.customerId, amount_cents: AMOUNT, charge_key: `${id}:payment` },
      ],
    },
  ] as const)('fail at $failAt: rolled back completely, compensations in reverse order', async (c) => {
    const { sagaId, outcome } = await checkout({ failAt: c.failAt });

    expect(outcome).toMatchObject({ status: 'compensated', failedStep: c.failAt });
    expect(outcome.error).toContain(`injected permanent failure in ${c.failAt}`);
    const rows = await rowsOf(sagaId);
    expect(rows.stock).toBe(PRODUCT.stock);
    expect((rows.reservation as { status: string } | null)?.status ?? null).toBe(c.reservation);
    expect((rows.payment as { status: string } | null)?.status ?? null).toBe(c.payment);
    expect((rows.order as { status: string } | null)?.status ?? null).toBe(c.order);
    expect(rows.shipment).toBeNull();
    expect(rows.ledger).toEqual(c.ledger(sagaId));
    expect(rows.balance).toBe(CUSTOMER.balanceCents);
    expect(rows.saga).toEqual({ definition: 'checkout', status: 'compensated', failed_step: c.failAt, owner_id: null });
    expect(await log(sagaId)).toEqual(c.log);
    // The failure is permanent and happened before any effect: no retry, and it is not compensated.
    expect((await log(sagaId)).filter((l) => l.startsWith(`${c.failAt} `))).toEqual(failed(c.failAt));
    await expectInvariantsHold();
  });

  it('ordering more than the stock fails at inventory and changes nothing but the saga log', async () => {
    const { sagaId, outcome } = await checkout({ qty: PRODUCT.stock + 1 });

    expect(outcome).toMatchObject({ status: 'compensated', failedStep: 'inventory' });
    expect(outcome.error).toContain('out of stock');
    expect(await rowsOf(sagaId)).toMatchObject({ stock: PRODUCT.stock, reservation: null, payment: null, order: null, shipment: null, ledger: [], balance: CUSTOMER.balanceCents });
    expect(await log(sagaId)).toEqual(failed('inventory'));
    await expectInvariantsHold();
  });

  it('several checkouts, completed and rolled back, in one database: the invariants hold after each', async () => {
    const outcomes = [];
    for (const failAt of [undefined, ...CHECKOUT_STEPS, undefined] as const) {
      outcomes.push((await checkout(failAt === undefined ? {} : { failAt })).outcome.status);
      await expectInvariantsHold();
    }
    expect(outcomes).toEqual(['completed', 'compensated', 'compensated', 'compensated', 'compensated', 'completed']);
    expect((await one<{ stock: number }>('SELECT stock FROM inventory WHERE product_id = ?', PRODUCT.productId))?.stock).toBe(PRODUCT.stock - 2 * QTY);
  });

  it('the invariant checks are not vacuous: a tampered database is reported', async () => {
    const { sagaId } = await checkout({ failAt: 'shipping' });
    // A refund that "never happened" and stock that vanished.
    await db.batch([
      { sql: `UPDATE payments SET status = 'charged' WHERE saga_id = ?`, params: [sagaId] },
      { sql: 'UPDATE inventory SET stock = stock - 1 WHERE product_id = ?', params: [PRODUCT.productId] },
    ]);
    const found = (await checkInvariants(db, { now: Date.now(), machine: { host: hostname(), pidScope: null, process: () => ({ alive: true, startedAt: null }) } })).map((v) => v.invariant);
    expect(found).toEqual(expect.arrayContaining(['stock-conserved', 'charge-without-cause']));
  });
});
