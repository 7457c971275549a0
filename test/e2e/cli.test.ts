import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDb, readLog, ROOT, runSaga, tempDir, type RunResult } from '../support/cli.js';

// The end-to-end suite: the real `saga` command in a temp directory, asserting exit codes,
// stdout/stderr, the rows in the SQLite file and the lines of saga.log.

const STEPS = ['inventory', 'payment', 'order', 'shipping'] as const;
const STOCK_101 = 25;
const TRANSITIONS = new Set(['started', 'succeeded', 'failed', 'retrying']);
const ANSI = /\u001b\[/;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A new empty directory, removed after the suite. */
function fresh(): string {
  const dir = tempDir('saga-cli-');
  dirs.push(dir);
  return dir;
}

function saga(dir: string, args: string, env: Record<string, string> = {}): Promise<RunResult> {
  return runSaga(args.split(' ').filter(Boolean), { cwd: dir, env });
}

/** Every row of the tables named, read through a fresh read-only connection. */
function dump(dbPath: string, tables: readonly string[]): Record<string, unknown[]> {
  const db = openDb(dbPath);
  try {
    return Object.fromEntries(tables.map((t) => [t, db.prepare(`SELECT * FROM ${t} ORDER BY rowid`).all()]));
  } finally {
    db.close();
  }
}

function query<T>(dbPath: string, sql: string, ...params: unknown[]): T[] {
  const db = openDb(dbPath);
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

const BUSINESS = ['products', 'inventory', 'customers', 'reservations', 'payments', 'orders', 'shipments', 'provider_accounts', 'provider_ledger'];
const ALL_TABLES = [...BUSINESS, 'sagas', 'saga_events'];
const stockOf101 = (db: string) => query<{ stock: number }>(db, 'SELECT stock FROM inventory WHERE product_id = 101')[0]?.stock;

describe('saga checkout', () => {
  it('on a fresh directory creates and seeds the database, says so on stderr, and completes', async () => {
    const dir = fresh();
    const r = await saga(dir, 'checkout --product 101 --qty 2');

    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/no database at \.\/saga\.db; created it and loaded the demo catalog/);
    expect(r.stdout).toMatch(/checkout completed/);
    const db = join(dir, 'saga.db');
    expect(stockOf101(db)).toBe(STOCK_101 - 2);
    expect(query(db, 'SELECT status FROM sagas')).toEqual([{ status: 'completed' }]);
    expect(query(db, 'SELECT status FROM orders UNION ALL SELECT status FROM payments UNION ALL SELECT status FROM shipments')).toEqual([
      { status: 'confirmed' },
      { status: 'charged' },
      { status: 'scheduled' },
    ]);

    // The second run finds the database: nothing is said about creating it.
    const again = await saga(dir, 'checkout --product 101 --qty 1');
    expect(again.code).toBe(0);
    expect(again.stderr).not.toMatch(/created it/);
    expect(stockOf101(db)).toBe(STOCK_101 - 3);
  });

  it.each([
    { failAt: 'inventory', reservation: [], payment: [], order: [] },
    { failAt: 'payment', reservation: ['released'], payment: [], order: [] },
    { failAt: 'order', reservation: ['released'], payment: ['refunded'], order: [] },
    { failAt: 'shipping', reservation: ['released'], payment: ['refunded'], order: ['cancelled'] },
  ])('--fail-at $failAt exits 3 with everything rolled back', async (c) => {
    const dir = fresh();
    const r = await saga(dir, `checkout --product 101 --qty 3 --fail-at ${c.failAt}`);

    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/checkout rolled back/);
    expect(r.stdout).toContain(`injected permanent failure in ${c.failAt}`);
    const db = join(dir, 'saga.db');
    const statuses = (table: string) => query<{ status: string }>(db, `SELECT status FROM ${table}`).map((x) => x.status);
    expect(stockOf101(db)).toBe(STOCK_101);
    expect(statuses('reservations')).toEqual(c.reservation);
    expect(statuses('payments')).toEqual(c.payment);
    expect(statuses('orders')).toEqual(c.order);
    expect(statuses('shipments')).toEqual([]);
    expect(query(db, 'SELECT status, failed_step FROM sagas')).toEqual([{ status: 'compensated', failed_step: c.failAt }]);
    // The customer got back every cent.
    expect(query(db, 'SELECT balance_cents = opening_balance_cents AS whole FROM provider_accounts WHERE customer_id = 1')).toEqual([{ whole: 1 }]);
  });

  it('SAGA_FAIL_AT in the environment injects the failure like --fail-at', async () => {
    const dir = fresh();
    const r = await saga(dir, 'checkout --product 101 --qty 1', { SAGA_FAIL_AT: 'order' });
    expect(r.code).toBe(3);
    expect(query(join(dir, 'saga.db'), 'SELECT status, failed_step FROM sagas')).toEqual([{ status: 'compensated', failed_step: 'order' }]);
  });

  it.each([
    { args: '', status: 'completed', code: 0, steps: ['succeeded', 'succeeded', 'succeeded', 'succeeded'] },
    { args: '--fail-at order', status: 'compensated', code: 3, steps: ['compensated', 'compensated', 'failed', 'not-run'] },
  ])('--json $args prints exactly one JSON object on stdout, logs on stderr', async (c) => {
    const dir = fresh();
    const r = await saga(dir, `checkout --product 101 --qty 1 --json ${c.args}`);

    expect(r.code).toBe(c.code);
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
    const report = JSON.parse(r.stdout) as { sagaId: string; status: string; steps: { name: string; status: string }[] };
    expect(report.status).toBe(c.status);
    expect(report.steps.map((s) => [s.name, s.status])).toEqual(STEPS.map((n, i) => [n, c.steps[i]]));
    expect(query(join(dir, 'saga.db'), 'SELECT saga_id, status FROM sagas')).toEqual([{ saga_id: report.sagaId, status: c.status }]);
    // The step log lines went to stderr, naming the saga.
    expect(r.stderr).toMatch(/inventory\s+action\s+started/);
    expect(r.stderr).toContain(report.sagaId.slice(0, 8));
  });

  it('saga.log holds one JSON line per transition, in the order of the saga log, with the documented fields', async () => {
    const dir = fresh();
    const r = await saga(dir, 'checkout --product 101 --qty 1 --fail-at shipping --json');
    expect(r.code).toBe(3);
    const { sagaId } = JSON.parse(r.stdout) as { sagaId: string };

    const lines = readLog(join(dir, 'saga.log'));
    const transitions = lines.filter((l) => TRANSITIONS.has(String(l.event)));
    const events = query<{ step: string; phase: string; event: string; attempt: number }>(
      join(dir, 'saga.db'),
      'SELECT step, phase, event, attempt FROM saga_events WHERE saga_id = ? ORDER BY event_id',
      sagaId,
    );
    expect(events.length).toBeGreaterThan(0);
    expect(transitions.map((l) => ({ step: l.step, phase: l.phase, event: l.event, attempt: l.attempt }))).toEqual(events);
    for (const l of transitions) {
      expect(l).toMatchObject({ sagaId, saga: 'checkout', step: expect.any(String), phase: expect.stringMatching(/^(action|compensation)$/), attempt: expect.any(Number) });
      if (l.event === 'succeeded' || l.event === 'failed') expect(l.durationMs).toEqual(expect.any(Number));
      if (l.event === 'failed') expect(l.err?.message).toContain('injected permanent failure in shipping');
    }
    // Compensations in reverse order of the steps.
    expect(transitions.filter((l) => l.phase === 'compensation' && l.event === 'succeeded').map((l) => l.step)).toEqual(['order', 'payment', 'inventory']);
  });

  it.each([
    { name: 'more than the stock', args: 'checkout --product 101 --qty 26' },
    { name: 'a product that is sold out', args: 'checkout --product 105 --qty 1' },
  ])('ordering $name exits 3 at inventory and changes no business row', async (c) => {
    const dir = fresh();
    expect((await saga(dir, 'seed')).code).toBe(0);
    const db = join(dir, 'saga.db');
    const before = dump(db, BUSINESS);

    const r = await saga(dir, c.args);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/out of stock/);
    expect(dump(db, BUSINESS)).toEqual(before);
    expect(query(db, 'SELECT status, failed_step FROM sagas')).toEqual([{ status: 'compensated', failed_step: 'inventory' }]);
  });

  it('a compensation that keeps failing leaves the saga stuck: exit 4 and an error line naming the saga and `saga recover`', async () => {
    const dir = fresh();
    const r = await saga(dir, 'checkout --product 101 --qty 1 --fail-at shipping --fail-compensation inventory --json');

    expect(r.code).toBe(4);
    const report = JSON.parse(r.stdout) as { sagaId: string; status: string; steps: { name: string; status: string }[] };
    expect(report.status).toBe('stuck');
    expect(report.steps.find((s) => s.name === 'inventory')?.status).toBe('compensation-failed');
    const db = join(dir, 'saga.db');
    expect(query(db, 'SELECT status FROM sagas')).toEqual([{ status: 'stuck' }]);
    // Later compensations ran; the stock is still held because its release failed.
    expect(query(db, 'SELECT status FROM orders UNION ALL SELECT status FROM payments UNION ALL SELECT status FROM reservations')).toEqual([
      { status: 'cancelled' },
      { status: 'refunded' },
      { status: 'held' },
    ]);
    const errors = readLog(join(dir, 'saga.log')).filter((l) => l.level >= 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ sagaId: report.sagaId, saga: 'checkout', step: 'inventory' });
    expect(errors[0]!.msg).toContain(report.sagaId);
    expect(errors[0]!.msg).toContain('saga recover');
    expect(r.stderr).toMatch(/ERROR.*saga recover/);
  });
});

