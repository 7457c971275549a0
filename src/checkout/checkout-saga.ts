import type { ExternalStep, LocalStep, SagaDefinition } from '../engine/definition.js';
import { validateRetryPolicy } from '../engine/retry.js';
import type { Charge, PaymentProvider, Refund } from './payment-provider.js';

/** What a checkout saga needs, fixed when it starts (prices are taken then, not re-read later). */
export interface CheckoutInput {
  readonly productId: number;
  readonly qty: number;
  readonly customerId: number;
  readonly unitPriceCents: number;
  readonly amountCents: number;
}

export const CHECKOUT_SAGA = 'checkout';
export const CHECKOUT_STEPS = ['inventory', 'payment', 'order', 'shipping'] as const;
export type CheckoutStepName = (typeof CHECKOUT_STEPS)[number];

export interface CheckoutOptions {
  readonly provider: PaymentProvider;
  readonly now: () => number;
  readonly timeoutMs: number;
  readonly retryBaseDelayMs: number;
}

export function checkoutSaga(opts: CheckoutOptions): SagaDefinition<CheckoutInput> {
  const { provider, now } = opts;

  const reserveStock: LocalStep<CheckoutInput> = {
    name: 'inventory',
    kind: 'local',
    action: (input, sagaId) => [
      {
        sql: 'UPDATE inventory SET stock = stock - ? WHERE product_id = ? AND stock >= ?',
        params: [input.qty, input.productId, input.qty],
        expectChanges: {
          count: 1,
          failure: `out of stock: product ${input.productId} has fewer than ${input.qty} units available`,
          // Said from the stock the failed reservation saw, in the same transaction.
          explain: { sql: 'SELECT stock FROM inventory WHERE product_id = ?', params: [input.productId], say: (stock) => outOfStock(input, Number(stock ?? 0)) },
        },
      },
      {
        sql: `INSERT INTO reservations (saga_id, product_id, qty, status, created_at, updated_at) VALUES (?, ?, ?, 'held', ?, ?)`,
        params: [sagaId, input.productId, input.qty, now(), now()],
      },
    ],
    // Releases only a reservation still held, so running it twice, or after a failed reserve, is a no-op.
    compensation: (input, sagaId) => [
      {
        sql: `UPDATE inventory SET stock = stock + (SELECT qty FROM reservations WHERE saga_id = ? AND status = 'held')
              WHERE product_id = ? AND EXISTS (SELECT 1 FROM reservations WHERE saga_id = ? AND status = 'held')`,
        params: [sagaId, input.productId, sagaId],
      },
      {
        sql: `UPDATE reservations SET status = 'released', updated_at = ? WHERE saga_id = ? AND status = 'held'`,
        params: [now(), sagaId],
      },
    ],
  };

  const chargeCustomer: ExternalStep<CheckoutInput, Charge, Refund> = {
    name: 'payment',
    kind: 'external',
    action: (input, ctx) => provider.charge({ key: ctx.idempotencyKey, customerId: input.customerId, amountCents: input.amountCents }),
    record: (input, sagaId, charge) => [
      {
        sql: `INSERT INTO payments (saga_id, customer_id, amount_cents, provider_charge_id, status, created_at, updated_at)
              VALUES (?, ?, ?, ?, 'charged', ?, ?) ON CONFLICT (saga_id) DO NOTHING`,
        params: [sagaId, input.customerId, charge.amountCents, charge.chargeId, now(), now()],
      },
    ],
    compensation: (_input, ctx) => provider.refund({ key: ctx.idempotencyKey, chargeKey: ctx.actionKey }),
    // A charge whose outcome we never recorded (a crash) still gets its refunded row, so the
    // payments table tells the same story as the provider.
    recordCompensation: (input, sagaId, refund) =>
      refund.refunded
        ? [
            {
              sql: `INSERT INTO payments (saga_id, customer_id, amount_cents, provider_charge_id, status, created_at, updated_at)
                    VALUES (?, ?, ?, ?, 'refunded', ?, ?)
                    ON CONFLICT (saga_id) DO UPDATE SET status = 'refunded', updated_at = excluded.updated_at`,
              params: [sagaId, input.customerId, refund.amountCents, refund.chargeId ?? '', now(), now()],
            },
          ]
        : [],
  };

  const confirmOrder: LocalStep<CheckoutInput> = {
    name: 'order',
    kind: 'local',
    action: (input, sagaId) => [
      {
        sql: `INSERT INTO orders (saga_id, customer_id, product_id, qty, amount_cents, status, created_at, updated_at)
              VALUES (?, ?, ?, ?, ?, 'confirmed', ?, ?)`,
        params: [sagaId, input.customerId, input.productId, input.qty, input.amountCents, now(), now()],
      },
    ],
    compensation: (_input, sagaId) => [
      { sql: `UPDATE orders SET status = 'cancelled', updated_at = ? WHERE saga_id = ? AND status = 'confirmed'`, params: [now(), sagaId] },
    ],
  };

  const scheduleShipment: LocalStep<CheckoutInput> = {
    name: 'shipping',
    kind: 'local',
    // Only a confirmed order ships: never a shipment for a cancelled order.
    action: (_input, sagaId) => [
      {
        sql: `INSERT INTO shipments (saga_id, order_id, status, created_at, updated_at)
              SELECT saga_id, order_id, 'scheduled', ?, ? FROM orders WHERE saga_id = ? AND status = 'confirmed'`,
        params: [now(), now(), sagaId],
        expectChanges: { count: 1, failure: 'no confirmed order to ship' },
      },
    ],
    compensation: (_input, sagaId) => [
      { sql: `UPDATE shipments SET status = 'cancelled', updated_at = ? WHERE saga_id = ? AND status = 'scheduled'`, params: [now(), sagaId] },
    ],
  };

  const retry = validateRetryPolicy({ attempts: 3, baseDelayMs: opts.retryBaseDelayMs, maxDelayMs: Math.max(opts.retryBaseDelayMs, 2_000) }, 'checkout retry policy');
  return {
    name: CHECKOUT_SAGA,
    steps: [reserveStock, chargeCustomer, confirmOrder, scheduleShipment],
    retry,
    // Undoing matters more than doing: compensations get a larger budget of their own (docs/guarantees.md, rule 6).
    compensationRetry: { ...retry, attempts: 5 },
    timeoutMs: opts.timeoutMs,
    parseInput: parseCheckoutInput,
  };
}

export function parseCheckoutInput(raw: unknown): CheckoutInput {
  const r = raw as Record<string, unknown>;
  const fields = ['productId', 'qty', 'customerId', 'unitPriceCents', 'amountCents'] as const;
  for (const f of fields) {
    if (typeof r?.[f] !== 'number' || !Number.isSafeInteger(r[f])) throw new Error(`stored checkout input has no valid ${f}`);
  }
  return { productId: r.productId as number, qty: r.qty as number, customerId: r.customerId as number, unitPriceCents: r.unitPriceCents as number, amountCents: r.amountCents as number };
}

/**
 * Why a reservation failed, with the stock there was: "out of stock: only 3 of product 101 left,
 * 5 asked". Always "out of stock" first: scripts match on it.
 */
export function outOfStock(input: Pick<CheckoutInput, 'productId' | 'qty'>, stock: number): string {
  return `out of stock: ${stock <= 0 ? `product ${input.productId} has none left` : `only ${stock} of product ${input.productId} left, ${input.qty} asked`}`;
}
