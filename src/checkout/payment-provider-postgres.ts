import type { Pool, PoolClient } from '../store/postgres/open.js';
import { runWrite } from '../store/postgres/statements.js';
import { inTransaction } from '../store/postgres/transaction.js';
import { planCharge, planRefund, type LedgerPlan, type LedgerRow } from './ledger-rules.js';
import type { PaymentProvider } from './payment-provider.js';

/**
 * The simulated provider on PostgreSQL, with the same rules (ledger-rules.ts) as on SQLite.
 * Everything about one charge (the charge, its refund, its void) runs under a transaction-scoped
 * advisory lock on the charge's key, so concurrent callers on any host see one answer per key.
 */
export function postgresPaymentProvider(pool: Pool, now: () => number = Date.now): PaymentProvider {
  const entry = async (c: PoolClient, key: string) => (await c.query('SELECT * FROM provider_ledger WHERE idempotency_key = $1', [key])).rows[0] as LedgerRow | undefined;
  // Keyed by schema too: two saga schemas in one database never wait on each other's charges.
  const lock = (c: PoolClient, chargeKey: string) => c.query('SELECT pg_advisory_xact_lock(hashtext(current_schema()), hashtext($1))', [chargeKey]);
  const apply = async <T>(c: PoolClient, plan: LedgerPlan<T>): Promise<T> => {
    for (const w of plan.writes) await runWrite(c, w);
    return plan.result;
  };
  return {
    charge: (req) =>
      inTransaction(pool, async (c) => {
        await lock(c, req.key);
        const account = (await c.query('SELECT balance_cents FROM provider_accounts WHERE customer_id = $1 FOR UPDATE', [req.customerId])).rows[0] as { balance_cents: number } | undefined;
        return apply(c, planCharge(req, await entry(c, req.key), account?.balance_cents, now()));
      }),
    refund: (req) =>
      inTransaction(pool, async (c) => {
        await lock(c, req.chargeKey);
        return apply(c, planRefund(req, await entry(c, req.key), await entry(c, req.chargeKey), now()));
      }),
  };
}
