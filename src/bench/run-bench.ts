import { randomUUID } from 'node:crypto';
import { CHECKOUT_STEPS, type CheckoutInput } from '../checkout/checkout-saga.js';
import { checkInvariants } from '../checkout/invariants.js';
import { findProduct } from '../checkout/queries.js';
import type { SagaDefinition } from '../engine/definition.js';
import { faultInjector, noFaults, type FaultPlan } from '../engine/faults.js';
import { localMachine } from '../engine/process-identity.js';
import { recoverSaga, type DefinitionRegistry, type LocalMachine } from '../engine/recovery.js';
import { SimulatedCrashError } from '../engine/attempt.js';
import { systemClock } from '../engine/clock.js';
import { startSaga, type EngineLogger } from '../engine/runner.js';
import type { SagaTracer } from '../engine/tracing.js';
import type { Owner, SagaStore } from '../engine/store.js';
import type { SqlDatabase } from '../store/sql.js';
import { UsageError } from '../errors.js';
import { percentile, seededRandom } from './random.js';
import { newSagaId } from '../engine/saga-id.js';
import type { WriteCounters } from '../store/sql.js';

export interface BenchOptions {
  readonly n: number;
  readonly concurrency: number;
  readonly failRate: number;
  readonly productId: number;
  readonly seed: number;
}

export interface BenchDeps {
  readonly db: SqlDatabase;
  readonly store: SagaStore;
  readonly checkout: SagaDefinition<CheckoutInput>;
  readonly definitions: DefinitionRegistry;
  readonly logger: EngineLogger;
  readonly owner: Owner;
  readonly leaseMs: number;
  /** Each checkout a trace, when tracing is on. */
  readonly tracer?: SagaTracer;
  readonly onProgress?: (done: number) => void;
  /** The database's counters (commits, round trips), read before and after the checkouts. */
  readonly counters?: () => WriteCounters;
  /** Once aborted (Ctrl-C), no new checkout starts; those in flight finish, then the report. */
  readonly signal?: AbortSignal;
}

export interface BenchOutcomes {
  completed: number;
  compensated: number;
  stuck: number;
  crashedBeforeFirstCommit: number;
}

export interface BenchResult {
  readonly n: number;
  readonly concurrency: number;
  readonly failRate: number;
  readonly seed: number;
  readonly durationMs: number;
  readonly throughput: number;
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number; readonly max: number };
  /**
   * How each of the `n` checkouts ended (they add up to `n`): the status its saga has in the
   * database, or `crashedBeforeFirstCommit` (a "crash" before anything of it was committed, so
   * there is no saga row and nothing to recover).
   */
  readonly outcomes: BenchOutcomes;
  /** Of the sagas counted in `outcomes`, those a "crash" left to recovery, which then ended them. */
  readonly crashedAndRecovered: number;
  readonly violations: number;
  /** Per checkout, over the checkouts alone (not restocking, recovery or verify); absent when not counted. */
  /** `roundTrips` is null where there is no server to go to (SQLite). */
  readonly perCheckout?: { readonly commits: number; readonly providerCommits: number; readonly roundTrips: number | null };
}

/**
 * `saga bench`: n checkouts, c in flight at a time, in this process. With probability
 * `failRate` a checkout gets a random fault (any mode, or a compensation fault) from a seeded
 * source. Crashes are simulated by a throw at the fault point (the transaction in flight rolls
 * back, the saga is left to recovery), and recovered at the end. Ends with `verify`.
 */
