/**
 * `saga cancel` through the real CLI, on every backend (docs/guarantees.md, rule 11): a cancel is
 * recorded before the command answers, the owner honours it at its next decision point (before a
 * step, before a retry, at the commit that would complete the saga), an external call in flight
 * is allowed to finish first, recovery honours it when the owner is gone, and exactly one of a
 * cancel and the saga's completion wins.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import type { RunResult } from '../support/cli.js';
import {
  chargesOf, checkout, checkoutArgs, closeReaders, expectHealthy, explain, isRefunded, linesOf, logOf, newShop, parseReport, readState, recover, saga,
  sagaStatus, sleep, startIn, stepOf, STEPS, waitFor, type Report, type Shop, type StepName,
} from './helpers.js';

afterAll(() => closeReaders());

interface CancelJson {
  sagaId: string;
  outcome: 'recorded' | 'already-requested' | 'already-rolling-back';
  status: string;
  cancelRequestedAt: string | null;
  cancelRequestedBy: string | null;
  ownerAlive: boolean;
}

interface Shown {
  status: string;
  cancelRequestedAt: string | null;
  cancelRequestedBy: string | null;
  events: { step: string; phase: string; event: string; attempt: number; at: string }[];
}

async function cancel(shop: Shop, id: string): Promise<RunResult & { json: CancelJson | undefined; error: { code: string; message: string } | undefined }> {
  const run = await saga(shop, ['cancel', id, '--json']);
  const parsed = run.stdout.trim() === '' ? undefined : (JSON.parse(run.stdout) as CancelJson & { error?: { code: string; message: string } });
  return { ...run, json: parsed?.error === undefined ? parsed : undefined, error: parsed?.error };
}

async function show(shop: Shop, id: string): Promise<Shown> {
  const run = await saga(shop, ['show', id, '--json']);
  expect(run.code, explain(run)).toBe(0);
  return JSON.parse(run.stdout) as Shown;
}

/** The id of the shop's only saga, once it exists and `line` is in saga.log. */
async function sagaOnceLogged(shop: Shop, what: string, line: (l: ReturnType<typeof linesOf>[number]) => boolean): Promise<string> {
  let id = '';
  await waitFor(what, async () => {
    const { sagas } = await readState(shop);
    id = sagas[0]?.saga_id ?? '';
    return id !== '' && linesOf(shop, id).some(line);
  });
  return id;
}

/** A started checkout, killed if the test fails before it ends. */
async function during<T>(child: ReturnType<typeof startIn>, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    child.child.kill('SIGKILL');
    throw err;
  }
}

const ms = (iso: string | null) => Date.parse(iso ?? '');

