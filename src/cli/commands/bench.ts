import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBench, type BenchResult } from '../../bench/run-bench.js';
import { faultInjector, killProcess, noFaults, type FaultInjector } from '../../engine/faults.js';
import { checkInvariants } from '../../checkout/invariants.js';
import { localMachine, processOwner } from '../../engine/process-identity.js';
import { checkoutSaga, CHECKOUT_SAGA } from '../../checkout/checkout-saga.js';
import { ExitCode, signalExitCode, UsageError, type StopSignal } from '../../errors.js';
import { findProduct } from '../../checkout/queries.js';
import { redactUrl } from '../../store/postgres/url.js';
import { openApp, type App } from '../app.js';
import { checkLogFile, commandLogger, lockWaitNotice, type CommandContext } from '../context.js';
import { again, listenForInterrupts } from '../interrupt.js';
import { loadTracing } from '../../telemetry/load.js';
import { crashPoints, databaseNamed, logFileNamed } from '../settings.js';
import { chalkFor, table } from '../output/format.js';
import { progressBar } from '../output/progress.js';

export interface BenchFlags {
  readonly n?: number;
  readonly concurrency?: number;
  readonly failRate?: number;
  readonly product?: number;
  readonly seed?: number;
  readonly processes?: number;
  readonly json?: boolean;
}

/**
 * `saga bench`: throughput and latency of the engine, then `verify`. Thousands of checkouts
 * would bury the demo's sagas and empty its stock, so unless a database is named (--db, SAGA_DB,
 * DATABASE_URL, or .env) the bench runs on a new scratch database (and log), removed afterwards.
 */
export async function benchCommand(flags: BenchFlags, ctx: CommandContext): Promise<number> {
  // The children of --processes are told their database by the parent, which has said it already.
  const child = ctx.sources.env[BENCH_CHILD] === '1';
  // Said once the bench is sure to start: bad input stays one line.
  const say = (line: string) => () => void (child || ctx.stderr.write(`saga: ${line}\n`));
  if (databaseNamed(ctx.sources)) return benchOn(flags, ctx, say(`benchmarking on ${redactUrl(ctx.settings.db)}`));
  const dir = mkdtempSync(join(tmpdir(), 'saga-bench-'));
  const settings = { ...ctx.settings, db: join(dir, 'bench.db'), ...(logFileNamed(ctx.sources) ? {} : { logFile: join(dir, 'bench.log') }) };
  const remove = () => rmSync(dir, { recursive: true, force: true });
  // A second Ctrl-C exits at once: the scratch database goes then too.
  process.once('exit', remove);
  try {
    return await benchOn(flags, { ...ctx, settings }, say(`benchmarking on a scratch database, ${settings.db}, removed afterwards (give --db to bench another)`));
  } finally {
    process.off('exit', remove);
    remove();
  }
}

/** Set in the environment of the children of --processes. */
const BENCH_CHILD = 'SAGA_BENCH_CHILD';

async function benchOn(flags: BenchFlags, ctx: CommandContext, announce: () => void): Promise<number> {
  checkLogFile(ctx.settings.logFile);
  if ((flags.processes ?? 1) > 1) return benchProcesses(flags, ctx, announce);
  const app = await openApp(ctx.settings, 'if-missing', undefined, groupCrashPoints(ctx), lockWaitNotice(ctx));
  app.checkpointInBackground();
  try {
    await checkProduct(app, flags.product ?? 101);
  } catch (err) {
    await app.close();
    throw err;
  }
  announce();
  // Injected timeouts and retries should show the paths, not dominate the run.
  const checkout = checkoutSaga({ provider: app.provider, now: Date.now, timeoutMs: 50, retryBaseDelayMs: 1 });
  const { logger, close } = commandLogger(ctx, { console: false });
  const tracing = await loadTracing(ctx.sources.env, (line) => ctx.stderr.write(`saga: ${line}\n`));
  const n = flags.n ?? 1000;
  const progress = (ctx.stderr as { isTTY?: boolean }).isTTY === true && !flags.json ? progressBar(ctx.stderr, n) : undefined;
  const interrupts = listenForInterrupts({
    onFirst: (sig) => ctx.stderr.write(`${progress === undefined ? '' : '\n'}saga: interrupted: starting no more checkouts; letting those in flight finish, then reporting; ${again(sig)} to stop now\n`),
    onSecond: (sig) => {
      ctx.stderr.write(`saga: ${sig} again: stopped at once; the checkouts in flight are left to \`saga recover\` once their leases expire\n`);
      process.exit(signalExitCode(sig as StopSignal));
    },
  });
  try {
    const result = await runBench(
      { n, concurrency: flags.concurrency ?? 1, failRate: flags.failRate ?? 0, productId: flags.product ?? 101, seed: flags.seed ?? 1 },
      {
        db: app.db, store: app.store, checkout, definitions: new Map([[CHECKOUT_SAGA, checkout]]), logger,
        owner: processOwner(), leaseMs: ctx.settings.leaseMs, signal: interrupts.signal,
        ...(tracing === undefined ? {} : { tracer: tracing.tracer }),
        ...(progress === undefined ? {} : { onProgress: progress.update }),
        ...(app.counters === undefined ? {} : { counters: app.counters }),
      },
    );
    progress?.done();
    const report = { ...result, durability: ctx.settings.durability, db: app.db.label };
    ctx.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : render(result, ctx.settings.durability, ctx.color));
    const interrupted = interrupts.exitCode();
    if (interrupted !== undefined) {
      ctx.stderr.write(`saga: interrupted after ${result.n} of ${n} checkouts; those in flight finished\n`);
      return interrupted;
    }
    return result.violations === 0 ? ExitCode.ok : ExitCode.violations;
  } finally {
    interrupts.dispose();
    await tracing?.shutdown();
    close();
    await app.close();
  }
}

