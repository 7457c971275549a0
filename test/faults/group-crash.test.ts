/**
 * A real `saga bench` killed inside a shared transaction (docs/guarantees.md, rule 12): with
 * `SAGA_CRASH_AT=group:<k>:before` it SIGKILLs itself once the k-th shared transaction's writes
 * ran and before its COMMIT, with `group:<k>:after` once it committed and before any saga in it
 * was told. Then `saga recover` finishes every saga, and the invariants hold.
 *
 * The key property: saga.log never runs ahead of the database. Every step-event line in it is a
 * row of saga_events, at the instant of the kill and after recovery, so nothing was logged (nor
 * asked of the payment provider) on the strength of a commit that was not durable.
 *
 * At concurrency 16, each wave of 16 checkouts commits in two shared transactions: first their
 * 16 creating commits (inventory reserved, the payment's write-ahead record), then, once the
 * provider answered, their 16 completing commits. So group 3 holds the creates of the second
 * wave, group 4 its completions. The assertions hold whichever way the groups fall; those that
 * name a group's content say which.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import {
  closeReaders, expectHealthy, explain, logOf, newShop, readState, saga, startIn, waitFor, type Shop, type ShopState,
} from './helpers.js';

afterAll(() => closeReaders());

const sqlite = BACKENDS.find((b) => b.name === 'sqlite')!;
/** Short leases: the bench's sagas are recovered once theirs expired (a bench's owner cannot be seen dead from outside). */
const LEASE_MS = '1000';
const STEP_EVENTS = new Set(['started', 'succeeded', 'failed', 'retrying']);

type Key = string;
const keyOf = (sagaId: string, step: string, phase: string, event: string, attempt: number): Key => `${sagaId} ${step} ${phase} ${event} #${attempt}`;

/** The step-event lines of saga.log, as (sagaId, step, phase, event, attempt). */
function loggedEvents(shop: Shop): Key[] {
  return logOf(shop)
    .filter((l) => l.sagaId !== undefined && l.step !== undefined && l.phase !== undefined && STEP_EVENTS.has(l.event ?? '') && typeof l.attempt === 'number')
    .map((l) => keyOf(l.sagaId!, l.step!, l.phase!, l.event!, l.attempt!));
}

function recordedEvents(state: ShopState): Key[] {
  return state.events.map((e) => keyOf(e.saga_id, e.step, e.phase, e.event, Number(e.attempt)));
}

const missingFrom = (keys: readonly Key[], from: readonly Key[]) => {
  const set = new Set(from);
  return keys.filter((k) => !set.has(k));
};

/** What must hold at the instant of any kill: the log and the provider never ran ahead of the saga log. */
function expectNothingAhead(shop: Shop, state: ShopState): void {
  expect(missingFrom(loggedEvents(shop), recordedEvents(state)), 'logged but not in saga_events').toEqual([]);
  // A saga's "completed" line only once its completion is durable.
  const completed = new Set(state.sagas.filter((s) => s.status === 'completed').map((s) => s.saga_id));
  expect(logOf(shop).filter((l) => l.event === 'completed' && !completed.has(l.sagaId!)).map((l) => l.sagaId), 'completed in the log, not in the database').toEqual([]);
  // The provider is asked for a charge only after the payment's write-ahead record was durable and its saga told.
  const askedFor = new Set(logOf(shop).filter((l) => l.step === 'payment' && l.phase === 'action' && l.event === 'started').map((l) => l.idempotencyKey));
  expect(state.ledger.filter((l) => l.kind === 'charge' && !askedFor.has(l.idempotency_key)).map((l) => l.idempotency_key), 'charged before its write-ahead record was acknowledged').toEqual([]);
}

/** `saga recover` once the dead bench's leases expired; then every saga is terminal and every invariant holds. */
async function recoverAndCheck(shop: Shop): Promise<void> {
  await waitFor('the killed bench\'s leases to expire', async () => (await readState(shop)).sagas.every((s) => s.lease_until === null || s.lease_until < Date.now() || s.status === 'completed' || s.status === 'compensated'));
  const recovered = await saga(shop, ['recover', '--json']);
  expect(recovered.code, explain(recovered)).toBe(0);
  const verified = await saga(shop, ['verify', '--json']);
  expect(verified.code, explain(verified)).toBe(0);
  // Every saga terminal (completed, or compensated where a loaded machine made a step outlast
  // the bench's 50 ms timeout), stock and money conserved, and verify's own checks.
  const state = await expectHealthy(shop);
  expect(missingFrom(loggedEvents(shop), recordedEvents(state)), 'logged but not in saga_events, after recovery').toEqual([]);
}

