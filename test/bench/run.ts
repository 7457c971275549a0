/**
 * `npm run bench`: the engine against a hand-written baseline, cold start against bare node, and
 * `list` / `show` on 100,000 sagas, `saga explore` at depth 1 and 2, and `saga serve` under autocannon
 * (serve-load.ts), all in one run on this machine. Prints a table and
 * writes the same figures to test/bench/results.json. Figures are medians of several rounds that
 * alternate engine and baseline, so a noisy neighbour hurts both alike.
 *
 * `npm run bench:cold` (this file with `--cold`): the cold start alone, on whichever `node` runs
 * it, printed and not written to results.json: run it once per supported Node version.
 * BENCH_COLD_ENTRY times another entry script in place of bin/saga.cjs (to compare mechanisms).
 * Two reference points are timed with it: `saga --version` (starting the CLI, no database) and
 * test/bench/cold-floor.cjs (the SQLite work of a checkout alone, no saga code).
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runBench, type BenchResult } from '../../src/bench/run-bench.js';
import { newSagaId } from '../../src/engine/saga-id.js';
import { percentile } from '../../src/bench/random.js';
import { seedCatalog } from '../../src/checkout/catalog.js';
import { CHECKOUT_SAGA, checkoutSaga } from '../../src/checkout/checkout-saga.js';
import { sqlitePaymentProvider } from '../../src/checkout/payment-provider-sqlite.js';
import { listCommand } from '../../src/cli/commands/list.js';
import { showCommand } from '../../src/cli/commands/show.js';
import type { CommandContext } from '../../src/cli/context.js';
import { resolveGlobals } from '../../src/cli/settings.js';
import { createLogger } from '../../src/log.js';
import { migrateSqlite } from '../../src/store/sqlite/migrate.js';
import type { Durability } from '../../src/store/sql.js';
import { openSqlite, type Db } from '../../src/store/sqlite/open.js';
import { sqliteSagaStore } from '../../src/store/sqlite/saga-store.js';
import { sagasInFlight } from '../../src/store/group-commit.js';
import { baselineCheckouts, minimalCheckouts } from './baseline.js';
import { printServeLoad, serveLoadRows } from './serve-load.js';
import { postgresBaselineCheckouts, postgresMinimalCheckouts } from './baseline-postgres.js';
import { postgresDatabase } from '../../src/store/postgres/database.js';
import { openPostgres } from '../../src/store/postgres/open.js';
import { migratePostgres } from '../../src/store/postgres/migrate.js';
import { postgresSagaStore } from '../../src/store/postgres/saga-store.js';
import { postgresPaymentProvider } from '../../src/checkout/payment-provider-postgres.js';
import { sqliteDatabase } from '../../src/store/sqlite/database.js';
import { startPostgres } from '../support/postgres-server.js';
import { createPostgresDatabase } from '../support/pg-database.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const N = Number(process.env.BENCH_N ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 21);
const HISTORY = Number(process.env.BENCH_HISTORY ?? 100_000);
const PG_N = Number(process.env.BENCH_PG_N ?? 500);
const COLD_ENTRY = process.env.BENCH_COLD_ENTRY ?? join(ROOT, 'bin/saga.cjs');
const work = mkdtempSync(join(tmpdir(), 'saga-bench-'));

function freshDb(name: string, durability: Durability): { db: Db; path: string } {
  const path = join(work, `${name}-${randomUUID().slice(0, 8)}.db`);
  const db = openSqlite(path, { durability });
  migrateSqlite(db, path);
  return { db, path };
}

/** The engine's throughput and its checkouts' latency p50 and p99 in one run. */
interface EngineRun {
  readonly throughput: number;
  readonly p50: number;
  readonly p99: number;
}

async function engineRun(durability: Durability, concurrency: number): Promise<EngineRun> {
  const { db, path } = freshDb('engine', durability);
  const sql = sqliteDatabase(db, path);
  await seedCatalog(sql);
  const inFlight = sagasInFlight();
  const store = sqliteSagaStore(db, { inFlight });
  const provider = sqlitePaymentProvider(db, { inFlight });
  const checkout = checkoutSaga({ provider, now: Date.now, timeoutMs: 5000, retryBaseDelayMs: 100 });
  const { logger, close } = createLogger({ level: 'info', logFile: `${path}.log` });
  const owner = { id: `bench:${process.pid}`, host: 'bench', pid: process.pid, pidScope: null, startedAt: null };
  try {
    const r = await runBench({ n: N, concurrency, failRate: 0, productId: 101, seed: 1 }, {
      db: sql, store, checkout, definitions: new Map([[CHECKOUT_SAGA, checkout]]), logger, owner, leaseMs: 30_000,
    });
    if (r.violations !== 0 || r.outcomes.completed !== N) throw new Error(`engine run broke an invariant: ${JSON.stringify(r)}`);
    return { throughput: r.throughput, p50: r.latencyMs.p50, p99: r.latencyMs.p99 };
  } finally {
    close();
    db.close();
  }
}

