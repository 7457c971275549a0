/**
 * The exact retry budgets (docs/guarantees.md, rule 6): an action gets 3 attempts, a compensation 5, and the two are
 * counted separately, each numbered from 1. Checked in both records of every attempt: saga.log
 * and the saga_events table.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { checkout, closeReaders, explain, linesOf, newShop, readState, stepOf, type Shop } from './helpers.js';

const ACTION_ATTEMPTS = 3;
const COMPENSATION_ATTEMPTS = 5;
const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

// After every test of the file (the describes below run at once: one closing early would close the others' readers).
afterAll(() => closeReaders());

describe.concurrent.each(BACKENDS)('exact retry budgets on $name', (backend) => {
  const shop = () => newShop(backend);

  /** Attempt numbers of one step's records, from saga.log and from saga_events. */
  async function attempts(s: Shop, sagaId: string, step: string, phase: 'action' | 'compensation', event: string) {
    const log = linesOf(s, sagaId, { step, phase, event }).map((l) => l.attempt);
    const table = (await readState(s)).events.filter((e) => e.saga_id === sagaId && e.step === step && e.phase === phase && e.event === event).map((e) => e.attempt);
    return { log, table };
  }

  it(`an action whose transient fault never clears is tried exactly ${ACTION_ATTEMPTS} times`, async () => {
    const s = await shop();
    const run = await checkout(s, { failAt: 'order', failMode: 'transient', failTimes: 100 });
    expect(run.code, explain(run)).toBe(3);
    const sagaId = run.report!.sagaId;
    expect(stepOf(run.report, 'order').attempts).toBe(ACTION_ATTEMPTS);
    expect(await attempts(s, sagaId, 'order', 'action', 'started')).toEqual({ log: upTo(ACTION_ATTEMPTS), table: upTo(ACTION_ATTEMPTS) });
    expect(await attempts(s, sagaId, 'order', 'action', 'failed')).toEqual({ log: upTo(ACTION_ATTEMPTS), table: upTo(ACTION_ATTEMPTS) });
    expect(await attempts(s, sagaId, 'order', 'action', 'retrying')).toEqual({ log: upTo(ACTION_ATTEMPTS - 1), table: upTo(ACTION_ATTEMPTS - 1) });
  });

  it(`after ${ACTION_ATTEMPTS} action attempts, its compensation still gets ${COMPENSATION_ATTEMPTS}, numbered from 1`, async () => {
    const s = await shop();
    // Payment times out on every attempt (uncertain: it is compensated, rule 4), and its refund
    // fails transiently every time: the action's budget is spent before the compensation starts.
    const run = await checkout(s, { failAt: 'payment', failMode: 'timeout', stepTimeout: 100, failCompensation: 'payment' });
    expect(run.code, explain(run)).toBe(4);
    expect(run.report?.status).toBe('stuck');
    const sagaId = run.report!.sagaId;
    const { attempts: action, compensationAttempts: compensation } = stepOf(run.report, 'payment');
    expect({ action, compensation }).toEqual({ action: ACTION_ATTEMPTS, compensation: COMPENSATION_ATTEMPTS });
    expect(await attempts(s, sagaId, 'payment', 'action', 'started')).toEqual({ log: upTo(ACTION_ATTEMPTS), table: upTo(ACTION_ATTEMPTS) });
    const all = { log: upTo(COMPENSATION_ATTEMPTS), table: upTo(COMPENSATION_ATTEMPTS) };
    expect(await attempts(s, sagaId, 'payment', 'compensation', 'started')).toEqual(all);
    expect(await attempts(s, sagaId, 'payment', 'compensation', 'failed')).toEqual(all);
    expect(await attempts(s, sagaId, 'payment', 'compensation', 'retrying')).toEqual({ log: upTo(COMPENSATION_ATTEMPTS - 1), table: upTo(COMPENSATION_ATTEMPTS - 1) });
  });

  it(`a compensation whose fault clears on its last attempt succeeds on attempt ${COMPENSATION_ATTEMPTS}`, async () => {
    const s = await shop();
    // --fail-times counts for both: the order action fails 4 times (beyond its budget of 3: exit
    // 3 after 3), payment's refund fails 4 times and succeeds on its 5th and last attempt.
    const run = await checkout(s, { failAt: 'order', failMode: 'transient', failTimes: COMPENSATION_ATTEMPTS - 1, failCompensation: 'payment' });
    expect(run.code, explain(run)).toBe(3);
    expect(run.report?.status).toBe('compensated');
    const sagaId = run.report!.sagaId;
    expect(await attempts(s, sagaId, 'order', 'action', 'started')).toEqual({ log: upTo(ACTION_ATTEMPTS), table: upTo(ACTION_ATTEMPTS) });
    expect(await attempts(s, sagaId, 'payment', 'compensation', 'started')).toEqual({ log: upTo(COMPENSATION_ATTEMPTS), table: upTo(COMPENSATION_ATTEMPTS) });
    expect(await attempts(s, sagaId, 'payment', 'compensation', 'succeeded')).toEqual({ log: [COMPENSATION_ATTEMPTS], table: [COMPENSATION_ATTEMPTS] });
  });
});
