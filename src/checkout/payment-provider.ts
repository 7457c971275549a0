import { PermanentError } from '../engine/errors.js';
import type { Db } from '../store/sqlite/open.js';

/**
 * The payment provider as the checkout sees it: a remote service that deduplicates by
 * idempotency key (SAGA-SEMANTICS.md, rule 3).
 */
export interface PaymentProvider {
  /** Charges once per key; asking again with the key returns the first charge. */
  charge(req: { key: string; customerId: number; amountCents: number }): Promise<Charge>;
  /**
   * Refunds the charge made with `chargeKey`, once per `key`. If that charge never happened, it
   * is voided so that a late charge with that key is refused: a refund that overtakes its charge
   * still leaves the customer whole.
   */
  refund(req: { key: string; chargeKey: string }): Promise<Refund>;
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

export interface LedgerRow {
  idempotency_key: string;
  kind: 'charge' | 'refund' | 'void';
  customer_id: number | null;
  amount_cents: number;
  charge_key: string | null;
}

/**
 * A simulated provider that keeps its own ledger and balances. It shares the SQLite file for
 * convenience but is only ever written in its own transactions, as a remote service would be:
 * its commit is separate from ours, which is what makes the payment step external.
 */
export function simulatedPaymentProvider(db: Db, now: () => number = Date.now): PaymentProvider {
  const findEntry = db.prepare('SELECT * FROM provider_ledger WHERE idempotency_key = ?');
  const findAccount = db.prepare('SELECT balance_cents FROM provider_accounts WHERE customer_id = ?');
  const debit = db.prepare('UPDATE provider_accounts SET balance_cents = balance_cents - ? WHERE customer_id = ?');
  const credit = db.prepare('UPDATE provider_accounts SET balance_cents = balance_cents + ? WHERE customer_id = ?');
  const record = db.prepare('INSERT INTO provider_ledger (idempotency_key, kind, customer_id, amount_cents, charge_key, created_at) VALUES (?, ?, ?, ?, ?, ?)');

  const charge = db.transaction((key: string, customerId: number, amountCents: number): Charge => {
    const previous = findEntry.get(key) as LedgerRow | undefined;
    if (previous?.kind === 'charge') return { chargeId: `ch_${key}`, amountCents: previous.amount_cents };
    if (previous?.kind === 'void') throw new PermanentError('payment declined: this charge was already refunded (voided) by a compensation');
    const account = findAccount.get(customerId) as { balance_cents: number } | undefined;
    if (account === undefined) throw new PermanentError(`payment declined: customer ${customerId} has no payment account`);
    if (account.balance_cents < amountCents) throw new PermanentError(`payment declined: insufficient funds for customer ${customerId}`);
    debit.run(amountCents, customerId);
    record.run(key, 'charge', customerId, amountCents, null, now());
    return { chargeId: `ch_${key}`, amountCents };
  });

  const refund = db.transaction((key: string, chargeKey: string): Refund => {
    const previous = findEntry.get(key) as LedgerRow | undefined;
    if (previous !== undefined) return refundOf(previous);
    const original = findEntry.get(chargeKey) as LedgerRow | undefined;
    if (original?.kind !== 'charge') {
      if (original === undefined) record.run(chargeKey, 'void', null, 0, null, now());
      record.run(key, 'void', null, 0, chargeKey, now());
      return { refunded: false, amountCents: 0 };
    }
    credit.run(original.amount_cents, original.customer_id);
    record.run(key, 'refund', original.customer_id, original.amount_cents, chargeKey, now());
    return refundOf({ ...original, kind: 'refund', charge_key: chargeKey });
  });

  return {
    async charge(req) {
      return charge.immediate(req.key, req.customerId, req.amountCents);
    },
    async refund(req) {
      return refund.immediate(req.key, req.chargeKey);
    },
  };
}

export function refundOf(row: LedgerRow): Refund {
  if (row.kind !== 'refund') return { refunded: false, amountCents: 0 };
  return { refunded: true, chargeId: `ch_${row.charge_key}`, amountCents: row.amount_cents };
}
