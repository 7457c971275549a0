/**
 * `npm run bench:serve` (also the last part of `npm run bench`): `saga serve` under load with
 * autocannon, next to `saga bench` on the same machine and settings, so the cost of the HTTP
 * layer is a ratio, not a guess.
 *
 * Two runs of SERVE_LOAD_N (10,000) `POST /api/checkouts` at 64 connections against a fresh
 * SQLite database: one with no faults (its req/s over `saga bench --concurrency 64`'s
 * checkouts/s is the HTTP layer's cost), one where a quarter of the requests carry faults (a
 * retried or permanent payment failure, a failed shipping step that rolls back a charged order, a
 * retried reservation). After each: every request answered, no 5xx, `saga verify` clean. The
 * figures are printed and returned, not asserted: performance is measured here, not in tests.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';

const ROOT = new URL('../..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/saga.cjs');
const N = Number(process.env.SERVE_LOAD_N ?? 10_000);
const CONNECTIONS = 64;
const FAULT_SHARE = 0.25;
/** Fast retries, as `saga bench` runs are usually compared: a retried step costs its attempts, not a sleep. */
const ENV = { ...process.env, SAGA_RETRY_BASE_MS: '5', NO_COLOR: '1', LOG_LEVEL: 'info' };

/** The mix of faults a quarter of the requests carry (none crashes the server, none ends stuck). */
const FAULTS = [
  { failAt: 'payment', mode: 'transient', times: 1 },
  { failAt: 'payment', mode: 'error' },
  { failAt: 'shipping', mode: 'error' },
  { failAt: 'inventory', mode: 'transient', times: 2 },
] as const;

export interface ServeLoadRow {
  readonly faults: number;
  readonly requests: number;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly status2xx: number;
  readonly status5xx: number;
  readonly errors: number;
  readonly violations: number;
  /** `saga bench --n N --concurrency 64 --fail-rate <faults>` on the same machine, checkouts/s. */
  readonly benchPerSec: number;
  readonly ratio: number;
}

function saga(args: string[], cwd: string): string {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env: ENV, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`saga ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

async function startServer(cwd: string, db: string): Promise<{ url: string; stop(): Promise<number | null> }> {
  // --quiet: saga.log gets every line, the console none, as `saga bench` logs; formatting 10 console
  // lines a request for nobody would be measured as the HTTP layer's cost.
  const child = spawn(process.execPath, [BIN, 'serve', '--quiet', '--port', '0', '--allow-faults', '--db', db, '--log-file', join(cwd, 'saga.log')], { cwd, env: ENV, stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m !== null) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`saga serve exited ${code} before listening`)));
  });
  return {
    url,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

async function loadRun(faultShare: number): Promise<ServeLoadRow> {
  const cwd = mkdtempSync(join(tmpdir(), 'saga-serve-load-'));
  try {
    const db = join(cwd, 'load.db');
    saga(['seed', '--db', db, '--log-file', join(cwd, 'seed.log')], cwd);
    // Stock for every request, as `saga bench` restocks: out-of-stock refusals would measure nothing.
    const sqlite = (await import('better-sqlite3')).default(db);
    sqlite.prepare('UPDATE inventory SET stock = stock + ? WHERE product_id = 101').run(N);
    sqlite.prepare('UPDATE products SET seeded_stock = seeded_stock + ? WHERE product_id = 101').run(N);
    sqlite.close();

    const server = await startServer(cwd, db);
    let sent = 0;
    const plain = JSON.stringify({ productId: 101, qty: 1 });
    const withFault = FAULTS.map((f) => JSON.stringify({ productId: 101, qty: 1, faults: f }));
    const every = faultShare === 0 ? 0 : Math.round(1 / faultShare);
    const result = await autocannon({
      url: `${server.url}/api/checkouts`,
      connections: CONNECTIONS,
      amount: N,
      timeout: 60,
      requests: [
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          setupRequest: (req) => {
            const i = sent++;
            return { ...req, body: every !== 0 && i % every === 0 ? withFault[(i / every) % withFault.length]! : plain };
          },
        },
      ],
    });
    const exit = await server.stop();
    if (exit !== 0) throw new Error(`saga serve exited ${exit} on SIGTERM`);
    const verify = JSON.parse(saga(['verify', '--json', '--db', db], cwd)) as { violations: unknown[] };
    const bench = JSON.parse(saga(['bench', '--json', '--n', String(N), '--concurrency', String(CONNECTIONS), '--fail-rate', String(faultShare), '--db', join(cwd, 'bench.db'), '--log-file', join(cwd, 'bench.log')], cwd)) as { throughput: number };
    const reqPerSec = Math.round((result.requests.total / result.duration) * 10) / 10;
    return {
      faults: faultShare,
      requests: result.requests.total,
      reqPerSec,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      status2xx: result['2xx'],
      status5xx: result['5xx'],
      errors: result.errors + result.timeouts,
      violations: verify.violations.length,
      benchPerSec: bench.throughput,
      ratio: Math.round((reqPerSec / bench.throughput) * 100) / 100,
    };
  } finally {
    if (process.env.SERVE_LOAD_KEEP === undefined) rmSync(cwd, { recursive: true, force: true });
    else console.error(`kept ${cwd}`);
  }
}

export async function serveLoadRows(): Promise<ServeLoadRow[]> {
  if (!existsSync(join(ROOT, 'dist/saga.cjs'))) spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  return [await loadRun(0), await loadRun(FAULT_SHARE)];
}

export function printServeLoad(rows: readonly ServeLoadRow[]): void {
  const pad = (v: unknown, n: number) => String(v).padEnd(n);
  console.log(`\nsaga serve under autocannon (${N} POST /api/checkouts, ${CONNECTIONS} connections, SQLite, then saga verify)`);
  console.log(`${pad('faults', 8)}${pad('req/s', 9)}${pad('p50 ms', 8)}${pad('p99 ms', 8)}${pad('2xx', 7)}${pad('5xx', 5)}${pad('errors', 8)}${pad('violations', 12)}${pad('saga bench/s', 14)}serve/bench`);
  for (const r of rows) {
    console.log(`${pad(r.faults, 8)}${pad(r.reqPerSec, 9)}${pad(r.p50Ms, 8)}${pad(r.p99Ms, 8)}${pad(r.status2xx, 7)}${pad(r.status5xx, 5)}${pad(r.errors, 8)}${pad(r.violations, 12)}${pad(r.benchPerSec, 14)}${r.ratio}x`);
  }
  console.log("(saga bench's faults at a rate include crashes, timeouts and stuck compensations; the load's do not: compare the fault-free row for the HTTP layer's cost)");
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const rows = await serveLoadRows();
  printServeLoad(rows);
  const bad = rows.filter((r) => r.status5xx > 0 || r.errors > 0 || r.violations > 0 || r.requests !== N || r.status2xx !== N);
  if (bad.length > 0) {
    console.error('serve load: some requests failed, went unanswered or broke an invariant (see above)');
    process.exitCode = 1;
  }
}
