import type { Db } from '../store/sqlite/open.js';
import { whenUnlocked } from '../store/sqlite/lock-wait.js';
import { statementCache } from '../store/sqlite/statements.js';
import { planCharge, planRefund, type LedgerPlan, type LedgerRow } from './ledger-rules.js';
import type { PaymentProvider } from './payment-provider.js';

/**
 * The simulated provider on SQLite, with the same rules (ledger-rules.ts) as on PostgreSQL. It
 * shares the file for convenience but is only ever written in its own transactions, as a remote
 * service would be: its commit is separate from ours, which is what makes the payment step
 * external.
 */
export function sqlitePaymentProvider(db: Db, now: () => number = Date.now): PaymentProvider {
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
    charge: (req) => whenUnlocked(db, () => charge.immediate(req)),
    refund: (req) => whenUnlocked(db, () => refund.immediate(req)),
  };
}
