/**
 * Random schedules of failures over several checkouts in one database, then recovery: afterwards
 * every invariant `saga verify` checks must hold.
 *
 * Runs on every test backend (SQLite, PostgreSQL) two ways: in process, where a crash point
 * throws (the same crash, see ./in-process.ts) and a run costs milliseconds, FC_RUNS runs
 * (default 40); and through the real CLI with real SIGKILLs and real exit codes, FC_CLI_RUNS runs
 * (default 3). Every run asked for is run, however long it takes. The seed is in the test name and
 * in the failure message; replay a failure with the line the failure prints
 * (`FC_SEED=<seed> FC_PATH=<path> npm test -- test/faults/random-schedules.test.ts -t '<backend>, <driver>'`).
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS, type TestBackend } from '../support/backends.js';
import {
  checkout, closeReaders, CRASH_POINTS, expectHealthy, explain, newShop, readState, recover, STEPS, takeOvers, type CheckoutSpec, type Shop,
} from './helpers.js';
import { checkoutInProcess, recoverInProcess } from './in-process.js';

interface PlannedCheckout {
  product: number;
  qty: number;
  customer: number;
  fail?: { step: (typeof STEPS)[number]; mode: 'error' | 'transient' | 'timeout'; times: number };
  /** `times` undefined: the compensation always fails (the saga gets stuck). */
  failCompensation?: { step: (typeof STEPS)[number]; times?: number };
  crashAt?: string;
}

const step = fc.constantFrom(...STEPS);
const plannedCheckout: fc.Arbitrary<PlannedCheckout> = fc.record(
  {
    // 104 has 4 in stock and 105 none: out-of-stock failures happen on their own.
    product: fc.constantFrom(101, 102, 104, 105),
    qty: fc.integer({ min: 1, max: 3 }),
    // Customer 2 can afford little: declined payments happen on their own.
    customer: fc.constantFrom(1, 1, 2),
    fail: fc.record({ step, mode: fc.constantFrom('error' as const, 'transient' as const, 'timeout' as const), times: fc.integer({ min: 1, max: 3 }) }),
    failCompensation: fc.record({ step, times: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }) }, { requiredKeys: ['step'] }),
    crashAt: fc.constantFrom(...CRASH_POINTS),
  },
  { requiredKeys: ['product', 'qty', 'customer'] },
);
const schedule = fc.array(plannedCheckout, { minLength: 1, maxLength: 4 });

/**
 * The CLI has one --fail-times for both kinds of fault: with a retrying action fault and a
 * compensation fault, the compensation fails as many times as the action.
 */
function toCli(p: PlannedCheckout): { spec: CheckoutSpec; env: Record<string, string> } {
  const spec: CheckoutSpec = { product: p.product, qty: p.qty, customer: p.customer };
  if (p.fail !== undefined) {
    // --fail-times counts attempts of the modes that retry; the CLI refuses it with the others.
    const retries = p.fail.mode === 'transient' || p.fail.mode === 'timeout';
    Object.assign(spec, { failAt: p.fail.step, failMode: p.fail.mode, ...(retries ? { failTimes: p.fail.times } : {}) });
    if (p.fail.mode === 'timeout') spec.stepTimeout = 100;
  }
  if (p.failCompensation !== undefined) {
    spec.failCompensation = p.failCompensation.step;
    if (spec.failTimes === undefined && p.failCompensation.times !== undefined) spec.failTimes = p.failCompensation.times;
  }
  return { spec, env: p.crashAt === undefined ? {} : { SAGA_CRASH_AT: p.crashAt } };
}

const EXIT_FOR = { completed: 0, compensated: 3, stuck: 4 } as const;

type Driver = 'cli' | 'in-process';

async function runSchedule(backend: TestBackend, plan: PlannedCheckout[], driver: Driver): Promise<void> {
  const shop = await newShop(backend);
  try {
    await runScheduleOn(shop, plan, driver);
  } finally {
    // One database per run: do not keep a connection to each until the end of the test.
    await closeReaders(shop.db);
  }
}

/** Runs one planned checkout; returns its saga id and status, or undefined when it crashed. */
async function runOne(shop: Shop, p: PlannedCheckout, driver: Driver): Promise<{ sagaId: string; status: string; what: string } | undefined> {
  const { spec, env } = toCli(p);
  if (driver === 'in-process') {
    const run = await checkoutInProcess(shop, spec, env);
    const what = `${JSON.stringify(p)}\n${JSON.stringify(run)}`;
    if (run.crashed !== undefined) {
      expect(p.crashAt, `crashed without a crash point: ${what}`).toBe(run.crashed);
      return undefined;
    }
    return { sagaId: run.sagaId, status: run.outcome!.status, what };
  }
  const run = await checkout(shop, spec, env);
  const what = `${JSON.stringify(p)}\n${explain(run)}`;
  if (run.signal === 'SIGKILL') {
    expect(p.crashAt, `killed without a crash point: ${what}`).toBeDefined();
    return undefined;
  }
  // Ends like the saga it ran: 0 completed, 3 rolled back, 4 stuck; never a usage or internal error.
  expect([0, 3, 4], what).toContain(run.code);
  expect(run.report?.sagaId, what).toBeDefined();
  expect(EXIT_FOR[run.report!.status as keyof typeof EXIT_FOR], what).toBe(run.code);
  return { sagaId: run.report!.sagaId, status: run.report!.status, what };
}