async function baselineRun(durability: Durability, concurrency: number, which: 'same-work' | 'minimal' = 'same-work'): Promise<number> {
  const { db, path } = freshDb(which, durability);
  await seedCatalog(sqliteDatabase(db, path));
  try {
    return await (which === 'minimal' ? minimalCheckouts : baselineCheckouts)(db, N, concurrency);
  } finally {
    db.close();
  }
}

const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);

async function throughputRows() {
  const rows = [];
  for (const durability of ['full', 'normal'] as const) {
    for (const concurrency of [1, 16]) {
      const engine: number[] = [];
      const p50s: number[] = [];
      const p99s: number[] = [];
      const baseline: number[] = [];
      const minimal: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const run = await engineRun(durability, concurrency);
        engine.push(run.throughput);
        p50s.push(run.p50);
        p99s.push(run.p99);
        baseline.push(await baselineRun(durability, concurrency));
        minimal.push(await baselineRun(durability, concurrency, 'minimal'));
      }
      const e = median(engine);
      const b = median(baseline);
      const m = median(minimal);
      const ratio = (x: number) => Math.round((e / x) * 100) / 100;
      rows.push({ durability, concurrency, engine: e, baseline: b, minimal: m, ratio: ratio(b), minimalRatio: ratio(m), p50Ms: median(p50s), p99Ms: median(p99s), engineRuns: engine, baselineRuns: baseline, minimalRuns: minimal });
      console.error(`  throughput ${durability} c=${concurrency}: engine ${e}/s, same-work baseline ${b}/s, minimal baseline ${m}/s`);
    }
  }
  return rows;
}

/**
 * Cold starts are timed without NODE_EXTRA_CA_CERTS: Node 20 parses that certificate bundle at
 * every start (tens of ms; 22 and later only on first TLS use), the same cost on both sides of the
 * ratio, which would make saga's own part look smaller than it is.
 */
const { NODE_EXTRA_CA_CERTS: _certs, ...COLD_ENV } = process.env;

