import { describe, expect, it } from 'vitest';
import { PermanentError } from '../../src/engine/errors.js';
import { planCharge, planRefund, type LedgerRow } from '../../src/checkout/ledger-rules.js';

/** The payment provider's rules, decided from the ledger alone (both providers apply these). */
const charge: LedgerRow = { idempotency_key: 's1:payment', kind: 'charge', customer_id: 1, amount_cents: 500, charge_key: null };
const refund: LedgerRow = { idempotency_key: 's1:payment:compensate', kind: 'refund', customer_id: 1, amount_cents: 500, charge_key: 's1:payment' };
const voided: LedgerRow = { idempotency_key: 's1:payment', kind: 'void', customer_id: null, amount_cents: 0, charge_key: null };
const req = { key: 's1:payment', customerId: 1, amountCents: 500 };
const kinds = (writes: readonly { params: readonly unknown[] }[]) => writes.map((w) => w.params[1]);

describe('planCharge', () => {
  it('charges once: debit and a ledger row', () => {
    const plan = planCharge(req, undefined, 1000, 7);
    expect(plan.result).toEqual({ chargeId: 'ch_s1:payment', amountCents: 500 });
    expect(plan.writes).toHaveLength(2);
    expect(plan.writes[0]!.params).toEqual([500, 1]);
    expect(plan.writes[1]!.params).toEqual(['s1:payment', 'charge', 1, 500, null, 7]);
  });
  it('the same key again returns the first charge and writes nothing', () => {
    expect(planCharge({ ...req, amountCents: 999 }, charge, 0, 7)).toEqual({ writes: [], result: { chargeId: 'ch_s1:payment', amountCents: 500 } });
  });
  it.each([
    ['a voided key', voided, 1000, /already refunded \(voided\)/],
    ['no account', undefined, undefined, /no payment account/],
    ['too little money', undefined, 499, /insufficient funds/],
  ] as const)('declines permanently: %s', (_name, previous, balance, message) => {
    expect(() => planCharge(req, previous, balance, 7)).toThrow(PermanentError);
    expect(() => planCharge(req, previous, balance, 7)).toThrow(message);
  });
});

describe('planRefund', () => {
  const refundReq = { key: 's1:payment:compensate', chargeKey: 's1:payment' };
  it('refunds a charge: credit and a refund row', () => {
    const plan = planRefund(refundReq, undefined, charge, 7);
    expect(plan.result).toEqual({ refunded: true, chargeId: 'ch_s1:payment', amountCents: 500 });
    expect(plan.writes[0]!.params).toEqual([500, 1]);
    expect(plan.writes[1]!.params).toEqual(['s1:payment:compensate', 'refund', 1, 500, 's1:payment', 7]);
  });
  it('the same refund key again returns the first answer and writes nothing', () => {
    expect(planRefund(refundReq, refund, charge, 7)).toEqual({ writes: [], result: { refunded: true, chargeId: 'ch_s1:payment', amountCents: 500 } });
  });
  it('a refund that overtakes its charge voids the charge key', () => {
    const plan = planRefund(refundReq, undefined, undefined, 7);
    expect(plan.result).toEqual({ refunded: false, amountCents: 0 });
    expect(kinds(plan.writes)).toEqual(['void', 'void']);
    expect(plan.writes[0]!.params[0]).toBe('s1:payment');
  });
  it('a charge key already voided is not voided twice', () => {
    expect(kinds(planRefund(refundReq, undefined, voided, 7).writes)).toEqual(['void']);
  });
});
