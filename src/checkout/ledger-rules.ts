import type { SqlWrite } from '../engine/definition.js';
import { PermanentError } from '../engine/errors.js';

/**
 * The simulated payment provider's rules, decided from what its ledger already holds: pure, so
 * the SQLite and PostgreSQL providers only read, then apply the writes returned here, each in
 * one transaction of its own.
 *
 * - One row per idempotency key: asking again with a key returns the first answer.
 * - A refund of a charge that never happened voids that charge's key, so a charge that arrives
 *   after its refund (a slow network) is refused: the customer is never left charged.
 */
export interface LedgerRow {
  idempotency_key: string;
  kind: 'charge' | 'refund' | 'void';
  customer_id: number | null;
  amount_cents: number;
  charge_key: string | null;
}

export interface Charge {
  readonly chargeId: string;
  readonly amountCents: number;
}
export interface Refund {
  readonly refunded: boolean;
  readonly chargeId?: string;
  readonly amountCents: number;
}

export interface LedgerPlan<T> {
  readonly writes: readonly SqlWrite[];
  readonly result: T;
}

const RECORD = 'INSERT INTO provider_ledger (idempotency_key, kind, customer_id, amount_cents, charge_key, created_at) VALUES (?, ?, ?, ?, ?, ?)';

export function planCharge(
  req: { key: string; customerId: number; amountCents: number },
  previous: LedgerRow | undefined,
  balanceCents: number | undefined,
  now: number,
): LedgerPlan<Charge> {
  const result = { chargeId: `ch_${req.key}`, amountCents: previous?.amount_cents ?? req.amountCents };
  if (previous?.kind === 'charge') return { writes: [], result };
  if (previous?.kind === 'void') throw new PermanentError('payment declined: this charge was already refunded (voided) by a compensation');
  if (balanceCents === undefined) throw new PermanentError(`payment declined: customer ${req.customerId} has no payment account`);
  if (balanceCents < req.amountCents) throw new PermanentError(`payment declined: insufficient funds for customer ${req.customerId}`);
  return {
    writes: [
      { sql: 'UPDATE provider_accounts SET balance_cents = balance_cents - ? WHERE customer_id = ?', params: [req.amountCents, req.customerId] },
      { sql: RECORD, params: [req.key, 'charge', req.customerId, req.amountCents, null, now] },
    ],
    result,
  };
}

export function planRefund(req: { key: string; chargeKey: string }, previous: LedgerRow | undefined, original: LedgerRow | undefined, now: number): LedgerPlan<Refund> {
  if (previous !== undefined) return { writes: [], result: refundOf(previous) };
  if (original?.kind !== 'charge') {
    return {
      writes: [
        ...(original === undefined ? [{ sql: RECORD, params: [req.chargeKey, 'void', null, 0, null, now] }] : []),
        { sql: RECORD, params: [req.key, 'void', null, 0, req.chargeKey, now] },
      ],
      result: { refunded: false, amountCents: 0 },
    };
  }
  return {
    writes: [
      { sql: 'UPDATE provider_accounts SET balance_cents = balance_cents + ? WHERE customer_id = ?', params: [original.amount_cents, original.customer_id] },
      { sql: RECORD, params: [req.key, 'refund', original.customer_id, original.amount_cents, req.chargeKey, now] },
    ],
    result: refundOf({ ...original, kind: 'refund', charge_key: req.chargeKey }),
  };
}

function refundOf(row: LedgerRow): Refund {
  if (row.kind !== 'refund') return { refunded: false, amountCents: 0 };
  return { refunded: true, chargeId: `ch_${row.charge_key}`, amountCents: row.amount_cents };
}
