import type { Charge, Refund } from './ledger-rules.js';

export type { Charge, Refund } from './ledger-rules.js';

/**
 * The payment provider as the checkout sees it: a remote service that deduplicates by
 * idempotency key (docs/guarantees.md, rule 3). Its rules are in ledger-rules.ts; one simulated
 * implementation per database: payment-provider-sqlite.ts and payment-provider-postgres.ts.
 */
export interface PaymentProvider {
  /** Charges once per key; asking again with the key returns the first charge. */
  charge(req: { key: string; customerId: number; amountCents: number }): Promise<Charge>;
  /** Refunds the charge made with `chargeKey`, once per `key`; voids it if it never happened. */
  refund(req: { key: string; chargeKey: string }): Promise<Refund>;
}
