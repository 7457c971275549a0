/**
 * `checkout --key`: a repeated command does nothing new and replays the first outcome; concurrent
 * commands with one key make one saga. Two `saga recover` at once never drive the same saga.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import {
  chargesOf, checkout, checkoutArgs, closeReaders, CRASH_POINTS, expectHealthy, explain, newShop, parseReport, readState, recover, startIn,
  takeOvers, type CheckoutSpec,
} from './helpers.js';
import { checkoutInProcess } from './in-process.js';

// After every test of the file (the describes below run at once: one closing early would close the others' readers).
afterAll(() => closeReaders());

describe.concurrent.each(BACKENDS)('idempotency and concurrent recovery on $name', (backend) => {

  describe('the same --key twice replays the first outcome', () => {
    const CASES: { name: string; first: CheckoutSpec; code: number; status: string }[] = [
      { name: 'a completed checkout', first: {}, code: 0, status: 'completed' },
      { name: 'a rolled-back checkout (--fail-at payment)', first: { failAt: 'payment' }, code: 3, status: 'compensated' },
      { name: 'a stuck checkout', first: { failAt: 'shipping', failCompensation: 'payment' }, code: 4, status: 'stuck' },
    ];

    it.each(CASES)('$name: same sagaId, exit $code again, nothing new done', async ({ first, code, status }) => {
      const shop = await newShop(backend);
      const a = await checkout(shop, { key: 'k-1', qty: 2, ...first });
      expect(a.code, explain(a)).toBe(code);
      const before = await readState(shop);

      // The second run asks for the same checkout, without the first run's injected faults.
      const b = await checkout(shop, { key: 'k-1', qty: 2 });
      expect(b.code, explain(b)).toBe(code);
      expect(b.report?.sagaId).toBe(a.report?.sagaId);
      expect(b.report?.status).toBe(status);
      expect(b.report?.replayed).toBe(true);
      expect(a.report?.replayed).toBe(false);

      const after = await readState(shop);
      expect(after.sagas).toHaveLength(1);
      expect(after.orders).toEqual(before.orders);
      expect(after.payments).toEqual(before.payments);
      expect(after.ledger).toEqual(before.ledger);
      expect(after.products).toEqual(before.products);
      expect(after.events).toEqual(before.events);
      await expectHealthy(shop, { allowStuck: status === 'stuck' });
    });

    it('a checkout whose first run crashed is finished by the rerun: same saga, one charge', async () => {
      const shop = await newShop(backend);
      const a = await checkout(shop, { key: 'k-crash' }, { SAGA_CRASH_AT: 'action:payment:after-effect' });
      expect(a.signal, explain(a)).toBe('SIGKILL');
      const sagaId = (await readState(shop)).sagas[0]!.saga_id;

      const startedAt = Date.now();
      const b = await checkout(shop, { key: 'k-crash' });
      expect(b.code, explain(b)).toBe(0);
      // Its owner is gone on this host: taken over at once, not after the lease (30 s) runs out.
      expect(Date.now() - startedAt).toBeLessThan(10_000);
      expect(b.report?.sagaId).toBe(sagaId);
      const state = await expectHealthy(shop);
      expect(state.sagas.map((s) => s.status)).toEqual(['completed']);
      expect(chargesOf(state, sagaId)).toHaveLength(1);
      expect(takeOvers(shop, sagaId)).toBe(1);
    });

    // Rule 8: an injected failure belongs to the command that injected it. The rerun's own fault
    // flags must not be applied to the saga it replays (it "does nothing new").
    it.each<{ name: string; spec: CheckoutSpec; env: Record<string, string> }>([
      { name: 'SAGA_CRASH_AT', spec: {}, env: { SAGA_CRASH_AT: 'action:payment:after-effect' } },
      { name: '--fail-at order', spec: { failAt: 'order' }, env: {} },
    ])('a rerun with $name that finds its saga abandoned finishes it without its own injected faults', async ({ spec, env }) => {
      const shop = await newShop(backend);
      const a = await checkout(shop, { key: 'k-faults' }, { SAGA_CRASH_AT: 'action:payment:after-effect' });
      expect(a.signal, explain(a)).toBe('SIGKILL');
      const sagaId = (await readState(shop)).sagas[0]!.saga_id;

      const b = await checkout(shop, { key: 'k-faults', ...spec }, env);
      expect(b.signal, explain(b)).toBe(null);
      expect(b.code, explain(b)).toBe(0);
      expect(b.report?.sagaId).toBe(sagaId);
      expect(b.report?.status).toBe('completed');
      const state = await expectHealthy(shop);
      expect(chargesOf(state, sagaId)).toHaveLength(1);
    });
  });

  describe('the same --key for another checkout is refused', () => {
    it.each([
      { name: 'another --qty', other: { qty: 2 } },
      { name: 'another --product', other: { product: 102 } },
      { name: 'another --customer', other: { customer: 2 } },
    ])('$name: exit 2, one clear line, nothing written', async ({ other }) => {
      const shop = await newShop(backend);
      const a = await checkout(shop, { key: 'k-2', qty: 1 });
      expect(a.code, explain(a)).toBe(0);
      const before = await readState(shop);

      const b = await checkout(shop, { key: 'k-2', qty: 1, ...other });
      expect(b.code, explain(b)).toBe(2);
      const lines = b.stderr.split('\n').filter((l) => l.trim() !== '');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^saga: .*--key k-2/);
      // The checkout helper asks for --json: the error is that one JSON object, with its code.
      expect(JSON.parse(b.stdout)).toEqual({ error: { code: 'key_conflict', message: lines[0]!.slice('saga: '.length) }, exitCode: 2 });
      expect(await readState(shop)).toEqual(before);
    });
  });

  describe('concurrent checkouts with one key', () => {
    it('4 processes at once: one saga, one order, one charge, all report the same sagaId', async () => {
      const shop = await newShop(backend);
      // Each process waits 1.5 s between finding no saga with the key and inserting its own: all
      // four pass the lookup, and only the unique index on the key can keep it to one saga.
      const runs = await Promise.all(Array.from({ length: 4 }, () => startIn(shop, checkoutArgs({ key: 'k-race', qty: 3 }), { SAGA_DELAY_AT: 'key:unused=1500' }).done));
      for (const r of runs) expect(r.code, explain(r)).toBe(0);
      const ids = runs.map((r) => parseReport(r.stdout)?.sagaId);
      const state = await expectHealthy(shop);
      expect(state.sagas).toHaveLength(1);
      expect(ids).toEqual(Array(4).fill(state.sagas[0]!.saga_id));
      expect(state.orders).toHaveLength(1);
      expect(state.ledger.map((l) => l.kind)).toEqual(['charge']);
      expect(state.products.find((p) => p.product_id === 101)?.stock).toBe(22);
      // Only the run that did the checkout says it was not a replay; the others did nothing new.
      expect(runs.map((r) => parseReport(r.stdout)?.replayed).filter((x) => x === false)).toHaveLength(1);
    });
  });

  describe('two `saga recover` at once', () => {
    it('never drive the same saga: each abandoned saga is taken over exactly once', async () => {
      const shop = await newShop(backend);
      // One abandoned saga per crash point that leaves one (inventory's crash leaves nothing).
      const points = CRASH_POINTS.filter((p) => !p.startsWith('action:inventory'));
      const failFor: Record<string, CheckoutSpec> = {
        inventory: { failAt: 'payment' },
        payment: { failAt: 'order' },
        order: { failAt: 'shipping' },
        shipping: { failAt: 'shipping', failMode: 'timeout', stepTimeout: 100 },
      };
      // The crashes happen in process (./in-process.ts): the recoverers under test are real processes.
      for (const point of points) {
        const [phase, step] = point.split(':') as [string, string];
        const crashed = await checkoutInProcess(shop, phase === 'compensation' ? failFor[step]! : {}, { SAGA_CRASH_AT: point });
        expect(crashed.crashed, point).toBe(point);
      }
      const abandoned = (await readState(shop)).sagas;
      expect(abandoned).toHaveLength(points.length);

      const [a, b] = await Promise.all([recover(shop), recover(shop)]);
      expect(a.code, explain(a)).toBe(0);
      expect(b.code, explain(b)).toBe(0);
      const recoveredBy = (r: typeof a) => r.result!.recovered.filter((x) => x.action === 'recovered').map((x) => x.sagaId);
      // Between them they recovered each saga once.
      expect([...recoveredBy(a), ...recoveredBy(b)].sort()).toEqual(abandoned.map((s) => s.saga_id).sort());
      for (const s of abandoned) expect(takeOvers(shop, s.saga_id), s.saga_id).toBe(1);
      const state = await expectHealthy(shop);
      for (const s of state.sagas) expect(chargesOf(state, s.saga_id).length).toBeLessThanOrEqual(1);
    });
  });
});