function render(r: BenchResult, durability: string, color: boolean): string {
  const c = chalkFor(color);
  const rows = [
    ['checkouts', `${r.n} (concurrency ${r.concurrency}, durability ${durability}, fail rate ${r.failRate}, seed ${r.seed})`],
    ['duration', `${r.durationMs.toFixed(0)} ms`],
    ['throughput', c.bold(`${r.throughput.toFixed(1)} checkouts/s`)],
    ['latency', `p50 ${r.latencyMs.p50} ms, p95 ${r.latencyMs.p95} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms`],
    ...(r.perCheckout === undefined ? [] : perCheckoutRows(r.perCheckout)),
    ['outcomes', `${r.outcomes.completed} completed, ${r.outcomes.compensated} compensated, ${r.outcomes.stuck} stuck, ${r.outcomes.crashedBeforeFirstCommit} crashed before their first commit (${r.crashedAndRecovered} crashed later and were recovered)`],
    ['verify', r.violations === 0 ? c.green('all invariants hold') : c.red(`${r.violations} violation(s): run \`saga verify\``)],
  ];
  return `${table(rows.map(([k, v]) => [c.dim(k!), v!]))}\n`;
}

/**
 * The bench's own checkouts get random faults from --fail-rate, and crash by a throw. The crash
 * points inside a shared transaction (`SAGA_CRASH_AT=group:<k>:before|after`, see
 * store/sqlite/write-group.ts) are the process's, not a checkout's: there the process really dies.
 */
function groupCrashPoints(ctx: CommandContext): FaultInjector {
  // Only SAGA_CRASH_AT is read: the bench's faults come from --fail-rate, and SAGA_FAIL_* are not its.
  const points = (crashPoints(ctx.sources) ?? []).filter((p) => p.startsWith('group:'));
  if (points.length === 0) return noFaults;
  return faultInjector({ crashAt: points }, (point) => {
    ctx.stderr.write(`saga: crashing at ${point} as asked (a SIGKILL, exit 137): \`saga recover\` finishes the sagas in flight\n`);
    return killProcess();
  });
}

/** "saga log 0.125, provider 0.063 per checkout": how many transactions a checkout cost (concurrent ones share them). */
function perCheckoutRows(p: NonNullable<BenchResult['perCheckout']>): string[][] {
  const rows = [['commits', `saga log ${p.commits}, provider ${p.providerCommits} per checkout`]];
  if (p.roundTrips !== null) rows.push(['round trips', `${p.roundTrips} per checkout`]);
  return rows;
}

/**
 * `--processes p`: p `saga bench` processes at once against the same database, each running its
 * share of the checkouts (the contention a fleet of hosts makes). Throughput is all checkouts
 * over the longest child's run; the parent verifies once they are all done.
 */