describe.concurrent.each(BACKENDS)('saga cancel on $name', (backend) => {
  // Each step fails transiently for a long while (a 4 s back-off): the saga sits in that step.
  it.each(STEPS)('during %s (in its back-off): no further attempt, every step before it undone, exit 3 saying cancelled', async (step: StepName) => {
    const shop = await newShop(backend);
    const slow = startIn(shop, checkoutArgs({ failAt: step, failMode: 'transient', failTimes: 50 }), { SAGA_RETRY_BASE_MS: '4000' });
    const { sagaId, cancelled } = await during(slow, async () => {
      const id = await sagaOnceLogged(shop, `${step} retrying`, (l) => l.step === step && l.event === 'retrying');
      return { sagaId: id, cancelled: await cancel(shop, id.slice(-8)) };
    });
    expect(cancelled.code, explain(cancelled)).toBe(0);
    expect(cancelled.json).toMatchObject({ sagaId, outcome: 'recorded', status: 'running', ownerAlive: true });
    expect(cancelled.json?.cancelRequestedBy).toMatch(/^.+@.+$/);

    const run = await slow.done;
    const report = parseReport(run.stdout) as Report & { cancelled: { by: string; at: string } | null };
    expect(run.code, explain(run)).toBe(3);
    expect(report.status).toBe('compensated');
    expect(report.cancelled).toEqual({ by: cancelled.json!.cancelRequestedBy, at: cancelled.json!.cancelRequestedAt });
    expect(report.error).toMatch(/^cancelled by .+@.+ at /);
    expect(run.stderr).toContain(`saga ${sagaId} was cancelled by ${cancelled.json!.cancelRequestedBy}`);
    // Honoured at once: the budget (3 attempts) was not used up, and no attempt began after the cancel.
    const shown = await show(shop, sagaId);
    const starts = shown.events.filter((e) => e.step === step && e.phase === 'action' && e.event === 'started');
    expect(starts.length).toBeLessThan(3);
    for (const e of starts) expect(ms(e.at)).toBeLessThan(ms(cancelled.json!.cancelRequestedAt));
    expect(shown).toMatchObject({ status: 'compensated', cancelRequestedBy: cancelled.json!.cancelRequestedBy, cancelRequestedAt: cancelled.json!.cancelRequestedAt });
    // Every step before it was undone, in reverse order; the cancelled step had no effect to undo.
    const before = STEPS.slice(0, STEPS.indexOf(step)).reverse();
    expect(linesOf(shop, sagaId, { phase: 'compensation', event: 'succeeded' }).map((l) => l.step)).toEqual(before.filter((s) => s !== step));
    expect(linesOf(shop, sagaId, { event: 'cancelled' })).toHaveLength(1);
    // The back-off was cut short: the cancel was honoured before the next attempt was due.
    const lastRetry = linesOf(shop, sagaId, { step, event: 'retrying' }).at(-1)!;
    const honoured = linesOf(shop, sagaId, { event: 'cancelled' })[0]!;
    expect(Date.parse(String(honoured.time))).toBeLessThan(Date.parse(String(lastRetry.time)) + Number(lastRetry.delayMs));
    expect(logOf(shop).filter((l) => l.event === 'cancel-requested' && l.sagaId === sagaId)).toHaveLength(1);
    const state = await expectHealthy(shop);
    expect(state.products.find((p) => p.product_id === 101)?.stock).toBe(25);
  });

  it('while the payment is in flight and times out: its outcome is awaited (no retry), then the charge it may have made is refunded', async () => {
    const shop = await newShop(backend);
    // The first attempt charges, then hangs until its 3 s timeout; a second attempt would succeed.
    const slow = startIn(shop, checkoutArgs({ failAt: 'payment', failMode: 'timeout', failTimes: 1, stepTimeout: 3000 }));
    const { sagaId, cancelled } = await during(slow, async () => {
      const id = await sagaOnceLogged(shop, 'payment started', (l) => l.step === 'payment' && l.event === 'started');
      return { sagaId: id, cancelled: await cancel(shop, id) };
    });
    expect(cancelled.code, explain(cancelled)).toBe(0);
    const run = await slow.done;
    expect(run.code, explain(run)).toBe(3);
    const report = parseReport(run.stdout);
    expect(stepOf(report, 'payment')).toMatchObject({ status: 'compensated', attempts: 1 });
    // The call was not cut short: its timeout was recorded after the cancel, as uncertain.
    const shown = await show(shop, sagaId);
    const failed = shown.events.filter((e) => e.step === 'payment' && e.phase === 'action' && e.event === 'failed');
    expect(failed).toHaveLength(1);
    expect(ms(failed[0]!.at)).toBeGreaterThan(ms(cancelled.json!.cancelRequestedAt));
    expect(linesOf(shop, sagaId, { step: 'payment', event: 'retrying' })).toEqual([]);
    const state = await expectHealthy(shop);
    const charges = chargesOf(state, sagaId);
    expect(charges).toHaveLength(1);
    expect(isRefunded(state, charges[0]!)).toBe(true);
    expect(state.payments.map((p) => p.status)).toEqual(['refunded']);
  });

  it('recorded just before the commit that would complete the saga: the cancel wins; order and shipping, which were to commit with it, never run; payment and inventory are undone', async () => {
    const shop = await newShop(backend);
    const slow = startIn(shop, checkoutArgs(), { SAGA_DELAY_AT: 'complete:before=4000' });
    const { sagaId, cancelled } = await during(slow, async () => {
      const id = await sagaOnceLogged(shop, 'payment started', (l) => l.step === 'payment' && l.event === 'started');
      // Past the payment call (a few ms), inside the 4 s hold before the completing commit.
      await sleep(500);
      return { sagaId: id, cancelled: await cancel(shop, id) };
    });
    expect(cancelled.code, explain(cancelled)).toBe(0);
    const run = await slow.done;
    expect(run.code, explain(run)).toBe(3);
    const report = parseReport(run.stdout)!;
    expect(report.error).toMatch(/before order ran$/);
    expect(report.steps.map((s) => s.status)).toEqual(['compensated', 'compensated', 'not-run', 'not-run']);
    expect(linesOf(shop, sagaId, { phase: 'compensation', event: 'succeeded' }).map((l) => l.step)).toEqual(['payment', 'inventory']);
    expect(linesOf(shop, sagaId, { step: 'order', phase: 'action' })).toEqual([]);
    expect((await show(shop, sagaId)).status).toBe('compensated');
    const state = await expectHealthy(shop);
    expect(state.payments.map((p) => p.status)).toEqual(['refunded']);
  });

  it('after the saga completed: refused (exit 2, saga_ended), the saga stays completed, saga.log says the cancel was refused', async () => {
    const shop = await newShop(backend);
    const done = await checkout(shop);
    expect(done.code, explain(done)).toBe(0);
    const sagaId = done.report!.sagaId;
    const refused = await cancel(shop, sagaId);
    expect(refused.code, explain(refused)).toBe(2);
    expect(refused.error?.code).toBe('saga_ended');
    expect(refused.error?.message).toMatch(/already completed .*cannot be cancelled/);
    const text = await saga(shop, ['cancel', sagaId.slice(-8)]);
    expect(text.code).toBe(2);
    expect(text.stderr.trim().split('\n')).toHaveLength(1);
    expect(await show(shop, sagaId)).toMatchObject({ status: 'completed', cancelRequestedAt: null, cancelRequestedBy: null });
    expect(logOf(shop).filter((l) => l.event === 'cancel-refused' && l.sagaId === sagaId)).toHaveLength(2);
    await expectHealthy(shop);
  });

  // The completing commit and the cancel's update each lock the saga's row: whichever commits
  // first wins and the other sees it. Holds of several lengths put the cancel on both sides of
  // the completion, and close to it.
  it('racing the saga\'s own completion: exactly one wins, every time, and the log says which', async () => {
    const shop = await newShop(backend);
    const winners: string[] = [];
    for (const hold of [0, 60, 120, 180, 250, 400, 2000]) {
      const run = startIn(shop, checkoutArgs(), { SAGA_DELAY_AT: `complete:before=${hold}` });
      const { sagaId, cancelled } = await during(run, async () => {
        let id = '';
        await waitFor('the saga row', async () => {
          const { sagas } = await readState(shop);
          id = sagas.at(-1)?.saga_id ?? '';
          return sagas.length === winners.length + 1;
        });
        return { sagaId: id, cancelled: await cancel(shop, id) };
      });
      const ended = await run.done;
      const shown = await show(shop, sagaId);
      if (cancelled.code === 0) {
        winners.push('cancel');
        expect(ended.code, explain(ended)).toBe(3);
        expect(shown.status).toBe('compensated');
        expect(shown.cancelRequestedAt).toBe(cancelled.json!.cancelRequestedAt);
      } else {
        winners.push('completion');
        expect(cancelled.code, explain(cancelled)).toBe(2);
        expect(cancelled.error?.code).toBe('saga_ended');
        expect(ended.code, explain(ended)).toBe(0);
        expect(shown).toMatchObject({ status: 'completed', cancelRequestedAt: null });
      }
    }
    // The longest hold leaves the cancel nothing to race: it wins.
    expect(winners.at(-1)).toBe('cancel');
    await expectHealthy(shop);
  });

  it('of a saga whose owner was killed: recorded, and `saga recover` rolls it back instead of finishing it', async () => {
    const shop = await newShop(backend);
    const crashed = await checkout(shop, {}, { SAGA_CRASH_AT: 'action:payment:after-effect' });
    expect(crashed.signal, explain(crashed)).toBe('SIGKILL');
    const sagaId = (await readState(shop)).sagas[0]!.saga_id;
    const cancelled = await cancel(shop, sagaId);
    expect(cancelled.code, explain(cancelled)).toBe(0);
    expect(cancelled.json).toMatchObject({ outcome: 'recorded', ownerAlive: false });
    const text = await saga(shop, ['cancel', sagaId]);
    expect(text.code, explain(text)).toBe(0);
    expect(text.stdout).toMatch(/already has a cancel request .*its owner is gone: `saga recover` rolls it back/);

    const rec = await recover(shop);
    expect(rec.code, explain(rec)).toBe(0);
    expect(rec.result?.recovered).toMatchObject([{ sagaId, from: 'running', direction: 'backward', status: 'compensated' }]);
    const state = await expectHealthy(shop);
    expect(sagaStatus(state, sagaId)).toBe('compensated');
    // The charge the dead owner made (its outcome never recorded) is refunded.
    expect(chargesOf(state, sagaId).map((c) => isRefunded(state, c))).toEqual([true]);
    expect(await show(shop, sagaId)).toMatchObject({ status: 'compensated', cancelRequestedBy: cancelled.json!.cancelRequestedBy });
  });

  it('of a stuck saga: nothing to cancel (exit 0), and it says to use `saga retry`', async () => {
    const shop = await newShop(backend);
    const stuck = await checkout(shop, { failAt: 'shipping', failCompensation: 'payment' });
    expect(stuck.code, explain(stuck)).toBe(4);
    const sagaId = stuck.report!.sagaId;
    const r = await saga(shop, ['cancel', sagaId]);
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout).toContain(`saga ${sagaId} is stuck`);
    expect(r.stdout).toContain(`saga retry ${sagaId}`);
    expect((await show(shop, sagaId)).cancelRequestedAt).toBeNull();
  });

  it('bad ids: unknown and ambiguous are refused with exit 2 and one line, and nothing is recorded', async () => {
    const shop = await newShop(backend);
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const slow = startIn(shop, checkoutArgs({ failAt: 'payment', failMode: 'transient', failTimes: 50 }), { SAGA_RETRY_BASE_MS: '4000' });
      await during(slow, () => waitFor('a retrying saga', async () => (await readState(shop)).sagas.length === i + 1 && logOf(shop).filter((l) => l.event === 'retrying').length > i));
      ids.push((await readState(shop)).sagas[i]!.saga_id);
      slow.child.kill('SIGKILL');
      await slow.done;
    }
    let common = 0;
    while (ids[0]![common] === ids[1]![common]) common++;
    expect(common).toBeGreaterThanOrEqual(6);
    const unknown = await saga(shop, ['cancel', 'ffffffff']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^saga: no saga ffffffff in .*saga list/)]);
    const ambiguous = await cancel(shop, ids[0]!.slice(0, common));
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.error?.code).toBe('ambiguous_saga_id');
    for (const id of ids) expect((await show(shop, id)).cancelRequestedAt).toBeNull();
    expect(logOf(shop).filter((l) => l.event === 'cancel-requested')).toEqual([]);
  });
});
