/**
 * Retries with backoff, timeouts, compensation budgets, `stuck` and its recovery, the SAGA_FAIL_*
 * environment, and Ctrl-C / SIGTERM during a checkout: all through the real CLI.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import type { LogLine } from '../support/cli.js';
import {
  chargesOf, checkout, checkoutArgs, closeReaders, expectHealthy, explain, isRefunded, linesOf, newShop, readState, recover, sagaStatus, startIn,
  stepOf, STEPS, takeOvers, verify, waitFor, type CheckoutSpec, type Report, type Shop,
} from './helpers.js';

const time = (l: LogLine) => Date.parse(String(l.time));

// After every test of the file (the describes below run at once: one closing early would close the others' readers).
afterAll(() => closeReaders());

describe.concurrent.each(BACKENDS)('retries, timeouts and interrupts on $name', (backend) => {

  describe('transient failures are retried with exponential backoff', () => {
    const BASE_MS = 40;

    it.each(STEPS)('%s: --fail-mode transient --fail-times 2 completes on attempt 3, with 2 retrying lines', async (step) => {
      const shop = await newShop(backend);
      const run = await checkout(shop, { failAt: step, failMode: 'transient', failTimes: 2 }, { SAGA_RETRY_BASE_MS: String(BASE_MS) });
      expect(run.code, explain(run)).toBe(0);
      expect(stepOf(run.report, step).attempts).toBe(3);
      const sagaId = run.report!.sagaId;

      // Every attempt is logged: started 1..3, failed 1..2, succeeded 3.
      const attempts = (event: string) => linesOf(shop, sagaId, { step, phase: 'action', event }).map((l) => l.attempt);
      expect(attempts('started')).toEqual([1, 2, 3]);
      expect(attempts('failed')).toEqual([1, 2]);
      expect(attempts('succeeded')).toEqual([3]);

      const retrying = linesOf(shop, sagaId, { step, event: 'retrying' });
      expect(retrying.map((l) => [l.attempt, l.level])).toEqual([[1, 40], [2, 40]]);
      for (const l of retrying) {
        const attempt = l.attempt!;
        const cap = BASE_MS * 2 ** (attempt - 1);
        expect(typeof l.delayMs).toBe('number');
        // Exponential with jitter: never more than the exponential cap, never nothing.
        expect(l.delayMs as number).toBeGreaterThan(0);
        expect(l.delayMs as number).toBeLessThanOrEqual(cap);
        // ... and the engine really waited that long before the next attempt.
        const next = linesOf(shop, sagaId, { step, phase: 'action', event: 'started', attempt: attempt + 1 })[0]!;
        expect(time(next) - time(l)).toBeGreaterThanOrEqual((l.delayMs as number) - 2);
      }
      await expectHealthy(shop);
    });

    it.each(['payment', 'order'] as const)('%s: transient beyond the budget (3 attempts) rolls back with exit 3', async (step) => {
      const shop = await newShop(backend);
      const run = await checkout(shop, { failAt: step, failMode: 'transient', failTimes: 10 });
      expect(run.code, explain(run)).toBe(3);
      expect(run.report?.status).toBe('compensated');
      expect(run.report?.failedStep).toBe(step);
      expect(stepOf(run.report, step).attempts).toBe(3);
      expect(linesOf(shop, run.report!.sagaId, { step, event: 'retrying' })).toHaveLength(2);
      const state = await expectHealthy(shop);
      // The injected transient failure happens before the effect: nothing was charged for payment.
      expect(chargesOf(state, run.report!.sagaId)).toHaveLength(step === 'payment' ? 0 : 1);
    });

    it('a permanent failure is not retried, and the step that failed before any effect is not compensated', async () => {
      const shop = await newShop(backend);
      const run = await checkout(shop, { failAt: 'payment', failMode: 'error' });
      expect(run.code, explain(run)).toBe(3);
      const sagaId = run.report!.sagaId;
      expect(stepOf(run.report, 'payment').attempts).toBe(1);
      expect(linesOf(shop, sagaId, { event: 'retrying' })).toEqual([]);
      expect(linesOf(shop, sagaId, { phase: 'compensation', event: 'started' }).map((l) => l.step)).toEqual(['inventory']);
      const state = await expectHealthy(shop);
      expect(state.ledger).toEqual([]);
    });
  });

  describe('compensation order (docs/guarantees.md, rule 5)', () => {
    it.each([
      { failAt: 'payment' as const, undone: ['inventory'] },
      { failAt: 'order' as const, undone: ['payment', 'inventory'] },
      { failAt: 'shipping' as const, undone: ['order', 'payment', 'inventory'] },
    ])('--fail-at $failAt undoes $undone, in that order', async ({ failAt, undone }) => {
      const shop = await newShop(backend);
      const run = await checkout(shop, { failAt });
      expect(run.code, explain(run)).toBe(3);
      expect(linesOf(shop, run.report!.sagaId, { phase: 'compensation', event: 'succeeded' }).map((l) => l.step)).toEqual(undone);
      await expectHealthy(shop);
    });
  });

  describe('timeouts are uncertain', () => {
    it('payment timing out on every attempt: rolled back, and the charge it may have made is refunded', async () => {
      const shop = await newShop(backend);
      const run = await checkout(shop, { failAt: 'payment', failMode: 'timeout', stepTimeout: 100 });
      expect(run.code, explain(run)).toBe(3);
      const sagaId = run.report!.sagaId;
      expect(stepOf(run.report, 'payment').status).toBe('compensated');
      const failed = linesOf(shop, sagaId, { step: 'payment', phase: 'action', event: 'failed' });
      expect(failed.length).toBeGreaterThan(0);
      for (const l of failed) expect(l).toMatchObject({ uncertain: true, err: { kind: 'timeout' } });

      const state = await expectHealthy(shop);
      const charges = chargesOf(state, sagaId);
      expect(charges).toHaveLength(1);
      expect(isRefunded(state, charges[0]!)).toBe(true);
      expect(state.payments.map((p) => p.status)).toEqual(['refunded']);
      expect(linesOf(shop, sagaId, { step: 'payment', phase: 'compensation', event: 'succeeded' })).toHaveLength(1);
    });

    it('a timeout that clears on retry completes with exactly one charge', async () => {
      const shop = await newShop(backend);
      const run = await checkout(shop, { failAt: 'payment', failMode: 'timeout', failTimes: 1, stepTimeout: 1000 });
      expect(run.code, explain(run)).toBe(0);
      expect(stepOf(run.report, 'payment').attempts).toBe(2);
      const state = await expectHealthy(shop);
      expect(state.ledger.map((l) => l.kind)).toEqual(['charge']);
    });
  });

  describe('compensations have their own retry budget', () => {
    it('a compensation that always fails: exit 4, stuck, an error line naming saga, step and `saga recover`; recover then fixes it', async () => {
      const shop = await newShop(backend);
      const run = await checkout(shop, { failAt: 'shipping', failCompensation: 'payment' });
      expect(run.code, explain(run)).toBe(4);
      const sagaId = run.report!.sagaId;
      expect(run.report?.status).toBe('stuck');
      expect(sagaStatus(await readState(shop), sagaId)).toBe('stuck');

      const comp = stepOf(run.report, 'payment');
      expect(comp.compensationAttempts).toBeGreaterThan(1);
      expect(linesOf(shop, sagaId, { step: 'payment', phase: 'compensation', event: 'failed' })).toHaveLength(comp.compensationAttempts);
      expect(linesOf(shop, sagaId, { step: 'payment', phase: 'compensation', event: 'retrying' })).toHaveLength(comp.compensationAttempts - 1);

      const errors = linesOf(shop, sagaId).filter((l) => l.level >= 50);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ sagaId, step: 'payment' });
      expect(errors[0]!.msg).toContain(sagaId);
      expect(errors[0]!.msg).toContain('payment');
      expect(errors[0]!.msg).toContain('saga recover');
      // The console says it too.
      expect(run.stderr).toMatch(/ERROR.*saga recover/);
      expect((await readState(shop)).products.find((p) => p.product_id === 101)?.stock).toBe(24);

      const rec = await recover(shop);
      expect(rec.code, explain(rec)).toBe(0);
      expect(rec.result?.recovered.map((r) => [r.sagaId, r.from, r.status])).toEqual([[sagaId, 'stuck', 'compensated']]);
      const state = await expectHealthy(shop);
      expect(sagaStatus(state, sagaId)).toBe('compensated');
      expect(state.ledger.map((l) => l.kind).sort()).toEqual(['charge', 'refund']);
    });

    it.each(STEPS.filter((s) => s !== 'shipping'))('--fail-compensation %s --fail-times 2 retries and ends compensated', async (step) => {
      const shop = await newShop(backend);
      const run = await checkout(shop, { failAt: 'shipping', failCompensation: step, failTimes: 2 });
      expect(run.code, explain(run)).toBe(3);
      expect(run.report?.status).toBe('compensated');
      expect(stepOf(run.report, step).compensationAttempts).toBe(3);
      expect(linesOf(shop, run.report!.sagaId, { step, phase: 'compensation', event: 'retrying' }).map((l) => l.attempt)).toEqual([1, 2]);
      const state = await expectHealthy(shop);
      expect(state.ledger.filter((l) => l.kind === 'refund')).toHaveLength(1);
    });
  });

  describe('SAGA_FAIL_* environment variables behave like the flags', () => {
    const CASES: { name: string; spec: CheckoutSpec; env: Record<string, string>; code: number }[] = [
      { name: 'transient, retried to success', spec: { failAt: 'payment', failMode: 'transient', failTimes: 2 }, env: { SAGA_FAIL_AT: 'payment', SAGA_FAIL_MODE: 'transient', SAGA_FAIL_TIMES: '2' }, code: 0 },
      { name: 'permanent error', spec: { failAt: 'order' }, env: { SAGA_FAIL_AT: 'order' }, code: 3 },
      // The timeout applies to every step: 100 ms let a busy machine time out the refund too, once
      // in a while, and the two runs then differed by a retry that was not the test's point.
      { name: 'timeout', spec: { failAt: 'payment', failMode: 'timeout', stepTimeout: 500 }, env: { SAGA_FAIL_AT: 'payment', SAGA_FAIL_MODE: 'timeout', SAGA_STEP_TIMEOUT_MS: '500' }, code: 3 },
      { name: 'compensation always failing', spec: { failAt: 'shipping', failCompensation: 'order' }, env: { SAGA_FAIL_AT: 'shipping', SAGA_FAIL_COMPENSATION: 'order' }, code: 4 },
      {
        name: 'compensation failing twice',
        spec: { failAt: 'shipping', failCompensation: 'payment', failTimes: 2 },
        env: { SAGA_FAIL_AT: 'shipping', SAGA_FAIL_COMPENSATION: 'payment', SAGA_FAIL_TIMES: '2' },
        code: 3,
      },
      {
        name: 'compensation crash',
        spec: { failAt: 'order', failCompensation: 'payment', failCompensationMode: 'crash' },
        env: { SAGA_FAIL_AT: 'order', SAGA_FAIL_COMPENSATION: 'payment', SAGA_FAIL_COMPENSATION_MODE: 'crash' },
        code: -9,
      },
    ];

    /** What a run did, without ids and timings, so a flag run and an env run compare equal. */
    async function outcome(shop: Shop, run: Awaited<ReturnType<typeof checkout>>) {
      const state = await readState(shop);
      const r: Report | undefined = run.report;
      return {
        code: run.signal === 'SIGKILL' ? -9 : run.code,
        status: state.sagas.map((s) => s.status),
        steps: r?.steps.map((s) => ({ ...s })),
        failedStep: r?.failedStep,
        ledger: state.ledger.map((l) => l.kind).sort(),
        events: state.events.map((e) => `${e.step} ${e.phase} ${e.event} #${e.attempt}`),
      };
    }

    it.each(CASES)('$name', async ({ spec, env, code }) => {
      const [flagShop, envShop] = await Promise.all([newShop(backend), newShop(backend)]);
      const byFlags = await checkout(flagShop, spec);
      const byEnv = await checkout(envShop, {}, env);
      const a = await outcome(flagShop, byFlags);
      expect(a.code, explain(byFlags)).toBe(code);
      expect(await outcome(envShop, byEnv)).toEqual(a);
    });

    it('a flag wins over its environment variable', async () => {
      const shop = await newShop(backend);
      const run = await checkout(shop, { failAt: 'order' }, { SAGA_FAIL_AT: 'payment' });
      expect(run.code, explain(run)).toBe(3);
      expect(run.report?.failedStep).toBe('order');
    });
  });

  describe('recovery never re-applies injected faults', () => {
    it('`saga recover` ignores SAGA_FAIL_* and SAGA_CRASH_AT in its environment', async () => {
      const shop = await newShop(backend);
      const crashed = await checkout(shop, {}, { SAGA_CRASH_AT: 'action:payment:after-effect' });
      expect(crashed.signal, explain(crashed)).toBe('SIGKILL');
      const sagaId = (await readState(shop)).sagas[0]!.saga_id;

      const rec = await recover(shop, {
        SAGA_FAIL_AT: 'order',
        SAGA_FAIL_MODE: 'error',
        SAGA_FAIL_COMPENSATION: 'payment',
        SAGA_CRASH_AT: 'action:payment:after-effect,action:order:before',
      });
      expect(rec.code, explain(rec)).toBe(0);
      const state = await expectHealthy(shop);
      expect(sagaStatus(state, sagaId)).toBe('completed');
      expect(linesOf(shop, sagaId).filter((l) => l.event === 'failed')).toEqual([]);
    });
  });

  describe('Ctrl-C and SIGTERM during a checkout', () => {
    const SIGNALS = [
      { signal: 'SIGINT' as const, code: 130 },
      { signal: 'SIGTERM' as const, code: 143 },
    ];
    // Sits in the backoff of payment's retries for a while (base 4 s: the test must see it there
    // before it ends, even on a loaded machine; the signal cuts the backoff short).
    const SLOW: CheckoutSpec = { failAt: 'payment', failMode: 'transient', failTimes: 50 };
    const SLOW_ENV = { SAGA_RETRY_BASE_MS: '4000' };
    const hasLine = (shop: Shop, where: (l: ReturnType<typeof linesOf>[number]) => boolean) => async () => {
      const { sagas } = await readState(shop);
      return sagas.length === 1 && linesOf(shop, sagas[0]!.saga_id).some(where);
    };

    it.each(SIGNALS)('$signal once: finishes the step, rolls back, exits $code saying it was interrupted', async ({ signal, code }) => {
      const shop = await newShop(backend);
      const { child, done } = startIn(shop, checkoutArgs(SLOW), SLOW_ENV);
      try {
        await waitFor('a retrying line', hasLine(shop, (l) => l.event === 'retrying'));
        child.kill(signal);
      } catch (err) {
        child.kill('SIGKILL');
        throw err;
      }
      const run = await done;
      expect(run.code, explain(run)).toBe(code);
      expect(run.stderr).toMatch(/interrupted/);
      const state = await expectHealthy(shop);
      expect(state.sagas.map((s) => s.status)).toEqual(['compensated']);
      expect(state.products.find((p) => p.product_id === 101)?.stock).toBe(25);
      // It stopped retrying at once: the budget of 3 attempts was not used up.
      expect(linesOf(shop, state.sagas[0]!.saga_id, { step: 'payment', event: 'started' }).length).toBeLessThan(3);
    });

    it.each(SIGNALS)('$signal twice: stops at once, leaves the saga to recovery; `saga recover` finishes it', async ({ signal, code }) => {
      const shop = await newShop(backend);
      // The rollback is slow too: inventory's compensation keeps failing with backoff.
      const { child, done } = startIn(shop, checkoutArgs({ ...SLOW, failCompensation: 'inventory' }), SLOW_ENV);
      try {
        await waitFor('a retrying line', hasLine(shop, (l) => l.event === 'retrying' && l.phase === 'action'));
        child.kill(signal);
        await waitFor('the rollback to be retrying', hasLine(shop, (l) => l.event === 'retrying' && l.phase === 'compensation'));
        child.kill(signal);
      } catch (err) {
        child.kill('SIGKILL');
        throw err;
      }
      const run = await done;
      expect(run.code, explain(run)).toBe(code);
      expect(run.stderr).toMatch(/saga recover/);

      const left = await readState(shop);
      expect(left.sagas.map((s) => s.status)).toEqual(['compensating']);
      const sagaId = left.sagas[0]!.saga_id;
      expect(run.stderr).toContain(sagaId);
      // Left with its owner (now gone), which verify reports until recovery runs.
      const before = await verify(shop);
      expect(before.code, explain(before)).toBe(5);
      expect(before.violations.map((v) => v.invariant)).toContain('saga-abandoned');

      const rec = await recover(shop);
      expect(rec.code, explain(rec)).toBe(0);
      const state = await expectHealthy(shop);
      expect(sagaStatus(state, sagaId)).toBe('compensated');
      expect(takeOvers(shop, sagaId)).toBe(1);
      expect(state.products.find((p) => p.product_id === 101)?.stock).toBe(25);
    });
  });
});
