import type { Pool } from '../store/postgres/open.js';
import { pgSql } from '../store/postgres/statements.js';
import { pgWriteGroup, type Send } from '../store/postgres/write-group.js';
import { inFlightCounter, type InFlight } from '../store/sqlite/write-group.js';
import { planCharge, planRefund, type LedgerPlan, type LedgerRow } from './ledger-rules.js';
import type { PaymentProvider } from './payment-provider.js';

/**
 * The simulated provider on PostgreSQL, with the same rules (ledger-rules.ts) as on SQLite.
 * Everything about one charge (the charge, its refund, its void) runs under a transaction-scoped
 * advisory lock on the charge's key, so concurrent callers on any host see one answer per key.
 *
 * Like the SQLite one, it commits the requests that arrive together in one transaction of its own
 * (never the saga log's), each in a savepoint (store/postgres/write-group.ts), when `inFlight`
 * says several sagas are running, and each at once otherwise. In a shared transaction the locks
 * are held until the group commits; two requests of one group for the same key do not wait on
 * each other, since a session's advisory and row locks are its own (re-entrant).
 */
export function postgresPaymentProvider(pool: Pool, opts: { now?: () => number; inFlight?: InFlight } = {}): PaymentProvider & { commits(): number; roundTrips(): number } {
  const now = opts.now ?? Date.now;
  const group = pgWriteGroup(pool, opts.inFlight ?? inFlightCounter());
  const entry = async (send: Send, key: string) => (await send('SELECT * FROM provider_ledger WHERE idempotency_key = $1', [key])).rows[0] as LedgerRow | undefined;
  // Keyed by schema too: two saga schemas in one database never wait on each other's charges.
  const lock = (send: Send, chargeKey: string) => send('SELECT pg_advisory_xact_lock(hashtext(current_schema()), hashtext($1))', [chargeKey]);
  const apply = async <T>(send: Send, plan: LedgerPlan<T>): Promise<T> => {
    for (const w of plan.writes) await send(pgSql(w.sql), w.params);
    return plan.result;
  };
  return {
    charge: (req) =>
      group.submit(async (send) => {
        await lock(send, req.key);
        const account = (await send('SELECT balance_cents FROM provider_accounts WHERE customer_id = $1 FOR UPDATE', [req.customerId])).rows[0] as { balance_cents: number } | undefined;
        return apply(send, planCharge(req, await entry(send, req.key), account?.balance_cents, now()));
      }),
    refund: (req) =>
      group.submit(async (send) => {
        await lock(send, req.chargeKey);
        return apply(send, planRefund(req, await entry(send, req.key), await entry(send, req.chargeKey), now()));
      }),
    commits: () => group.commits,
    roundTrips: () => group.roundTrips,
  };
}
