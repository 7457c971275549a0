import { PermanentError } from '../engine/errors.js';
import { inTransaction, type Pool } from '../store/postgres/connect.js';
import { refundOf, type LedgerRow, type PaymentProvider } from './payment-provider.js';

/**
 * The simulated provider on PostgreSQL: the same ledger rules as the SQLite one. Everything about
 * one charge (the charge, its refund, its void) runs under a transaction-scoped advisory lock on
 * the charge's key, so concurrent callers on any host see one answer per key.
 */
export function postgresPaymentProvider(pool: Pool, now: () => number = Date.now): PaymentProvider {
  const lockKey = `SELECT pg_advisory_xact_lock(hashtext($1))`;
  const findEntry = 'SELECT * FROM provider_ledger WHERE idempotency_key = $1';
  const record = 'INSERT INTO provider_ledger (idempotency_key, kind, customer_id, amount_cents, charge_key, created_at) VALUES ($1, $2, $3, $4, $5, $6)';
  return {
    charge: ({ key, customerId, amountCents }) =>
      inTransaction(pool, async (c) => {
        await c.query(lockKey, [key]);
        const previous = (await c.query(findEntry, [key])).rows[0] as LedgerRow | undefined;
        if (previous?.kind === 'charge') return { chargeId: `ch_${key}`, amountCents: previous.amount_cents };
        if (previous?.kind === 'void') throw new PermanentError('payment declined: this charge was already refunded (voided) by a compensation');
        const account = (await c.query('SELECT balance_cents FROM provider_accounts WHERE customer_id = $1 FOR UPDATE', [customerId])).rows[0] as { balance_cents: number } | undefined;
        if (account === undefined) throw new PermanentError(`payment declined: customer ${customerId} has no payment account`);
        if (account.balance_cents < amountCents) throw new PermanentError(`payment declined: insufficient funds for customer ${customerId}`);
        await c.query('UPDATE provider_accounts SET balance_cents = balance_cents - $1 WHERE customer_id = $2', [amountCents, customerId]);
        await c.query(record, [key, 'charge', customerId, amountCents, null, now()]);
        return { chargeId: `ch_${key}`, amountCents };
      }),
    refund: ({ key, chargeKey }) =>
      inTransaction(pool, async (c) => {
        await c.query(lockKey, [chargeKey]);
        const previous = (await c.query(findEntry, [key])).rows[0] as LedgerRow | undefined;
        if (previous !== undefined) return refundOf(previous);
        const original = (await c.query(findEntry, [chargeKey])).rows[0] as LedgerRow | undefined;
        if (original?.kind !== 'charge') {
          if (original === undefined) await c.query(record, [chargeKey, 'void', null, 0, null, now()]);
          await c.query(record, [key, 'void', null, 0, chargeKey, now()]);
          return { refunded: false, amountCents: 0 };
        }
        await c.query('UPDATE provider_accounts SET balance_cents = balance_cents + $1 WHERE customer_id = $2', [original.amount_cents, original.customer_id]);
        await c.query(record, [key, 'refund', original.customer_id, original.amount_cents, chargeKey, now()]);
        return refundOf({ ...original, kind: 'refund', charge_key: chargeKey });
      }),
  };
}
