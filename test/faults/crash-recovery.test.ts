/**
 * A crash at every crash point of every step and every compensation, then recovery, then the
 * invariants (docs/guarantees.md) on the database. The whole matrix runs in process, where a
 * thrown crash is the same crash (see ./in-process.ts); a sample of it, `--fail-mode crash`, and
 * kills from outside SIGKILL the real `saga checkout` and recover with the real `saga recover`.
 */
import { openKeptDatabase } from '../../src/store/sqlite/kept-database.js';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import {
  chargesOf, checkout, checkoutArgs, closeReaders, expectHealthy, explain, isRefunded, linesOf, newShop, readState, recover, sagaStatus,
  startIn, takeOvers, waitFor, type CheckoutSpec, type Shop, type ShopState,
} from './helpers.js';
import { checkoutInProcess, recoverInProcess } from './in-process.js';

/** The fault that makes each compensation run: a later step has to fail. */
const ROLLBACK_THROUGH: Record<string, CheckoutSpec> = {
  inventory: { failAt: 'payment' },
  payment: { failAt: 'order' },
  order: { failAt: 'shipping' },
  // Shipping is compensated only when uncertain: a timeout.
  shipping: { failAt: 'shipping', failMode: 'timeout', stepTimeout: 200 },
};

interface CrashCase {
  point: string;
  faults: CheckoutSpec;
  /** How recovery must end the saga: forward for a crash in an action, backward in a rollback. */
  ends: 'completed' | 'compensated';
  /** A crash before anything of the saga was committed may leave no saga at all. */
  mayLeaveNothing?: boolean;
  /** What must be true at the instant of the crash (before recovery). */
  atCrash?: (s: ShopState, sagaId: string) => void;
}

const charged = (s: ShopState, id: string) => chargesOf(s, id).length;
const refunds = (s: ShopState) => s.ledger.filter((l) => l.kind === 'refund').length;

const CASES: CrashCase[] = [
  { point: 'action:inventory:before', faults: {}, ends: 'completed', mayLeaveNothing: true },
  { point: 'action:inventory:after-effect', faults: {}, ends: 'completed', mayLeaveNothing: true },
  {
    point: 'action:payment:before',
    faults: {},
    ends: 'completed',
    // Write-ahead (rule 1): the log says the charge was asked for, with its key, before it is.
    atCrash: (s, id) => {
      expect(s.events.filter((e) => e.saga_id === id && e.step === 'payment' && e.event === 'started').map((e) => e.idempotency_key)).toEqual([`${id}:payment`]);
      expect(charged(s, id)).toBe(0);
    },
  },
  {
    point: 'action:payment:after-effect',
    faults: {},
    ends: 'completed',
    // The provider charged; our database never heard the answer.
    atCrash: (s, id) => {
      expect(charged(s, id)).toBe(1);
      expect(s.payments).toEqual([]);
    },
  },
  { point: 'action:order:before', faults: {}, ends: 'completed' },
  { point: 'action:order:after-effect', faults: {}, ends: 'completed' },
  { point: 'action:shipping:before', faults: {}, ends: 'completed' },
  { point: 'action:shipping:after-effect', faults: {}, ends: 'completed' },
  ...(['inventory', 'payment', 'order', 'shipping'] as const).flatMap((step): CrashCase[] => [
    { point: `compensation:${step}:before`, faults: ROLLBACK_THROUGH[step]!, ends: 'compensated', atCrash: (s, id) => expect(sagaStatus(s, id)).toBe('compensating') },
    { point: `compensation:${step}:after-effect`, faults: ROLLBACK_THROUGH[step]!, ends: 'compensated', atCrash: (s, id) => expect(sagaStatus(s, id)).toBe('compensating') },
  ]),
];
// The refund reached the provider but not our database.
CASES.find((c) => c.point === 'compensation:payment:after-effect')!.atCrash = (s, id) => {
  expect(sagaStatus(s, id)).toBe('compensating');
  expect(refunds(s)).toBe(1);
  expect(s.payments.map((p) => p.status)).toEqual(['charged']);
};

/** Whether another process could write the saga's row now, without waiting for a lock. */
async function sagaRowFree(shop: Shop, sagaId: string): Promise<boolean> {
  if (shop.db.startsWith('postgres')) {
    const client = new pg.Client({ connectionString: shop.db });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query("SET LOCAL lock_timeout = '1ms'");
      await client.query('SELECT 1 FROM sagas WHERE saga_id = $1 FOR UPDATE', [sagaId]);
      return true;
    } catch {
      return false;
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
  }
  const db = openKeptDatabase(shop.db, { timeout: 0 });
  try {
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    return true;
  } catch {
    return false;
  } finally {
    db.close();
  }
}

/** Recovery by the real `saga recover` (exit 0), or in process: what it did to each saga. */
async function recoverBy(shop: Shop, how: 'cli' | 'in-process'): Promise<(string | undefined)[][]> {
  if (how === 'in-process') {
    return (await recoverInProcess(shop)).map((r) => [r.sagaId, r.action, r.action === 'recovered' ? r.outcome.status : undefined]);
  }
  const rec = await recover(shop);
  expect(rec.code, explain(rec)).toBe(0);
  return (rec.result?.recovered ?? []).map((r) => [r.sagaId, r.action, r.status]);
}

