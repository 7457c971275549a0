import type { Db } from '../store/sqlite/open.js';
import { statementCache } from '../store/sqlite/statements.js';
import { planCharge, planRefund, type Charge, type LedgerPlan, type LedgerRow, type Refund } from './ledger-rules.js';

export type { Charge, Refund } from './ledger-rules.js';

/**
 * The payment provider as the checkout sees it: a remote service that deduplicates by
 * idempotency key (docs/guarantees.md, rule 3). Its rules are in ledger-rules.ts.
 */
export interface PaymentProvider {
  /** Charges once per key; asking again with the key returns the first charge. */
  charge(req: { key: string; customerId: number; amountCents: number }): Promise<Charge>;
  /** Refunds the charge made with `chargeKey`, once per `key`; voids it if it never happened. */
  refund(req: { key: string; chargeKey: string }): Promise<Refund>;
}

/**
 * The simulated provider on SQLite. It shares the file for convenience but is only ever written
 * in its own transactions, as a remote service would be: its commit is separate from ours, which
 * is what makes the payment step external.
 */
export function simulatedPaymentProvider(db: Db, now: () => number = Date.now): PaymentProvider {
  const stmt = statementCache(db);
  const entry = (key: string) => stmt('SELECT * FROM provider_ledger WHERE idempotency_key = ?').get(key) as LedgerRow | undefined;
  const apply = <T>(plan: LedgerPlan<T>): T => {
    for (const w of plan.writes) stmt(w.sql).run(...(w.params as unknown[]));
    return plan.result;
  };
  const charge = db.transaction((req: { key: string; customerId: number; amountCents: number }) => {
    const account = stmt('SELECT balance_cents FROM provider_accounts WHERE customer_id = ?').get(req.customerId) as { balance_cents: number } | undefined;
    return apply(planCharge(req, entry(req.key), account?.balance_cents, now()));
  });
  const refund = db.transaction((req: { key: string; chargeKey: string }) => apply(planRefund(req, entry(req.key), entry(req.chargeKey), now())));
  return {
    charge: async (req) => charge.immediate(req),
    refund: async (req) => refund.immediate(req),
  };
}
