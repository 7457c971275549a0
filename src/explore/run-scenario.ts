import { spawnSync } from 'node:child_process';
import type { CheckoutInput } from '../checkout/checkout-saga.js';
import { checkInvariants, type Violation } from '../checkout/invariants.js';
import { openApp, type App } from '../cli/app.js';
import type { GlobalSettings } from '../cli/settings.js';
import { SimulatedCrashError } from '../engine/attempt.js';
import { systemClock } from '../engine/clock.js';
import { countingCommits, withCommitPoints } from '../engine/commit-points.js';
import { faultInjector } from '../engine/faults.js';
import { localMachine, processOwner } from '../engine/process-identity.js';
import { recoverAbandonedSagas, type RecoveryDeps, type RecoveryResult } from '../engine/recovery.js';
import { startSaga, type EngineLogger, type SagaOutcome } from '../engine/runner.js';
import { newSagaId } from '../engine/saga-id.js';
import type { Owner, SagaStatus } from '../engine/store.js';
import { exitCodeOfStatus } from '../errors.js';
import type { Scenario } from './fault-space.js';

/**
 * Runs one scenario in this process on its own copy of the database: the checkout with the
 * scenario's faults, then recovery (without faults, rule 8 of docs/guarantees.md) as often as
 * it takes, then every invariant.
 *
 * A crash is a thrown `SimulatedCrashError`, which is the same as a SIGKILL here: every crash
 * point fires before anything of its step is asked for, or inside the open transaction that would
 * record its outcome (the throw rolls it back, as the database does for a killed process), or
 * just after a commit (durable, and nothing after it runs). What survives is exactly what a
 * killed process leaves: the database. The crashed run's owner is a process that has exited, so
 * recovery takes the saga over at once, as after a real kill. test/explore checks a sample of
 * scenarios against real processes killed with SIGKILL.
 */
export type Cell = 'completed' | 'compensated' | 'recovered' | 'stuck-then-recovered' | 'violation';

export interface ScenarioResult {
  readonly id: string;
  readonly row: string;
  readonly column: string;
  readonly depth: 1 | 2;
  readonly cell: Cell;
  /** How the run ended: its status, or the crash point that stopped it. */
  readonly run: { readonly status?: SagaOutcome['status']; readonly crashedAt?: string };
  /** The saga's status once recovery is done. */
  readonly finalStatus: SagaStatus;
  /** Commits made by the first recovery (the boundaries depth 2 crashes a recoverer at). */
  readonly recoveryCommits: number;
  readonly violations: readonly Violation[];
  readonly ms: number;
}

/** A saga that is left for recovery was owned by this pid: a process that has exited. */
const DEAD_PID = spawnSync(process.execPath, ['-e', '0']).pid;

export function crashedOwner(): Owner {
  const live = processOwner();
  return { ...live, id: live.id.replace(`:${process.pid}:`, `:${DEAD_PID}:`), pid: DEAD_PID };
}

const quiet: EngineLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

function crash(point: string): never {
  throw new SimulatedCrashError(point);
}

export interface ScenarioDatabase {
  /** Settings that open this scenario's own copy. */
  readonly settings: GlobalSettings;
  readonly input: Omit<CheckoutInput, 'unitPriceCents' | 'amountCents'>;
}

/** Recovery rounds before a saga that is still not terminal counts as a violation. */
const MAX_RECOVERY_ROUNDS = 4;

export async function runScenario(scenario: Scenario, target: ScenarioDatabase): Promise<ScenarioResult> {
  const started = performance.now();
  const app = await openApp(target.settings, 'never');
  try {
    const run = await runCheckout(app, scenario, target);
    const violations: Violation[] = [];
    // The exit code `saga checkout` reports is decided by the outcome; the saga's row must agree.
    if (run.status !== undefined) {
      const row = await app.store.getSaga(run.sagaId);
      if (row?.status !== run.status) {
        violations.push({ invariant: 'exit-code-disagrees', message: `the checkout ended ${run.status} (exit ${exitCodeOfStatus(run.status)}) but saga ${run.sagaId} is ${row?.status ?? 'missing'}`, rows: [] });
      }
    }
    const recovery = await recover(app, scenario, target.settings);
    violations.push(...recovery.violations);
    const saga = await app.store.getSaga(run.sagaId);
    const finalStatus: SagaStatus = saga?.status ?? 'running';
    if (saga === undefined && run.crashedAt === undefined) {
      violations.push({ invariant: 'saga-lost', message: `saga ${run.sagaId} ran but is not in the saga log`, rows: [] });
    }
    violations.push(...(await checkInvariants(app.db, { now: systemClock.now(), machine: localMachine() })));
    violations.push(...(await sagaChecks(app, run.sagaId, saga === undefined)));
    const cell: Cell =
      violations.length > 0 ? 'violation'
      : run.crashedAt !== undefined ? 'recovered'
      : run.status === 'stuck' ? 'stuck-then-recovered'
      : run.status!;
    return {
      id: scenario.id, row: scenario.row, column: scenario.column, depth: scenario.depth, cell,
      run: run.crashedAt === undefined ? { status: run.status! } : { crashedAt: run.crashedAt },
      finalStatus, recoveryCommits: recovery.commits, violations, ms: performance.now() - started,
    };
  } finally {
    await app.close();
  }
}