/** After recovery: one saga, ended as expected, by exactly one take-over, all invariants hold. */
async function expectRecovered(shop: Shop, sagaId: string, ends: 'completed' | 'compensated', how: 'cli' | 'in-process' = 'cli') {
  expect(await recoverBy(shop, how)).toEqual([[sagaId, 'recovered', ends]]);
  const state = await expectHealthy(shop);
  expect(state.sagas.map((s) => [s.saga_id, s.status])).toEqual([[sagaId, ends]]);
  expect(takeOvers(shop, sagaId)).toBe(1);
  const stock = state.products.find((p) => p.product_id === 101)!;
  expect(stock.stock).toBe(ends === 'completed' ? stock.seeded_stock - 1 : stock.seeded_stock);
  const charges = chargesOf(state, sagaId);
  expect(charges.length).toBeLessThanOrEqual(1);
  if (ends === 'completed') expect(charges.length).toBe(1);
  for (const c of charges) expect(isRefunded(state, c)).toBe(ends === 'compensated');
  // Recovery ran without the checkout's injected faults: nothing failed after the take-over.
  const lines = linesOf(shop, sagaId);
  const takeOver = lines.findIndex((l) => l.event === 'taken-over');
  expect(lines.slice(takeOver).filter((l) => l.event === 'failed' || l.event === 'retrying')).toEqual([]);
  return state;
}

// After every test of the file (the describes below run at once: one closing early would close the others' readers).
afterAll(() => closeReaders());

