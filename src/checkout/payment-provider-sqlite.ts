import type { Db } from '../store/sqlite/open.js';
import { statementCache } from '../store/sqlite/statements.js';
import { sagasInFlight, type SagasInFlight } from '../store/group-commit.js';
import { writeGroup } from '../store/sqlite/write-group.js';
import { planCharge, planRefund, type LedgerPlan, type LedgerRow } from './ledger-rules.js';
import type { PaymentProvider } from './payment-provider.js';

/**
 * The simulated provider on SQLite, with the same rules (ledger-rules.ts) as on PostgreSQL. It
 * shares the file for convenience but is only ever written in its own transactions, as a remote
 * service would be: its commit is separate from ours, which is what makes the payment step
 * external. Like a real provider under load, it commits the requests that arrive together in one
 * transaction (each in its own savepoint: see write-group.ts) when `inFlight` says several sagas
 * are running, and each at once otherwise.
 */
export function sqlitePaymentProvider(db: Db, opts: { now?: () => number; inFlight?: SagasInFlight } = {}): PaymentProvider & { commits(): number } {
  const now = opts.now ?? Date.now;
  const group = writeGroup(db, opts.inFlight ?? sagasInFlight());
  const stmt = statementCache(db);
  const entry = (key: string) => stmt('SELECT * FROM provider_ledger WHERE idempotency_key = ?').get(key) as LedgerRow | undefined;
  const apply = <T>(plan: LedgerPlan<T>): T => {
    for (const w of plan.writes) stmt(w.sql).run(...(w.params as unknown[]));
    return plan.result;
  };
  const charge = (req: { key: string; customerId: number; amountCents: number }) => {
    const account = stmt('SELECT balance_cents FROM provider_accounts WHERE customer_id = ?').get(req.customerId) as { balance_cents: number } | undefined;
    return apply(planCharge(req, entry(req.key), account?.balance_cents, now()));
  };
  const refund = (req: { key: string; chargeKey: string }) => apply(planRefund(req, entry(req.key), entry(req.chargeKey), now()));
  return {
    charge: (req) => group.submit(() => charge(req)),
    refund: (req) => group.submit(() => refund(req)),
    commits: () => group.commits,
  };
}