export async function runBench(opts: BenchOptions, deps: BenchDeps): Promise<BenchResult> {
  const random = seededRandom(opts.seed);
  const product = await findProduct(deps.db, opts.productId);
  if (product === undefined) throw new UsageError(`unknown product ${opts.productId}: run \`saga inventory\` to see the products`, 'unknown_product');
  const input: CheckoutInput = { productId: product.productId, qty: 1, customerId: 1, unitPriceCents: product.priceCents, amountCents: product.priceCents };
  await restock(deps.db, input, opts.n);

  const plans = Array.from({ length: opts.n }, () => (random() < opts.failRate ? randomFault(random) : undefined));
  const latencies: number[] = [];
  const outcomes: BenchOutcomes = { completed: 0, compensated: 0, stuck: 0, crashedBeforeFirstCommit: 0 };
  const crashed: string[] = [];
  // The checkouts run as a simulated process of their own, whose crashes are throws: once the run
  // is over, every saga it still owns is one whose owner died (and nobody else's saga is).
  const runner: Owner = { ...deps.owner, id: `${deps.owner.id}:bench-${randomUUID().slice(0, 8)}`, pidScope: `bench-${randomUUID()}`, startedAt: null };
  let next = 0;
  const before = deps.counters?.();
  const started = performance.now();
  let yielded = performance.now();
  const worker = async () => {
    while (next < opts.n && !deps.signal?.aborted) {
      // On SQLite a checkout never leaves the microtask queue, so without a turn of the event loop
      // now and then, Ctrl-C (and every timer) would wait for the whole run.
      if (performance.now() - yielded > 20) {
        yielded = performance.now();
        await new Promise((resolve) => setImmediate(resolve));
        // Another worker may have taken the last checkout meanwhile.
        if (next >= opts.n || deps.signal?.aborted) break;
      }
      const plan = plans[next++];
      const t0 = performance.now();
      const sagaId = newSagaId();
      try {
        const outcome = await startSaga(deps.checkout, input, {
          store: deps.store,
          logger: deps.logger,
          clock: systemClock,
          random,
          owner: runner,
          leaseMs: deps.leaseMs,
          ...(deps.tracer === undefined ? {} : { tracer: deps.tracer }),
          faults: plan === undefined ? noFaults : faultInjector(plan, (point) => { throw new SimulatedCrashError(point); }),
        }, { sagaId });
        outcomes[outcome.status]++;
      } catch (err) {
        if (!(err instanceof SimulatedCrashError)) throw err;
        crashed.push(sagaId);
      }
      latencies.push(performance.now() - t0);
      deps.onProgress?.(latencies.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, opts.n) }, worker));
  const durationMs = performance.now() - started;
  const after = deps.counters?.();

  // Recover exactly the sagas that crashed, no other (stuck ones stay stuck and are counted once,
  // other processes' sagas are theirs), and count each by how it ended.
  const deadRunner: LocalMachine = { host: runner.host, pidScope: runner.pidScope, process: () => ({ alive: false }) };
  const recoveryDeps = { store: deps.store, logger: deps.logger, clock: systemClock, random, owner: deps.owner, leaseMs: deps.leaseMs, machine: deadRunner, ...(deps.tracer === undefined ? {} : { tracer: deps.tracer }) };
  let crashedAndRecovered = 0;
  for (const sagaId of crashed) {
    const saga = await deps.store.getSaga(sagaId);
    if (saga === undefined) {
      outcomes.crashedBeforeFirstCommit++;
      continue;
    }
    const result = await recoverSaga(saga, deps.definitions, recoveryDeps);
    if (result.action === 'recovered') {
      outcomes[result.outcome.status]++;
      crashedAndRecovered++;
      continue;
    }
    if (result.action !== 'owned' && result.action !== 'taken-by-another') {
      throw new Error(`bench: saga ${sagaId} crashed and could not be recovered (${result.action})`);
    }
    // A recoverer outside the bench (`saga recover --watch` on the same database) got there first:
    // wait for its outcome and count that.
    outcomes[await endOf(deps.store, sagaId)]++;
    crashedAndRecovered++;
  }

  latencies.sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 100) / 100;
  const ran = latencies.length;
  return {
    n: ran,
    concurrency: opts.concurrency,
    failRate: opts.failRate,
    seed: opts.seed,
    durationMs: round(durationMs),
    throughput: round((ran / durationMs) * 1000),
    latencyMs: { p50: round(percentile(latencies, 50)), p95: round(percentile(latencies, 95)), p99: round(percentile(latencies, 99)), max: round(latencies.at(-1) ?? 0) },
    outcomes,
    crashedAndRecovered,
    violations: (await checkInvariants(deps.db, { now: Date.now(), machine: localMachine(deps.owner) })).length,
    ...(before === undefined || after === undefined || ran === 0 ? {} : { perCheckout: perCheckout(before, after, ran) }),
  };
}

function perCheckout(before: WriteCounters, after: WriteCounters, n: number): NonNullable<BenchResult['perCheckout']> {
  const per = (a: number, b: number) => Math.round(((a - b) / n) * 1000) / 1000;
  return {
    commits: per(after.commits, before.commits),
    providerCommits: per(after.providerCommits, before.providerCommits),
    roundTrips: after.roundTrips === undefined || before.roundTrips === undefined ? null : per(after.roundTrips, before.roundTrips),
  };
}

/**
 * Puts enough stock and funds in place, in one transaction (as seeded stock and opening balance,
 * so the invariants still hold). Relative updates, so bench processes running at once can each
 * add what they need.
 */
async function restock(db: SqlDatabase, input: CheckoutInput, n: number): Promise<void> {
  await db.batch([
    { sql: 'UPDATE inventory SET stock = stock + ? WHERE product_id = ?', params: [n * input.qty, input.productId] },
    { sql: 'UPDATE products SET seeded_stock = seeded_stock + ? WHERE product_id = ?', params: [n * input.qty, input.productId] },
    { sql: 'UPDATE provider_accounts SET balance_cents = balance_cents + ?, opening_balance_cents = opening_balance_cents + ? WHERE customer_id = ?', params: [n * input.amountCents, n * input.amountCents, input.customerId] },
  ]);
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

function randomFault(random: () => number): FaultPlan {
  const failAt = pick(random, CHECKOUT_STEPS);
  const mode = pick(random, ['error', 'transient', 'timeout', 'crash'] as const);
  const plan: FaultPlan = { failAt, mode, times: 1 + Math.floor(random() * 3) };
  if (random() < 0.3) {
    const compensation = pick(random, CHECKOUT_STEPS);
    return { ...plan, mode: 'error', failCompensation: compensation, compensationMode: 'transient', compensationTimes: 1 + Math.floor(random() * 6) };
  }
  return plan;
}

/** How a saga someone else is driving ends: polls its row until it is terminal or stuck. */
async function endOf(store: BenchDeps['store'], sagaId: string): Promise<'completed' | 'compensated' | 'stuck'> {
  for (;;) {
    const saga = await store.getSaga(sagaId);
    if (saga?.status === 'completed' || saga?.status === 'compensated' || saga?.status === 'stuck') return saga.status;
    await systemClock.sleep(50);
  }
}