describe('saga seed', () => {
  it('twice changes nothing the second time; --reset restores the seeded state', async () => {
    const dir = fresh();
    const db = join(dir, 'saga.db');
    const first = await saga(dir, 'seed');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/created/);
    const seeded = dump(db, ALL_TABLES);
    expect(seeded.products!.length).toBeGreaterThanOrEqual(3);
    expect(query(db, 'SELECT stock >= 20 AS enough FROM inventory WHERE product_id = 101')).toEqual([{ enough: 1 }]);

    const second = await saga(dir, 'seed');
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/nothing changed/);
    expect(dump(db, ALL_TABLES)).toEqual(seeded);

    expect((await saga(dir, 'checkout --product 101 --qty 2')).code).toBe(0);
    expect((await saga(dir, 'checkout --product 102 --qty 1 --fail-at order')).code).toBe(3);
    expect(dump(db, ALL_TABLES)).not.toEqual(seeded);

    const reset = await saga(dir, 'seed --reset');
    expect(reset.code).toBe(0);
    expect(reset.stdout).toMatch(/reset/);
    expect(dump(db, ALL_TABLES)).toEqual(seeded);
  });
});

describe('help and version', () => {
  it.each([
    { args: '--help', shows: ['--db <path|url>', '--log-file <path>', 'seed', 'checkout', 'Examples:', '$ saga checkout --product 101 --qty 2', 'Exit codes', '129/130/143'] },
    // A bare `saga` is a request for help: on stdout, exit 0.
    { args: '', shows: ['Usage: saga', 'checkout', 'Exit codes'] },
    // Each subcommand's help lists the global options too: they apply to it.
    { args: 'checkout --help', shows: ['--product <id>', '--qty <n>', '--customer <id>', '--fail-at <step>', '--json', 'Examples:', '$ saga checkout --product 101 --qty 2', 'Global Options:', '--db <path|url>', '--log-file <path>', '--sync <mode>'] },
    { args: 'seed --help', shows: ['--reset', 'Examples:', '$ saga seed', 'Global Options:', '--db <path|url>'] },
    { args: 'list --help', shows: ['--status <status>', 'Global Options:', '--db <path|url>'] },
  ])('saga $args shows every option and an example', async (c) => {
    const r = await saga(fresh(), c.args);
    expect(r.code).toBe(0);
    for (const s of c.shows) expect(r.stdout).toContain(s);
  });

  it('--version prints the package version', async () => {
    const dir = fresh();
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await saga(dir, '--version');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(version);
    // Asking for help or the version creates nothing.
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('configuration: flags > environment > .env > defaults', () => {
  it.each<{ name: string; flags: string; env: Record<string, string>; dotenv: boolean; files: string[] }>([
    { name: 'defaults', flags: '', env: {}, dotenv: false, files: ['saga.db', 'saga.log'] },
    { name: '.env beats defaults', flags: '', env: {}, dotenv: true, files: ['dotenv.db', 'dotenv.log'] },
    { name: 'environment beats .env', flags: '', env: { SAGA_DB: 'env.db', SAGA_LOG_FILE: 'env.log' }, dotenv: true, files: ['env.db', 'env.log'] },
    { name: 'flags beat environment', flags: '--db flag.db --log-file flag.log', env: { SAGA_DB: 'env.db', SAGA_LOG_FILE: 'env.log' }, dotenv: true, files: ['flag.db', 'flag.log'] },
  ])('$name', async (c) => {
    const dir = fresh();
    if (c.dotenv) writeFileSync(join(dir, '.env'), 'SAGA_DB=dotenv.db\nSAGA_LOG_FILE=dotenv.log\n');
    const r = await saga(dir, `${c.flags} checkout --product 101 --qty 1`, c.env);

    expect(r.code).toBe(0);
    expect(readdirSync(dir).filter((f) => /\.(db|log)$/.test(f)).sort()).toEqual(c.files);
    const [db, log] = c.files as [string, string];
    expect(query(join(dir, db), 'SELECT status FROM sagas')).toEqual([{ status: 'completed' }]);
    expect(readLog(join(dir, log)).some((l) => l.event === 'succeeded')).toBe(true);
  });
});

describe('colour', () => {
  it.each<{ name: string; env: Record<string, string>; ansi: boolean }>([
    { name: 'NO_COLOR set', env: { NO_COLOR: '1' }, ansi: false },
    { name: 'piped, NO_COLOR unset', env: { NO_COLOR: '' }, ansi: false },
    { name: 'NO_COLOR beats FORCE_COLOR', env: { NO_COLOR: '1', FORCE_COLOR: '1' }, ansi: false },
    // The control case: proves the assertion above would see colours if there were any.
    { name: 'FORCE_COLOR on a pipe', env: { NO_COLOR: '', FORCE_COLOR: '1' }, ansi: true },
  ])('$name: ANSI escapes in output = $ansi', async (c) => {
    const dir = fresh();
    const r = await saga(dir, 'checkout --product 101 --qty 1 --fail-at payment', c.env);
    expect(r.code).toBe(3);
    expect(ANSI.test(r.stderr)).toBe(c.ansi);
    expect(ANSI.test(r.stdout)).toBe(c.ansi);
    // The log file is JSON whatever the console does.
    expect(ANSI.test(readFileSync(join(dir, 'saga.log'), 'utf8'))).toBe(false);
    expect(existsSync(join(dir, 'saga.db'))).toBe(true);
  });
});