describe.concurrent.each(BACKENDS)('crash recovery on $name', (backend) => {

  /** Crashes at `point`, then checks what the crash left and that recovery ends the saga as it must. */
  async function crashAndRecover({ point, faults, ends, mayLeaveNothing, atCrash }: CrashCase, how: 'cli' | 'in-process') {
    const shop = await newShop(backend);
    if (how === 'cli') {
      const run = await checkout(shop, faults, { SAGA_CRASH_AT: point });
      expect(run.signal, explain(run)).toBe('SIGKILL');
    } else {
      const run = await checkoutInProcess(shop, faults, { SAGA_CRASH_AT: point });
      expect(run.crashed, JSON.stringify(run.outcome)).toBe(point);
    }

    const atKill = await readState(shop);
    if (atKill.sagas.length === 0 && mayLeaveNothing === true) {
      // Nothing was committed: the checkout left no trace, and there is nothing to recover.
      expect(await recoverBy(shop, how)).toEqual([]);
      const state = await expectHealthy(shop);
      expect(state.reservations).toEqual([]);
      expect(state.ledger).toEqual([]);
      return;
    }
    expect(atKill.sagas).toHaveLength(1);
    const sagaId = atKill.sagas[0]!.saga_id;
    expect(['running', 'compensating']).toContain(atKill.sagas[0]!.status);
    atCrash?.(atKill, sagaId);

    await expectRecovered(shop, sagaId, ends, how);
  }

  describe('a crash at every point of every step and compensation is recovered (in process)', () => {
    it.each(CASES)('SAGA_CRASH_AT=$point -> recovered, $ends', (c) => crashAndRecover(c, 'in-process'));
  });

  describe('SIGKILL of the real CLI at a sample of those points, recovered by the real `saga recover`', () => {
    // Inside a local step's open transaction; between the write-ahead record and the provider;
    // in a rollback before a compensation. --fail-mode crash below covers the after-effect points.
    const SAMPLE = ['action:inventory:after-effect', 'action:payment:before', 'compensation:inventory:before'];
    it.each(CASES.filter((c) => SAMPLE.includes(c.point)))('SAGA_CRASH_AT=$point -> SIGKILL, recovered, $ends', (c) => crashAndRecover(c, 'cli'));
  });

  describe('--fail-mode crash kills the process in the middle of the step', () => {
    it.each([
      { flags: '--fail-at payment --fail-mode crash', spec: { failAt: 'payment', failMode: 'crash' } as CheckoutSpec, ends: 'completed' as const, providerAtCrash: ['charge'] },
      { flags: '--fail-at order --fail-mode crash', spec: { failAt: 'order', failMode: 'crash' } as CheckoutSpec, ends: 'completed' as const, providerAtCrash: ['charge'] },
      {
        flags: '--fail-at order --fail-compensation payment --fail-compensation-mode crash',
        spec: { failAt: 'order', failCompensation: 'payment', failCompensationMode: 'crash' } as CheckoutSpec,
        ends: 'compensated' as const,
        providerAtCrash: ['charge', 'refund'],
      },
    ])('$flags -> SIGKILL, then recovered $ends', async ({ spec, ends, providerAtCrash }) => {
      const shop = await newShop(backend);
      const run = await checkout(shop, spec);
      expect(run.signal, explain(run)).toBe('SIGKILL');
      const atKill = await readState(shop);
      expect(atKill.ledger.map((l) => l.kind).sort()).toEqual(providerAtCrash);
      await expectRecovered(shop, atKill.sagas[0]!.saga_id, ends);
    });
  });

  describe('SIGKILL from outside', () => {
    interface Kill {
      name: string;
      spec: CheckoutSpec;
      env: Record<string, string>;
      /** When to kill, judged from the database. */
      ready: (s: ShopState) => boolean;
      ends: string[];
    }
    const KILLS: Kill[] = [
      {
        name: 'while payment hangs after the provider charged',
        spec: { failAt: 'payment', failMode: 'timeout', stepTimeout: 3000 },
        env: {},
        // The charge is at the provider, its answer not yet in our log.
        ready: (s) => s.ledger.some((l) => l.kind === 'charge'),
        ends: ['completed', 'compensated'],
      },
      {
        name: 'in the backoff of a failing compensation',
        spec: { failAt: 'shipping', failCompensation: 'payment', failTimes: 50 },
        env: { SAGA_RETRY_BASE_MS: '2000' },
        ready: (s) => s.events.some((e) => e.phase === 'compensation' && e.event === 'retrying'),
        ends: ['compensated'],
      },
      {
        // Rule 8: a step that failed transiently did not fail permanently, so recovery goes forward.
        name: 'in the backoff of a transient action failure',
        spec: { failAt: 'order', failMode: 'transient', failTimes: 50 },
        env: { SAGA_RETRY_BASE_MS: '2000' },
        ready: (s) => s.events.some((e) => e.step === 'order' && e.event === 'retrying'),
        ends: ['completed'],
      },
    ];

    it.each(KILLS)('$name: recovered, never charged twice', async ({ spec, env, ready, ends }) => {
      const shop = await newShop(backend);
      const { child, done } = startIn(shop, checkoutArgs(spec), env);
      try {
        await waitFor('the checkout to reach the kill point', async () => ready(await readState(shop)));
      } finally {
        child.kill('SIGKILL');
      }
      const run = await done;
      expect(run.signal, explain(run)).toBe('SIGKILL');
      const atKill = await readState(shop);
      expect(atKill.sagas).toHaveLength(1);
      const sagaId = atKill.sagas[0]!.saga_id;

      const rec = await recover(shop);
      expect(rec.code, explain(rec)).toBe(0);
      const state = await expectHealthy(shop);
      expect(ends).toContain(sagaStatus(state, sagaId));
      expect(takeOvers(shop, sagaId)).toBe(1);
      const charges = chargesOf(state, sagaId);
      expect(charges).toHaveLength(1);
      expect(isRefunded(state, charges[0]!)).toBe(sagaStatus(state, sagaId) === 'compensated');
      expect(state.payments.map((p) => p.status)).toEqual([sagaStatus(state, sagaId) === 'completed' ? 'charged' : 'refunded']);
    });
  });

  describe('ownership (rule 7): a checkout paused past its lease loses the saga to recovery', () => {
    it('recovery takes it over; the old process, resumed, never advances it again and says so plainly', async () => {
      const shop = await newShop(backend);
      // Sits in a long backoff; the lease is short, so pausing the process lets it run out.
      const spec: CheckoutSpec = { failAt: 'payment', failMode: 'transient', failTimes: 50 };
      const { child, done } = startIn(shop, checkoutArgs(spec), { SAGA_LEASE_MS: '300', SAGA_RETRY_BASE_MS: '3000' });
      try {
        await waitFor('a retrying line', async () => (await readState(shop)).events.some((e) => e.event === 'retrying'));
        const sagaId = (await readState(shop)).sagas[0]!.saga_id;
        // A process stopped in the middle of a write (a lease renewal) would hold the database's
        // write lock (SQLite) or the saga's row lock (PostgreSQL) while it is stopped, and nobody
        // could take the saga over: that is a stall of another kind. Stop it between writes.
        await waitFor('the checkout stopped between two writes', async () => {
          child.kill('SIGSTOP');
          if (await sagaRowFree(shop, sagaId)) return true;
          child.kill('SIGCONT');
          return false;
        });
        await waitFor('the lease to run out', async () => (await readState(shop)).sagas[0]!.lease_until! < Date.now() - 100);

        const rec = await recover(shop);
        expect(rec.code, explain(rec)).toBe(0);
        expect(rec.result?.recovered.map((r) => [r.sagaId, r.action])).toEqual([[sagaId, 'recovered']]);
        const recovered = await readState(shop);

        child.kill('SIGCONT');
        const run = await done;
        // The old owner stopped touching the saga: the log and the rows are as recovery left them.
        const state = await expectHealthy(shop);
        expect(state.events).toEqual(recovered.events);
        expect(state.sagas).toEqual(recovered.sagas);
        expect(linesOf(shop, sagaId).filter((l) => l.pid === child.pid && l.attempt !== undefined && l.attempt > 1)).toEqual([]);
        // Losing a saga to recovery is foreseen (rule 7), not a bug: a plain line, not a stack trace.
        expect(run.stderr, explain(run)).not.toMatch(/internal error|\n\s+at /);
        expect(run.stderr).toContain(sagaId);
        expect(run.code, explain(run)).not.toBe(1);
      } finally {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
    });
  });
});