async function benchProcesses(flags: BenchFlags, ctx: CommandContext, announce: () => void): Promise<number> {
  const processes = flags.processes ?? 1;
  const n = flags.n ?? 1000;
  if (n < processes) throw new UsageError(`--n ${n} is fewer checkouts than --processes ${processes}: give each process at least one`, 'conflicting_options');
  // Create and migrate once, and check the product, before the children race to.
  const app = await openApp(ctx.settings, 'if-missing');
  try {
    await checkProduct(app, flags.product ?? 101);
  } finally {
    await app.close();
  }
  announce();
  const args = (share: number, seed: number) => [
    process.argv[1]!, 'bench', '--json', '--n', String(share), '--concurrency', String(flags.concurrency ?? 1),
    '--fail-rate', String(flags.failRate ?? 0), '--product', String(flags.product ?? 101), '--seed', String(seed),
    '--log-file', ctx.settings.logFile, '--sync', ctx.settings.durability,
  ];
  // The database goes by environment, not argv: a URL's password must not show in `ps`.
  const env = { ...process.env, SAGA_DB: ctx.settings.db, [BENCH_CHILD]: '1' };
  const shares = Array.from({ length: processes }, (_, k) => Math.floor(n / processes) + (k < n % processes ? 1 : 0));
  const children = await Promise.all(shares.map((share, k) => runChild(args(share, (flags.seed ?? 1) + k), env)));
  const results = children.map((c) => JSON.parse(c) as BenchResult);
  const durationMs = Math.max(...results.map((r) => r.durationMs));
  const verifyApp = await openApp(ctx.settings, 'never');
  let violations: number;
  try {
    violations = (await checkInvariants(verifyApp.db, { now: Date.now(), machine: localMachine() })).length;
  } finally {
    await verifyApp.close();
  }
  const sum = (f: (r: BenchResult) => number) => results.reduce((a, r) => a + f(r), 0);
  const combined: BenchResult = {
    n,
    concurrency: flags.concurrency ?? 1,
    failRate: flags.failRate ?? 0,
    seed: flags.seed ?? 1,
    durationMs,
    throughput: Math.round((n / durationMs) * 1000 * 100) / 100,
    // Percentiles of the children's percentiles: the worst child's, a conservative bound.
    latencyMs: {
      p50: Math.max(...results.map((r) => r.latencyMs.p50)),
      p95: Math.max(...results.map((r) => r.latencyMs.p95)),
      p99: Math.max(...results.map((r) => r.latencyMs.p99)),
      max: Math.max(...results.map((r) => r.latencyMs.max)),
    },
    outcomes: {
      completed: sum((r) => r.outcomes.completed),
      compensated: sum((r) => r.outcomes.compensated),
      stuck: sum((r) => r.outcomes.stuck),
      crashedBeforeFirstCommit: sum((r) => r.outcomes.crashedBeforeFirstCommit),
    },
    crashedAndRecovered: sum((r) => r.crashedAndRecovered),
    violations,
    ...combinedPerCheckout(results),
  };
  const report = { ...combined, processes, perProcess: results.map((r) => ({ n: r.n, durationMs: r.durationMs, throughput: r.throughput })), durability: ctx.settings.durability, db: redactUrl(ctx.settings.db) };
  ctx.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : `${processes} processes\n${render(combined, ctx.settings.durability, ctx.color)}`);
  return violations === 0 ? ExitCode.ok : ExitCode.violations;
}

/** The children's costs per checkout, weighted by their checkouts; absent unless every child counted. */
function combinedPerCheckout(results: readonly BenchResult[]): Pick<BenchResult, 'perCheckout'> {
  const total = results.reduce((a, r) => a + r.n, 0);
  if (total === 0 || results.some((r) => r.perCheckout === undefined)) return {};
  const mean = (f: (p: NonNullable<BenchResult['perCheckout']>) => number) => Math.round((results.reduce((a, r) => a + f(r.perCheckout!) * r.n, 0) / total) * 1000) / 1000;
  const roundTrips = results.every((r) => r.perCheckout!.roundTrips !== null) ? mean((p) => p.roundTrips!) : null;
  return { perCheckout: { commits: mean((p) => p.commits), providerCommits: mean((p) => p.providerCommits), roundTrips } };
}

function runChild(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 || code === 5 ? resolve(out) : reject(new Error(`bench child exited ${code}`))));
  });
}

async function checkProduct(app: App, productId: number): Promise<void> {
  if ((await findProduct(app.db, productId)) === undefined) throw new UsageError(`unknown product ${productId}: run \`saga inventory\` to see the products`, 'unknown_product');
}
