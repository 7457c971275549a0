import type { Pool } from '../store/postgres/open.js';
import { pgSql } from '../store/postgres/statements.js';
import { pgWriteGroup, type Tx } from '../store/postgres/write-group.js';
import { sagasInFlight, type SagasInFlight } from '../store/group-commit.js';
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
export function postgresPaymentProvider(pool: Pool, opts: { now?: () => number; inFlight?: SagasInFlight } = {}): PaymentProvider & { commits(): number; roundTrips(): number } {
  const now = opts.now ?? Date.now;
  const group = pgWriteGroup(pool, opts.inFlight ?? sagasInFlight());
  const entry = (tx: Tx, key: string) => tx.query('SELECT * FROM provider_ledger WHERE idempotency_key = $1', [key]).then((r) => r.rows[0] as LedgerRow | undefined);
  // Keyed by schema too: two saga schemas in one database never wait on each other's charges.
  // Nothing reads its result: it only has to run before the reads behind it (pipelined in order).
  const lock = (tx: Tx, chargeKey: string) => tx.defer('SELECT pg_advisory_xact_lock(hashtext(current_schema()), hashtext($1))', [chargeKey]);
  // The writes are deferred too: the group waits for them (and their errors) before it commits.
  const apply = <T>(tx: Tx, plan: LedgerPlan<T>): T => {
    for (const w of plan.writes) tx.defer(pgSql(w.sql), w.params);
    return plan.result;
  };
  return {
    // The lock, then both reads, sent together: one round trip.
    charge: (req) =>
      group.submit(async (tx) => {
        lock(tx, req.key);
        const [account, previous] = await Promise.all([
          tx.query('SELECT balance_cents FROM provider_accounts WHERE customer_id = $1 FOR UPDATE', [req.customerId]).then((r) => r.rows[0] as { balance_cents: number } | undefined),
          entry(tx, req.key),
        ]);
        return apply(tx, planCharge(req, previous, account?.balance_cents, now()));
      }),
    refund: (req) =>
      group.submit(async (tx) => {
        lock(tx, req.chargeKey);
        const [previous, original] = await Promise.all([entry(tx, req.key), entry(tx, req.chargeKey)]);
        return apply(tx, planRefund(req, previous, original, now()));
      }),
    commits: () => group.commits,
    roundTrips: () => group.roundTrips,
  };
}