interface RunEnd {
  readonly sagaId: string;
  readonly status?: SagaOutcome['status'];
  readonly crashedAt?: string;
}

async function runCheckout(app: App, scenario: Scenario, target: ScenarioDatabase): Promise<RunEnd> {
  const product = await app.db.get<{ price_cents: number }>('SELECT price_cents FROM products WHERE product_id = ?', [target.input.productId]);
  if (product === undefined) throw new Error(`product ${target.input.productId} vanished from the scenario's database`);
  const input: CheckoutInput = { ...target.input, unitPriceCents: product.price_cents, amountCents: product.price_cents * target.input.qty };
  const faults = faultInjector(scenario.plan, crash);
  const sagaId = newSagaId();
  try {
    const outcome = await startSaga(app.checkout, input, {
      store: withCommitPoints(app.store, faults), logger: quiet, clock: systemClock, random: Math.random,
      owner: crashedOwner(), leaseMs: target.settings.leaseMs, faults,
    }, { sagaId });
    return { sagaId, status: outcome.status };
  } catch (err) {
    if (err instanceof SimulatedCrashError) return { sagaId, crashedAt: err.point };
    throw err;
  }
}

/**
 * `saga recover` until nothing is left to do: the first round as the scenario says (a recoverer
 * that crashes at one of its commits, or two at once), the next ones plain.
 */
async function recover(app: App, scenario: Scenario, settings: GlobalSettings): Promise<{ commits: number; violations: Violation[] }> {
  const violations: Violation[] = [];
  const deps = (store: App['store'], owner: Owner): RecoveryDeps => ({
    store, logger: quiet, clock: systemClock, random: Math.random, owner, leaseMs: settings.leaseMs, machine: localMachine(owner),
  });
  let commits = 0;
  const { crashAtCommit, recoverers } = scenario.recovery;
  if (crashAtCommit !== undefined) {
    const faults = faultInjector({ crashAt: [`commit:${crashAtCommit.n}:${crashAtCommit.when}`] }, crash);
    try {
      await recoverAbandonedSagas(app.definitions, deps(withCommitPoints(app.store, faults), crashedOwner()));
    } catch (err) {
      if (!(err instanceof SimulatedCrashError)) throw err;
    }
  } else if (recoverers === 2) {
    // A second connection, as a second process would have.
    const other = await openApp(settings, 'never');
    try {
      const results = await Promise.all([
        recoverAbandonedSagas(app.definitions, deps(app.store, processOwner())),
        recoverAbandonedSagas(other.definitions, deps(other.store, processOwner())),
      ]);
      violations.push(...raced(results));
    } finally {
      await other.close();
    }
  }
  for (let round = 0; round < MAX_RECOVERY_ROUNDS; round++) {
    if ((await app.store.listUnfinished()).length === 0) break;
    const counted = countingCommits(app.store);
    const results = await recoverAbandonedSagas(app.definitions, deps(counted.store, processOwner()));
    if (round === 0) commits = counted.count();
    violations.push(...failedRecoveries(results));
  }
  return { commits, violations };
}

/** Of two recoverers, each saga was driven by exactly one. */
function raced(results: readonly RecoveryResult[][]): Violation[] {
  const drivers = new Map<string, number>();
  for (const r of results.flat()) if (r.action === 'recovered') drivers.set(r.sagaId, (drivers.get(r.sagaId) ?? 0) + 1);
  return [...drivers].filter(([, n]) => n > 1).map(([sagaId, n]) => ({ invariant: 'driven-twice', message: `saga ${sagaId} was recovered by ${n} recoverers at once`, rows: [] }));
}

function failedRecoveries(results: readonly RecoveryResult[]): Violation[] {
  return results
    .filter((r) => r.action === 'failed' || r.action === 'damaged' || r.action === 'unknown-definition')
    .map((r) => ({ invariant: 'recovery-failed', message: `recovery could not drive saga ${r.sagaId}: ${'error' in r ? r.error : r.action}`, rows: [] }));
}

/**
 * What `saga verify` cannot see from the tables alone: every saga ended (recovery ran without
 * faults, so nothing may stay stuck), and compensations ran in exactly the reverse order of the
 * steps that took (or may have taken) effect.
 */
async function sagaChecks(app: App, sagaId: string, missing: boolean): Promise<Violation[]> {
  const violations: Violation[] = [];
  for (const s of await app.store.listUnfinished()) {
    violations.push({ invariant: 'saga-not-terminal', message: `saga ${s.sagaId} is still ${s.status} after recovery without faults`, rows: [] });
  }
  if (missing) return violations;
  const events = await app.store.getEvents(sagaId);
  const compensated = events.filter((e) => e.phase === 'compensation' && e.event === 'started').map((e) => e.stepIndex);
  const firstStarts = compensated.filter((k, i) => compensated.indexOf(k) === i);
  const reverse = [...firstStarts].sort((a, b) => b - a);
  if (firstStarts.join() !== reverse.join()) {
    violations.push({ invariant: 'compensation-order', message: `saga ${sagaId} compensated steps ${firstStarts.join(', ')}: not in reverse order`, rows: [] });
  }
  return violations;
}
