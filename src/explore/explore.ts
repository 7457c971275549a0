import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { openApp, type App } from '../cli/app.js';
import { isPostgresUrl } from '../store/postgres/url.js';
import { copiesOf, disposeTemplate, makeTemplate, type Copies, type CopySource } from './copies.js';
import { resolveGlobals, type GlobalSettings } from '../cli/settings.js';
import { systemClock } from '../engine/clock.js';
import type { SagaDefinition } from '../engine/definition.js';
import type { Batch, SagaStore } from '../engine/store.js';
import { startSaga } from '../engine/runner.js';
import { newSagaId } from '../engine/saga-id.js';
import { processOwner } from '../engine/process-identity.js';
import { faultInjector } from '../engine/faults.js';
import { checkoutSaga, type CheckoutInput } from '../checkout/checkout-saga.js';
import { UsageError } from '../errors.js';
import { depthOneScenarios, depthTwoScenarios, scenarioById, UnknownScenarioError, type RunShape, type Scenario } from './fault-space.js';
import { runScenario, type ScenarioResult } from './run-scenario.js';

/**
 * `saga explore`: the fault space of the checkout saga, each scenario on its own throwaway copy
 * of a seeded database (or of the database given with `--db`, never written: see copies.ts), in
 * this process or in `jobs` worker processes.
 */
export interface Workspace {
  /** The seeded database every scenario starts from a copy of. */
  readonly source: CopySource;
  /** SAGA_PG_SCHEMA of the explored database. */
  readonly pgSchema: string;
  readonly input: Omit<CheckoutInput, 'unitPriceCents' | 'amountCents'>;
  readonly shape: RunShape;
  /** The steps of the saga, for the fault space. */
  readonly definition: SagaDefinition<unknown>;
}

/**
 * Settings every scenario runs with: a short step timeout, so a timeout costs milliseconds, and no
 * backoff between retries; `normal` sync, since a simulated crash never loses the page cache.
 */
function scenarioSettings(db: string, pgSchema: string, stepTimeoutMs = STEP_TIMEOUT_MS): GlobalSettings {
  return resolveGlobals({ flags: { db }, env: { SAGA_STEP_TIMEOUT_MS: String(stepTimeoutMs), SAGA_RETRY_BASE_MS: '0', SAGA_SYNC: 'normal', SAGA_PG_SCHEMA: pgSchema }, dotenv: {} });
}

/**
 * A scenario that injects timeouts waits out each one, so its step timeout is short; every other
 * scenario keeps a long one, so that a slow moment of a loaded machine is never mistaken for a
 * timeout (which would change what the scenario tests).
 */
export const TIMEOUT_SCENARIO_STEP_TIMEOUT_MS = 60;
const STEP_TIMEOUT_MS = 10_000;

function stepTimeoutFor(scenario: Scenario): number {
  return scenario.plan.mode === 'timeout' ? TIMEOUT_SCENARIO_STEP_TIMEOUT_MS : STEP_TIMEOUT_MS;
}