function timeProcess(cmd: string, args: string[], cwd: string): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd, stdio: 'ignore', env: COLD_ENV });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`);
  return performance.now() - t0;
}

async function coldStart() {
  const { db, path } = freshDb('cold', 'full');
  await seedCatalog(sqliteDatabase(db, path));
  db.close();
  const saga: number[] = [];
  const node: number[] = [];
  const version: number[] = [];
  const floor: number[] = [];
  const sagaArgs = [COLD_ENTRY, 'checkout', '--product', '101', '--qty', '1', '--db', path, '--log-file', `${path}.log`];
  const floorArgs = [join(ROOT, 'test/bench/cold-floor.cjs'), path];
  timeProcess(process.execPath, sagaArgs, work); // warm the page cache once
  timeProcess(process.execPath, floorArgs, ROOT);
  for (let i = 0; i < COLD_RUNS; i++) {
    saga.push(timeProcess(process.execPath, sagaArgs, work));
    node.push(timeProcess(process.execPath, ['-e', "require('better-sqlite3')"], ROOT));
    version.push(timeProcess(process.execPath, [COLD_ENTRY, '--version'], work));
    floor.push(timeProcess(process.execPath, floorArgs, ROOT));
  }
  const s = median(saga);
  const n = median(node);
  const ms = (t: number) => Math.round(t * 10) / 10;
  return { sagaCheckoutMs: ms(s), nodeRequireMs: ms(n), ratio: Math.round((s / n) * 100) / 100, runs: COLD_RUNS, sagaVersionMs: ms(median(version)), sqliteFloorMs: ms(median(floor)) };
}

/** 100,000 sagas with their log records, written directly (a realistic mix of outcomes). */
function bigHistory(): { path: string; sampleId: string } {
  const { db, path } = freshDb('history', 'normal');
  const insertSaga = db.prepare(`INSERT INTO sagas (saga_id, definition, input, status, failed_step, created_at, updated_at, ended_at) VALUES (?, 'checkout', ?, ?, ?, ?, ?, ?)`);
  const insertEvent = db.prepare(`INSERT INTO saga_events (saga_id, step, step_index, phase, event, attempt, at, duration_ms) VALUES (?, ?, ?, 'action', ?, 1, ?, ?)`);
  let sampleId = '';
  const t0 = Date.now() - HISTORY * 1000;
  db.transaction(() => {
    for (let i = 0; i < HISTORY; i++) {
      const id = newSagaId(t0 + i * 1000);
      const status = i % 10 === 0 ? 'compensated' : i % 997 === 0 ? 'stuck' : 'completed';
      const at = t0 + i * 1000;
      insertSaga.run(id, JSON.stringify({ productId: 101, qty: 1, customerId: 1, unitPriceCents: 8999, amountCents: 8999 }), status, status === 'completed' ? null : 'payment', at, at + 5, status === 'stuck' ? null : at + 5);
      ['inventory', 'payment', 'order', 'shipping'].forEach((step, k) => {
        insertEvent.run(id, step, k, 'started', at + k, null);
        insertEvent.run(id, step, k, 'succeeded', at + k + 1, 0.5);
      });
      if (i === Math.floor(HISTORY / 2)) sampleId = id;
    }
  })();
  db.close();
  return { path, sampleId };
}

async function timeCommand(run: (ctx: CommandContext) => Promise<number>, db: string, runs = 21): Promise<number> {
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const settings = resolveGlobals({ flags: { db }, env: {}, dotenv: {} });
  const ctx: CommandContext = { sources: { flags: { db }, env: {}, dotenv: {} }, settings, stdout: sink, stderr: sink, color: false, colorErr: false };
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    if ((await run(ctx)) !== 0) throw new Error('command failed');
    times.push(performance.now() - t0);
  }
  return Math.round(median(times) * 100) / 100;
}

/** PostgreSQL: engine vs hand-written baseline through pg, and throughput as processes are added. */
async function postgresRows() {
  const server = await startPostgres();
  // Commits and round trips per checkout of the engine's last run at each concurrency.
  const perCheckout = new Map<number, BenchResult['perCheckout']>();
  try {
    const engineOnce = async (concurrency: number) => {
      const url = await createPostgresDatabase(server.adminUrl);
      const pool = await openPostgres(url, { max: concurrency + 4 });
      try {
        await migratePostgres(pool, url);
        const db = postgresDatabase(pool, url);
        await seedCatalog(db);
        // Wired as the CLI wires them (app-postgres.ts): one in-flight counter for both groups.
        const inFlight = sagasInFlight();
        const store = postgresSagaStore(pool, { inFlight });
        const provider = postgresPaymentProvider(pool, { inFlight });
        const counters = () => ({ commits: store.commits(), providerCommits: provider.commits(), roundTrips: store.roundTrips() + provider.roundTrips() });
        const checkout = checkoutSaga({ provider, now: Date.now, timeoutMs: 5000, retryBaseDelayMs: 100 });
        const { logger, close } = createLogger({ level: 'info', logFile: join(work, `pg-${randomUUID().slice(0, 8)}.log`) });
        try {
          const r = await runBench({ n: PG_N, concurrency, failRate: 0, productId: 101, seed: 1 }, {
            db, store, checkout, definitions: new Map([[CHECKOUT_SAGA, checkout]]), logger,
            owner: { id: `bench:${process.pid}`, host: 'bench', pid: process.pid, pidScope: null, startedAt: null }, leaseMs: 30_000, counters,
          });
          if (r.violations !== 0 || r.outcomes.completed !== PG_N) throw new Error(`engine run broke an invariant: ${JSON.stringify(r)}`);
          perCheckout.set(concurrency, r.perCheckout);
          return r.throughput;
        } finally {
          close();
        }
      } finally {
        await pool.end();
      }
    };
    const baselineOnce = async (concurrency: number, which: 'same-work' | 'minimal' = 'same-work') => {
      const url = await createPostgresDatabase(server.adminUrl);
      const pool = await openPostgres(url, { max: concurrency + 4 });
      try {
        await migratePostgres(pool, url);
        await seedCatalog(postgresDatabase(pool, url));
        return await (which === 'minimal' ? postgresMinimalCheckouts : postgresBaselineCheckouts)(pool, PG_N, concurrency);
      } finally {
        await pool.end();
      }
    };
    const rows = [];
    for (const concurrency of [1, 16]) {
      const engine: number[] = [];
      const baseline: number[] = [];
      const minimal: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        engine.push(await engineOnce(concurrency));
        baseline.push(await baselineOnce(concurrency));
        minimal.push(await baselineOnce(concurrency, 'minimal'));
      }
      const e = median(engine);
      const b = median(baseline);
      const m = median(minimal);
      const ratio = (x: number) => Math.round((e / x) * 100) / 100;
      rows.push({ concurrency, engine: e, baseline: b, minimal: m, ratio: ratio(b), minimalRatio: ratio(m), perCheckout: perCheckout.get(concurrency), engineRuns: engine, baselineRuns: baseline, minimalRuns: minimal });
      console.error(`  postgres c=${concurrency}: engine ${e}/s, same-work baseline ${b}/s, minimal baseline ${m}/s`);
    }
    const scaling = [];
    for (const processes of [1, 2, 4]) {
      const url = await createPostgresDatabase(server.adminUrl);
      const r = spawnSync(process.execPath, [join(ROOT, 'bin/saga.cjs'), 'bench', '--json', '--n', String(PG_N * processes), '--processes', String(processes), '--db', url, '--log-file', join(work, 'pg-processes.log')], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`saga bench --processes ${processes} exited ${r.status}: ${r.stderr}`);
      const out = JSON.parse(r.stdout) as { throughput: number; violations: number };
      scaling.push({ processes, throughput: out.throughput, violations: out.violations });
      console.error(`  postgres ${processes} process(es): ${out.throughput}/s`);
    }
    return { rows, scaling };
  } finally {
    server.stop();
  }
}

async function historyRows() {
  const { path, sampleId } = bigHistory();
  return {
    sagas: HISTORY,
    listMs: await timeCommand((ctx) => listCommand({ limit: 20 }, ctx), path),
    listStuckMs: await timeCommand((ctx) => listCommand({ status: 'stuck', limit: 20 }, ctx), path),
    showMs: await timeCommand((ctx) => showCommand({ sagaId: sampleId }, ctx), path),
    listProcessMs: Math.round(median(Array.from({ length: 7 }, () => timeProcess(process.execPath, [join(ROOT, 'bin/saga.cjs'), 'list', '--db', path], work))) * 10) / 10,
  };
}

/**
 * `saga explore` as a user runs it (the built CLI, its own summary): depth 1 in one process and
 * depth 2 with --jobs 2, medians of EXPLORE_ROUNDS runs. Targets: depth 1 within 10 s, depth 2
 * within 2 minutes.
 */
function exploreRows() {
  const rounds = Number(process.env.BENCH_EXPLORE_ROUNDS ?? 3);
  const run = (args: string[]) => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/saga.cjs'), 'explore', '--json', ...args], { cwd: work, encoding: 'utf8', maxBuffer: 1 << 28 });
    if (r.status !== 0) throw new Error(`saga explore ${args.join(' ')} failed (exit ${r.status}): ${r.stderr}`);
    const out = JSON.parse(r.stdout) as { scenarios: number; violations: number; seconds: number; scenariosPerSecond: number };
    return out;
  };
  const row = (label: string, args: string[]) => {
    const runs = Array.from({ length: rounds }, () => run(args));
    return {
      label,
      scenarios: runs[0]!.scenarios,
      violations: Math.max(...runs.map((x) => x.violations)),
      seconds: Math.round(median(runs.map((x) => x.seconds)) * 10) / 10,
      scenariosPerSecond: Math.round(median(runs.map((x) => x.scenariosPerSecond))),
    };
  };
  return [row('depth 1, 1 process', []), row('depth 2, --jobs 2', ['--depth', '2', '--jobs', '2'])];
}

const coldLine = (c: Awaited<ReturnType<typeof coldStart>>) =>
  `cold start on Node ${process.version} (median of ${c.runs}): saga checkout ${c.sagaCheckoutMs} ms, node -e "require('better-sqlite3')" ${c.nodeRequireMs} ms: ${c.ratio}x` +
  ` (saga --version ${c.sagaVersionMs} ms, ${Math.round((c.sagaVersionMs / c.nodeRequireMs) * 100) / 100}x; SQLite work alone, test/bench/cold-floor.cjs, ${c.sqliteFloorMs} ms, ${Math.round((c.sqliteFloorMs / c.nodeRequireMs) * 100) / 100}x)`;

if (process.argv.includes('--cold')) {
  const cold = await coldStart();
  rmSync(work, { recursive: true, force: true });
  console.log(coldLine(cold));
  process.exit(0);
}

/** BENCH_ONLY=throughput,postgres,cold,history,explore,serve runs only those sections, printed and not written to results.json. */
const ONLY = process.env.BENCH_ONLY?.split(',').map((x) => x.trim());
const wanted = (section: string) => ONLY === undefined || ONLY.includes(section);
const started = new Date().toISOString();
console.error(`saga benchmark: N=${N} checkouts per run, ${ROUNDS} rounds, ${COLD_RUNS} cold starts, ${HISTORY} sagas of history (work dir ${work})`);
const throughput = wanted('throughput') ? await throughputRows() : undefined;
const postgres = wanted('postgres') ? await postgresRows() : undefined;
const cold = wanted('cold') ? await coldStart() : undefined;
const history = wanted('history') ? await historyRows() : undefined;
const explore = wanted('explore') ? exploreRows() : undefined;
const serve = wanted('serve') ? await serveLoadRows() : undefined;
rmSync(work, { recursive: true, force: true });

const results = { started, node: process.version, n: N, pgN: PG_N, rounds: ROUNDS, throughput, postgres, coldStart: cold, history, explore, serve };
if (ONLY === undefined) writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);

const pad = (s: unknown, w: number) => String(s).padEnd(w);
if (throughput !== undefined) {
  console.log('\nthroughput on SQLite (checkouts/s, median of interleaved rounds)');
  console.log(`${pad('durability', 11)}${pad('concurrency', 12)}${pad('engine', 10)}${pad('same-work', 11)}${pad('minimal', 9)}${pad('engine/same-work', 18)}engine/minimal`);
  for (const r of throughput) console.log(`${pad(r.durability, 11)}${pad(r.concurrency, 12)}${pad(r.engine, 10)}${pad(r.baseline, 11)}${pad(r.minimal, 9)}${pad(`${r.ratio}x`, 18)}${r.minimalRatio}x`);
  console.log('engine latency (ms, median of rounds): p50 / p99, and p99 at concurrency 16 over p99 at 1');
  for (const durability of ['full', 'normal']) {
    const at = (c: number) => throughput.find((r) => r.durability === durability && r.concurrency === c)!;
    const c1 = at(1);
    const c16 = at(16);
    console.log(`${pad(durability, 11)}c1 ${c1.p50Ms} / ${c1.p99Ms}, c16 ${c16.p50Ms} / ${c16.p99Ms}: ${Math.round((c16.p99Ms / c1.p99Ms) * 100) / 100}x`);
  }
}
if (postgres !== undefined) {
  console.log(`\npostgresql (checkouts/s, median of rounds, ${PG_N} per run)`);
  console.log(`${pad('concurrency', 12)}${pad('engine', 10)}${pad('same-work', 11)}${pad('minimal', 9)}${pad('engine/same-work', 18)}engine/minimal`);
  for (const r of postgres.rows) console.log(`${pad(r.concurrency, 12)}${pad(r.engine, 10)}${pad(r.baseline, 11)}${pad(r.minimal, 9)}${pad(`${r.ratio}x`, 18)}${r.minimalRatio}x`);
  for (const r of postgres.rows) if (r.perCheckout !== undefined) console.log(`c=${r.concurrency} per checkout: saga log commits ${r.perCheckout.commits}, provider commits ${r.perCheckout.providerCommits}, round trips ${r.perCheckout.roundTrips}`);
  console.log(`processes: ${postgres.scaling.map((s) => `${s.processes} -> ${s.throughput}/s`).join(', ')}`);
}
if (cold !== undefined) console.log(`\n${coldLine(cold)}`);
if (history !== undefined) console.log(`\n${history.sagas} sagas: list ${history.listMs} ms, list --status stuck ${history.listStuckMs} ms, show ${history.showMs} ms (in-process, median); \`saga list\` as a process ${history.listProcessMs} ms`);
if (explore !== undefined) {
  console.log(`\nsaga explore on SQLite (median of rounds)`);
  for (const r of explore) console.log(`${pad(r.label, 22)}${r.scenarios} scenarios, ${r.violations} violations, ${r.seconds} s, ${r.scenariosPerSecond} scenarios/s`);
}
if (serve !== undefined) printServeLoad(serve);
if (ONLY === undefined) console.log('\nwritten to test/bench/results.json');