const BENCH = ['bench', '--json', '--n', '64', '--concurrency', '16'];

describe('a real saga bench killed inside a shared transaction (sqlite)', () => {
  it.each([
    { point: 'group:3:before', holds: 'creates' },
    { point: 'group:4:before', holds: 'completions' },
    { point: 'group:3:after', holds: 'creates' },
    { point: 'group:4:after', holds: 'completions' },
  ])('SAGA_CRASH_AT=$point (a transaction holding $holds): nothing logged before it was durable; recover finishes every saga', async ({ point, holds }) => {
    const shop = await newShop(sqlite);
    const run = await saga(shop, BENCH, { SAGA_CRASH_AT: point, SAGA_LEASE_MS: LEASE_MS });
    expect(run.signal, explain(run)).toBe('SIGKILL');
    expect(run.stderr).toContain(`saga: crashing at ${point} as asked`);

    const atKill = await readState(shop);
    expectNothingAhead(shop, atKill);
    const unlogged = missingFrom(recordedEvents(atKill), loggedEvents(shop));
    const inFlight = atKill.sagas.filter((s) => s.status === 'running' || s.status === 'compensating');
    const eventsOf = (id: string) => atKill.events.filter((e) => e.saga_id === id).map((e) => `${e.step} ${e.event}`);
    const loggedOf = (id: string) => logOf(shop).filter((l) => l.sagaId === id && l.step !== undefined).map((l) => `${l.step} ${l.event}`);
    const WRITE_AHEAD = ['inventory started', 'inventory succeeded', 'payment started'];
    const chargedIds = new Set(atKill.ledger.filter((l) => l.kind === 'charge').map((l) => l.idempotency_key.slice(0, l.idempotency_key.indexOf(':'))));

    if (point.endsWith(':before')) {
      // Everything committed before the killed transaction had been told and logged; nothing of it was.
      expect(unlogged, 'in saga_events, not logged').toEqual([]);
      for (const s of inFlight) expect(loggedOf(s.saga_id), s.saga_id).toEqual(eventsOf(s.saga_id));
      if (holds === 'creates') {
        // The killed group's sagas left no row at all, and no line.
        expect(atKill.sagas.length).toBeLessThan(64);
      } else {
        // The killed group's sagas were charged, but their completing records are nowhere: the
        // database and the log both stop at the payment's write-ahead record.
        const caught = inFlight.filter((s) => chargedIds.has(s.saga_id) && s.status === 'running');
        expect(caught.length).toBeGreaterThan(0);
        for (const s of caught) expect(eventsOf(s.saga_id)).toEqual(WRITE_AHEAD);
      }
    } else {
      // The killed transaction committed, and none of its sagas was told: its records are in the
      // database and not in the log.
      expect(unlogged.length, 'the committed group is in saga_events, unlogged').toBeGreaterThan(0);
      const untold = [...new Set(unlogged.map((k) => k.slice(0, k.indexOf(' '))))];
      if (holds === 'creates') {
        // Created, reserved, the charge written ahead, and not asked for: nobody was told.
        const created = untold.filter((id) => loggedOf(id).length === 0);
        expect(created.length).toBeGreaterThan(0);
        for (const id of created) {
          expect(eventsOf(id)).toEqual(WRITE_AHEAD);
          expect(chargedIds.has(id), `${id} charged before its saga was told its write-ahead record was durable`).toBe(false);
        }
      } else {
        // Completed in the database; the log still stops at the write-ahead record.
        const completedUntold = untold.filter((id) => atKill.sagas.find((s) => s.saga_id === id)?.status === 'completed');
        expect(completedUntold.length).toBeGreaterThan(0);
        for (const id of completedUntold) expect(loggedOf(id)).toEqual(WRITE_AHEAD);
      }
    }
    await recoverAndCheck(shop);
  });
});

describe.each(BACKENDS)('a real saga bench SIGKILLed from outside mid-run ($name)', (backend) => {
  it('at concurrency 16: the log never ran ahead of the database; recover finishes every saga', async () => {
    const shop = await newShop(backend);
    const bench = startIn(shop, ['bench', '--json', '--n', '5000', '--concurrency', '16'], { SAGA_LEASE_MS: LEASE_MS });
    await waitFor('the bench to log some checkouts', () => loggedEvents(shop).length >= 200, 30_000);
    bench.child.kill('SIGKILL');
    const run = await bench.done;
    expect(run.signal, explain(run)).toBe('SIGKILL');
    const atKill = await readState(shop);
    expectNothingAhead(shop, atKill);
    expect(atKill.sagas.length).toBeLessThan(5000);
    await recoverAndCheck(shop);
  });
});