export async function prepareWorkspace(db: string | undefined, pgSchema: string): Promise<Workspace> {
  if (db !== undefined && !isPostgresUrl(db) && !existsSync(db)) {
    throw new UsageError(`no saga database at ${db}: point --db at one, or leave --db out to explore a freshly seeded one`, 'no_database');
  }
  const dir = mkdtempSync(join(tmpdir(), 'saga-explore-'));
  let source: CopySource | undefined;
  try {
    source = await makeTemplate(db, dir, async (path) => (await openApp(scenarioSettings(path, pgSchema), 'if-missing')).close());
    if (source.kind === 'postgres') rmSync(dir, { recursive: true, force: true });
    const copies = copiesOf(source);
    try {
      const input = await withCopy(copies, pgSchema, async (app) => {
        const product = await app.db.get<{ product_id: number }>('SELECT product_id FROM inventory WHERE stock >= 1 ORDER BY product_id = 101 DESC, product_id LIMIT 1');
        const customer = await app.db.get<{ customer_id: number }>('SELECT customer_id FROM customers ORDER BY customer_id LIMIT 1');
        if (product === undefined || customer === undefined) {
          throw new UsageError(`${db ?? 'the database'} has no product in stock or no customer to run a checkout with: run \`saga seed --reset\` on it, or explore without --db`, 'invalid_value');
        }
        return { productId: product.product_id, qty: 1, customerId: customer.customer_id };
      });
      const definition = exploredDefinition();
      const last = definition.steps[definition.steps.length - 1]!.name;
      const shape: RunShape = {
        completed: await withCopy(copies, pgSchema, (app, settings) => probeCommits(app, settings, input, {})),
        rolledBack: await withCopy(copies, pgSchema, (app, settings) => probeCommits(app, settings, input, { failAt: last, mode: 'error' })),
      };
      return { source, pgSchema, input, shape, definition };
    } finally {
      await copies.close();
    }
  } catch (err) {
    if (source !== undefined) await disposeTemplate(source).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Opens a fresh copy, runs `fn` on it, and drops the copy. */
async function withCopy<T>(copies: Copies, pgSchema: string, fn: (app: App, settings: GlobalSettings) => Promise<T>): Promise<T> {
  const db = await copies.make();
  try {
    const settings = scenarioSettings(db, pgSchema);
    const app = await openApp(settings, 'never');
    try {
      return await fn(app, settings);
    } finally {
      await app.close();
    }
  } finally {
    await copies.drop(db);
  }
}

/** Runs one checkout and names each of its commits by what it records. */
async function probeCommits(app: App, settings: GlobalSettings, input: Workspace['input'], plan: Parameters<typeof faultInjector>[0]): Promise<string[]> {
  const labels: string[] = [];
  const store: SagaStore = { ...app.store, commit: (batch) => (labels.push(describeBatch(batch)), app.store.commit(batch)) };
  const product = await app.db.get<{ price_cents: number }>('SELECT price_cents FROM products WHERE product_id = ?', [input.productId]);
  const full: CheckoutInput = { ...input, unitPriceCents: product!.price_cents, amountCents: product!.price_cents * input.qty };
  await startSaga(app.checkout, full, {
    store, logger: { info: () => undefined, warn: () => undefined, error: () => undefined }, clock: systemClock, random: Math.random,
    owner: processOwner(), leaseMs: settings.leaseMs, faults: faultInjector(plan),
  }, { sagaId: newSagaId() });
  return labels;
}

/** What a commit records, in a few words: `inventory, payment started`, `payment ok, order, shipping → completed`. */
function describeBatch(batch: Batch): string {
  const parts: string[] = [];
  for (const op of batch.ops) {
    if (op.op === 'event') {
      const undo = op.event.phase === 'compensation';
      const word = { started: undo ? 'undo started' : 'started', succeeded: undo ? 'undone' : 'ok', failed: undo ? 'undo failed' : 'failed', retrying: undo ? 'undo retrying' : 'retrying' }[op.event.event];
      // A step that started and failed in one commit: its failure says it all.
      const previous = parts[parts.length - 1];
      if (previous === `${op.event.step} ${undo ? 'undo started' : 'started'}`) parts.pop();
      parts.push(`${op.event.step} ${word}`);
    } else if (op.op === 'local') {
      parts.push(`${op.step}${op.phase === 'compensation' ? ' undone' : ''}`);
    } else if (op.op === 'status') {
      parts.push(`→ ${op.status}`);
    }
  }
  return parts.join(', ').replaceAll(', →', ' →');
}

/**
 * The checkout saga's steps and retry budgets, which is all the fault space reads: its calls are
 * never made (each scenario runs the definition its own database opens with).
 */
export function exploredDefinition(): SagaDefinition<unknown> {
  const unused = () => Promise.reject(new Error('the explored definition is not run'));
  const def = checkoutSaga({ provider: { charge: unused, refund: unused }, now: Date.now, timeoutMs: STEP_TIMEOUT_MS, retryBaseDelayMs: 0 });
  return def as SagaDefinition<unknown>;
}

export async function disposeWorkspace(ws: Workspace): Promise<void> {
  await disposeTemplate(ws.source);
}

/** The scenarios of one depth (depth 2 is built from depth 1's results). */
export function scenariosFor(ws: Workspace, depth: 1 | 2, depthOne: readonly ScenarioResult[] = []): Scenario[] {
  if (depth === 1) return depthOneScenarios(ws.definition, ws.shape);
  const leftToRecovery = new Map(depthOne.filter((r) => r.run.crashedAt !== undefined || r.run.status === 'stuck').map((r) => [r.id, r.recoveryCommits] as const));
  return depthTwoScenarios(ws.definition, ws.shape, leftToRecovery);
}

export function findScenario(ws: Workspace, id: string): Scenario {
  try {
    return scenarioById(ws.definition, ws.shape, id);
  } catch (err) {
    if (!(err instanceof UnknownScenarioError)) throw err;
    const close = closestIds(id, depthOneScenarios(ws.definition, ws.shape).map((s) => s.id));
    const hint = close.length === 0 ? '' : ` (did you mean ${close.join(' or ')}?)`;
    throw new UsageError(`no scenario ${id} in the fault space of this saga${hint}: \`saga explore --json\` (or \`--depth 2 --json\`) lists every case id`, 'invalid_value');
  }
}

/** Ids that extend what was given (a prefix), else those a few edits away. */
function closestIds(given: string, ids: readonly string[]): string[] {
  const base = given.split('/')[0]!;
  const extending = ids.filter((id) => id.startsWith(base));
  if (extending.length > 0) return extending.slice(0, 3);
  return ids.filter((id) => editDistance(id, base) <= 3).slice(0, 3);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

/** One scenario on a fresh copy of the template, which is dropped afterwards. */
export async function runOnCopy(ws: Workspace, copies: Copies, scenario: Scenario): Promise<ScenarioResult> {
  const db = await copies.make();
  try {
    return await runScenario(scenario, { settings: scenarioSettings(db, ws.pgSchema, stepTimeoutFor(scenario)), input: ws.input });
  } finally {
    await copies.drop(db);
  }
}

/**
 * Runs `scenarios`, in this process (`jobs` 1) or spread over `jobs` worker processes, calling
 * `onResult` as each ends. Stops between scenarios once `signal` aborts.
 */
export async function runAll(ws: Workspace, scenarios: readonly Scenario[], opts: { jobs: number; signal?: AbortSignal; onResult: (r: ScenarioResult) => void; workerCommand?: readonly string[] }): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  const record = (r: ScenarioResult) => {
    results.push(r);
    opts.onResult(r);
  };
  if (opts.jobs <= 1 || scenarios.length < 2 || opts.workerCommand === undefined) {
    const copies = copiesOf(ws.source);
    try {
      for (const s of scenarios) {
        if (opts.signal?.aborted) break;
        record(await runOnCopy(ws, copies, s));
      }
    } finally {
      await copies.close();
    }
    return results;
  }
  const shards = Array.from({ length: Math.min(opts.jobs, scenarios.length) }, (_, k) => scenarios.filter((_s, i) => i % opts.jobs === k).map((s) => s.id));
  await Promise.all(shards.map((ids) => runWorker(ws, ids, opts.workerCommand!, record, opts.signal)));
  // In the order of the fault space, whichever worker finished first.
  const order = new Map(scenarios.map((s, i) => [s.id, i]));
  return results.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
}

/** What a worker reads on stdin: enough to rebuild the workspace without redoing its set-up. */
export interface WorkerTask {
  readonly workspace: Omit<Workspace, 'definition'>;
  readonly ids: readonly string[];
}

function runWorker(ws: Workspace, ids: readonly string[], command: readonly string[], record: (r: ScenarioResult) => void, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const [exe, ...args] = command as [string, ...string[]];
    const child = spawn(exe, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    const stop = () => child.kill('SIGTERM');
    signal?.addEventListener('abort', stop, { once: true });
    const task: WorkerTask = { workspace: { source: ws.source, pgSchema: ws.pgSchema, input: ws.input, shape: ws.shape }, ids };
    child.stdin.end(JSON.stringify(task));
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.trim() !== '') record(JSON.parse(line) as ScenarioResult);
    });
    child.on('error', reject);
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', stop);
      if (code === 0 || signal?.aborted) resolve();
      else reject(new Error(`an explore worker failed (exit ${code ?? sig})`));
    });
  });
}

/** The worker side: the task from stdin, one JSON line per scenario on stdout. */
export async function runWorkerTask(task: WorkerTask, signal: AbortSignal, write: (line: string) => void): Promise<void> {
  const definition = exploredDefinition();
  const ws: Workspace = { ...task.workspace, definition };
  const copies = copiesOf(ws.source);
  try {
    for (const id of task.ids) {
      if (signal.aborted) break;
      write(`${JSON.stringify(await runOnCopy(ws, copies, scenarioById(definition, ws.shape, id)))}\n`);
    }
  } finally {
    await copies.close();
  }
}