/** Recovery until nothing is left to do (a stuck saga's second chance included): true when all is terminal. */
async function recoverAll(shop: Shop, driver: Driver): Promise<string> {
  let last = '';
  for (let i = 0; i < 3; i++) {
    if (driver === 'in-process') {
      const results = await recoverInProcess(shop);
      last = JSON.stringify(results);
      if (results.every((r) => r.action === 'recovered' && r.outcome.status !== 'stuck')) return '';
    } else {
      const rec = await recover(shop);
      last = explain(rec);
      if (rec.code === 0) return '';
    }
  }
  return last;
}

async function runScheduleOn(shop: Shop, plan: PlannedCheckout[], driver: Driver): Promise<void> {
  for (const p of plan) {
    const known = new Set((await readState(shop)).sagas.map((s) => s.saga_id));
    const run = await runOne(shop, p, driver);
    if (run === undefined) continue;
    expect(known.has(run.sagaId), run.what).toBe(false);
    const status = (await readState(shop)).sagas.find((s) => s.saga_id === run.sagaId)?.status;
    expect(status, run.what).toBe(run.status);
  }

  const before = await readState(shop);
  expect(await recoverAll(shop, driver), 'recovery left something unfinished').toBe('');

  const state = await expectHealthy(shop);
  expect(state.sagas.map((s) => s.saga_id)).toEqual(before.sagas.map((s) => s.saga_id));
  for (const s of before.sagas) {
    const terminal = s.status === 'completed' || s.status === 'compensated';
    const n = takeOvers(shop, s.saga_id);
    if (terminal) expect(n, `terminal saga ${s.saga_id} was taken over`).toBe(0);
    else expect(n, `${s.status} saga ${s.saga_id} was not taken over`).toBeGreaterThanOrEqual(1);
  }
}

const SEED = process.env.FC_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.FC_SEED);
const PATH = process.env.FC_PATH;
/** In process (a thrown crash) the property is cheap: many runs. Through the real CLI, a few. */
const RUNS: Record<Driver, number> = { 'in-process': Number(process.env.FC_RUNS ?? 40), cli: Number(process.env.FC_CLI_RUNS ?? 3) };
const MAX_SHRINK_RUNS = 40;

// After every test of the file (the describes below run at once: one closing early would close the others' readers).
afterAll(() => closeReaders());

describe.concurrent.each(BACKENDS.flatMap((backend) => (['in-process', 'cli'] as const).map((driver) => ({ backend, driver, name: `${backend.name}, ${driver}` }))))(
  'random schedules of failures, crashes and recovery on $name',
  ({ backend, driver }) => {

  it(`keep stock and money conserved and every invariant true (seed ${SEED}, ${RUNS[driver]} runs)`, { timeout: 600_000 }, async () => {
    // Every run asked for is run: no time limit may end the property early and call it a pass.
    // Shrinking a failure spawns processes too, so it is bounded by a count instead: after
    // MAX_SHRINK_RUNS tries the remaining candidates pass at once and the smallest failing case
    // found so far is reported.
    let executed = 0;
    let failures = 0;
    const details = await fc.check(
      fc.asyncProperty(schedule, async (plan) => {
        if (failures > 0 && executed >= RUNS[driver] + MAX_SHRINK_RUNS) return;
        executed++;
        try {
          await runSchedule(backend, plan, driver);
        } catch (err) {
          failures++;
          throw err;
        }
      }),
      { seed: SEED, numRuns: RUNS[driver], ...(PATH === undefined ? {} : { path: PATH }) },
    );
    if (details.failed) {
      const why = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      throw new Error(
        `${fc.defaultReportMessage(details) ?? 'property failed'}\n\nWhat failed: ${why}\n\n` +
          `Replay this case: FC_SEED=${details.seed} FC_PATH=${details.counterexamplePath ?? ''} npm test -- test/faults/random-schedules.test.ts -t '${backend.name}, ${driver}'`,
        { cause: details.errorInstance },
      );
    }
    // Exactly the runs asked for (a replayed FC_PATH decides its own count), each really executed.
    expect({ interrupted: details.interrupted, numSkips: details.numSkips, executed }).toEqual({ interrupted: false, numSkips: 0, executed: details.numRuns });
    if (PATH === undefined) expect(details.numRuns).toBe(RUNS[driver]);
  });
  },
);
