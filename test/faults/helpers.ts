/**
 * Tiny helpers for the fault suites: a seeded shop in a temp dir on one of the test backends
 * (SQLite or PostgreSQL), the real CLI run in it, a snapshot of its database, and an independent
 * check of the invariants of docs/guarantees.md (independent of `saga verify`'s code, which is
 * checked as well, in process: the `saga verify` command itself is tested in test/e2e/verify.test.ts).
 */
import { openKeptDatabase } from '../../src/store/sqlite/kept-database.js';
import { join } from 'node:path';
import { expect } from 'vitest';
import { checkInvariants, type Violation } from '../../src/checkout/invariants.js';
import { openApp } from '../../src/cli/app.js';
import { resolveGlobals } from '../../src/cli/settings.js';
import { localMachine } from '../../src/engine/process-identity.js';
import pg from 'pg';
import { DEFAULT_PG_SCHEMA } from '../../src/store/postgres/open.js';
import { pgSql } from '../../src/store/postgres/statements.js';
import type { TestBackend } from '../support/backends.js';
import { readLog, runSaga, startSaga, tempDir, type LogLine, type RunResult } from '../support/cli.js';

export const STEPS = ['inventory', 'payment', 'order', 'shipping'] as const;
export type StepName = (typeof STEPS)[number];
export type FailMode = 'error' | 'transient' | 'timeout' | 'crash';
export type Status = 'running' | 'compensating' | 'completed' | 'compensated' | 'stuck';

export interface Shop {
  readonly dir: string;
  /** The `--db` value every command of this shop runs with (SAGA_DB): a file path or a URL. */
  readonly db: string;
  readonly log: string;
}

/** A fresh temp dir with a new seeded database on `backend` (logging to ./saga.log). */
export async function newShop(backend: TestBackend): Promise<Shop> {
  const dir = tempDir('saga-faults-');
  return { dir, db: await backend.seededDb(dir), log: join(dir, 'saga.log') };
}

/** Every command of a shop names its database; `env` adds to (never replaces) that. */
function envOf(shop: Shop, env: Record<string, string> | undefined): Record<string, string> {
  return { SAGA_DB: shop.db, ...env };
}

export function saga(shop: Shop, args: readonly string[], env?: Record<string, string>): Promise<RunResult> {
  return runSaga(args, { cwd: shop.dir, env: envOf(shop, env) });
}

export function startIn(shop: Shop, args: readonly string[], env?: Record<string, string>) {
  return startSaga(args, { cwd: shop.dir, env: envOf(shop, env) });
}

// ---- checkout ---------------------------------------------------------------------------

export interface CheckoutSpec {
  product?: number;
  qty?: number;
  customer?: number;
  key?: string;
  failAt?: StepName;
  failMode?: FailMode;
  failTimes?: number;
  failCompensation?: StepName;
  failCompensationMode?: 'transient' | 'crash';
  stepTimeout?: number;
}

export function checkoutArgs(spec: CheckoutSpec = {}): string[] {
  const args = ['checkout', '--product', String(spec.product ?? 101), '--qty', String(spec.qty ?? 1), '--json'];
  const opt = (flag: string, v: string | number | undefined) => {
    if (v !== undefined) args.push(flag, String(v));
  };
  opt('--customer', spec.customer);
  opt('--key', spec.key);
  opt('--fail-at', spec.failAt);
  opt('--fail-mode', spec.failMode);
  opt('--fail-times', spec.failTimes);
  opt('--fail-compensation', spec.failCompensation);
  opt('--fail-compensation-mode', spec.failCompensationMode);
  opt('--step-timeout', spec.stepTimeout);
  return args;
}

/** What `checkout --json` prints (the fields the tests read). */
export interface Report {
  sagaId: string;
  status: Status;
  replayed: boolean;
  interrupted: boolean;
  failedStep: string | null;
  error: string | null;
  steps: { name: StepName; status: string; attempts: number; compensationAttempts: number }[];
}

export interface CheckoutRun extends RunResult {
  /** The parsed `--json` report, when the process lived to print one. */
  report: Report | undefined;
}

export async function checkout(shop: Shop, spec: CheckoutSpec = {}, env?: Record<string, string>): Promise<CheckoutRun> {
  const run = await saga(shop, checkoutArgs(spec), env);
  return { ...run, report: parseReport(run.stdout) };
}

export function parseReport(stdout: string): Report | undefined {
  const line = stdout.trim();
  if (line === '') return undefined;
  try {
    return JSON.parse(line) as Report;
  } catch {
    return undefined;
  }
}

export function stepOf(report: Report | undefined, step: StepName) {
  const s = report?.steps.find((x) => x.name === step);
  if (s === undefined) throw new Error(`report has no step ${step}: ${JSON.stringify(report)}`);
  return s;
}

/** The whole output of a run, for assertion messages. */
export function explain(run: RunResult): string {
  return `exit ${run.code} signal ${run.signal}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
}

// ---- recover / verify -------------------------------------------------------------------

export async function recover(shop: Shop, env?: Record<string, string>) {
  const run = await saga(shop, ['recover', '--json'], env);
  let parsed: { recovered: { sagaId: string; from: string; action: string; direction?: string; status?: string }[]; stuck: boolean } | undefined;
  try {
    parsed = JSON.parse(run.stdout.trim()) as typeof parsed;
  } catch {
    parsed = undefined;
  }
  return { ...run, result: parsed };
}

export async function verify(shop: Shop) {
  const run = await saga(shop, ['verify', '--json']);
  let violations: { invariant: string; message: string }[] = [];
  try {
    violations = (JSON.parse(run.stdout.trim()) as { violations: typeof violations }).violations;
  } catch {
    violations = [{ invariant: 'unparsable', message: run.stdout + run.stderr }];
  }
  return { ...run, violations };
}

/** What `saga verify` checks, run in this process on the database opened as the CLI opens it. */
export async function verifyInProcess(dbArg: string): Promise<Violation[]> {
  const app = await openApp(resolveGlobals({ flags: { db: dbArg }, env: {}, dotenv: {} }), 'never');
  try {
    return await checkInvariants(app.db, { now: Date.now(), machine: localMachine() });
  } finally {
    await app.close();
  }
}

/** The independent checks and `saga verify`'s checks both find nothing. */
export async function expectHealthy(shop: Shop, opts: { allowStuck?: boolean } = {}): Promise<ShopState> {
  const state = await readState(shop);
  expect(problems(state, opts), 'independent invariant checks').toEqual([]);
  expect(await verifyInProcess(shop.db), "saga verify's checks").toEqual([]);
  return state;
}

// ---- database snapshot --------------------------------------------------------------------

export interface SagaRow {
  saga_id: string;
  status: Status;
  input: string;
  owner_id: string | null;
  owner_pid: number | null;
  lease_until: number | null;
  idempotency_key: string | null;
}
interface Reservation { saga_id: string; product_id: number; qty: number; status: 'held' | 'released' }
interface Payment { saga_id: string; amount_cents: number; status: 'charged' | 'refunded' }
interface Order { saga_id: string; order_id: number; qty: number; status: 'confirmed' | 'cancelled' }
interface Shipment { saga_id: string; order_id: number; status: 'scheduled' | 'cancelled' }
export interface LedgerRow { idempotency_key: string; kind: 'charge' | 'refund' | 'void'; customer_id: number | null; amount_cents: number; charge_key: string | null }
interface Product { product_id: number; seeded_stock: number; stock: number }
interface Account { customer_id: number; opening_balance_cents: number; balance_cents: number }
export interface SagaEventRow { saga_id: string; step: string; phase: string; event: string; attempt: number; uncertain: number | null; idempotency_key: string | null }

export interface ShopState {
  sagas: SagaRow[];
  reservations: Reservation[];
  payments: Payment[];
  orders: Order[];
  shipments: Shipment[];
  ledger: LedgerRow[];
  products: Product[];
  accounts: Account[];
  events: SagaEventRow[];
}

/** Read-only access to a shop's database, whichever backend it is on. */
export interface Reader {
  all<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** `fn`'s reads in one read-only transaction: one consistent snapshot. */
  snapshot<T>(fn: (all: Reader['all']) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const isPostgres = (dbArg: string) => /^postgres(ql)?:\/\//.test(dbArg);

/**
 * Opens `dbArg` (a `--db` value) for reading: the SQLite file read-only, or one connection to the
 * PostgreSQL database (BIGINT read back as numbers, as the CLI reads it), held until closed: no
 * pool whose idle timeout could race a read. Reads on it take turns, so a snapshot's transaction
 * holds only its own reads. Queries use `?` placeholders on both.
 */
export async function openReader(dbArg: string): Promise<Reader> {
  if (isPostgres(dbArg)) {
    const client = new pg.Client({
      connectionString: dbArg,
      options: `-c search_path=${DEFAULT_PG_SCHEMA}`,
      types: { getTypeParser: (oid: number, format?: string) => (oid === pg.types.builtins.INT8 || oid === pg.types.builtins.NUMERIC ? Number : pg.types.getTypeParser(oid, format as 'text')) },
    });
    client.on('error', () => undefined);
    await client.connect();
    let turn: Promise<unknown> = Promise.resolve();
    const inTurn = <T>(work: () => Promise<T>): Promise<T> => {
      const mine = turn.then(work, work);
      turn = mine.catch(() => undefined);
      return mine;
    };
    const query = async <T>(sql: string, params: readonly unknown[] = []) => (await client.query(pgSql(sql), params as unknown[])).rows as T[];
    return {
      all: (sql, params) => inTurn(() => query(sql, params)),
      snapshot: (fn) =>
        inTurn(async () => {
          await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
          try {
            return await fn(query);
          } finally {
            await client.query('COMMIT');
          }
        }),
      close: () => client.end(),
    };
  }
  const db = openKeptDatabase(dbArg, { readonly: true, fileMustExist: true });
  const all = async <T>(sql: string, params: readonly unknown[] = []) => db.prepare(sql).all(...params) as T[];
  return {
    all,
    async snapshot(fn) {
      db.exec('BEGIN');
      try {
        return await fn(all);
      } finally {
        db.exec('COMMIT');
      }
    },
    close: async () => void db.close(),
  };
}

/**
 * PostgreSQL readers stay open per database until `closeReaders()` (each test file calls it
 * when all its tests are done), so polling does not connect anew every few milliseconds. A SQLite file is opened
 * and closed around every read, leaving nothing open beside the processes under test.
 */
const pgReaders = new Map<string, Promise<Reader>>();

async function withReader<T>(dbArg: string, fn: (r: Reader) => Promise<T>): Promise<T> {
  if (isPostgres(dbArg)) {
    let reader = pgReaders.get(dbArg);
    if (reader === undefined) {
      reader = openReader(dbArg);
      pgReaders.set(dbArg, reader);
      reader.catch(() => pgReaders.delete(dbArg));
    }
    return fn(await reader);
  }
  const reader = await openReader(dbArg);
  try {
    return await fn(reader);
  } finally {
    await reader.close();
  }
}

/** Closes the reader of one database, or of all (after a test file). */
export async function closeReaders(dbArg?: string): Promise<void> {
  const keys = dbArg === undefined ? [...pgReaders.keys()] : [dbArg];
  const readers = keys.flatMap((k) => pgReaders.get(k) ?? []);
  for (const k of keys) pgReaders.delete(k);
  await Promise.all(readers.map(async (r) => (await r.catch(() => undefined))?.close()));
}

export function readState(shop: Shop): Promise<ShopState> {
  return withReader(shop.db, (reader) =>
    reader.snapshot(async (all) => ({
      sagas: await all<SagaRow>('SELECT saga_id, status, input, owner_id, owner_pid, lease_until, idempotency_key FROM sagas ORDER BY created_at, saga_id'),
      reservations: await all<Reservation>('SELECT saga_id, product_id, qty, status FROM reservations ORDER BY created_at, saga_id'),
      payments: await all<Payment>('SELECT saga_id, amount_cents, status FROM payments ORDER BY payment_id'),
      orders: await all<Order>('SELECT saga_id, order_id, qty, status FROM orders ORDER BY order_id'),
      shipments: await all<Shipment>('SELECT saga_id, order_id, status FROM shipments ORDER BY shipment_id'),
      ledger: await all<LedgerRow>('SELECT idempotency_key, kind, customer_id, amount_cents, charge_key FROM provider_ledger ORDER BY created_at, idempotency_key'),
      products: await all<Product>('SELECT p.product_id, p.seeded_stock, i.stock FROM products p JOIN inventory i USING (product_id) ORDER BY product_id'),
      accounts: await all<Account>('SELECT customer_id, opening_balance_cents, balance_cents FROM provider_accounts ORDER BY customer_id'),
      events: await all<SagaEventRow>('SELECT saga_id, step, phase, event, attempt, uncertain, idempotency_key FROM saga_events ORDER BY event_id'),
    })),
  );
}

/** The saga a charge (or refund) key belongs to: keys are `<sagaId>:<step>[...]`. */
export function sagaOfKey(key: string): string {
  return key.slice(0, key.indexOf(':'));
}

export function chargesOf(state: ShopState, sagaId: string): LedgerRow[] {
  return state.ledger.filter((l) => l.kind === 'charge' && sagaOfKey(l.idempotency_key) === sagaId);
}

export function isRefunded(state: ShopState, charge: LedgerRow): boolean {
  return state.ledger.some((l) => l.kind === 'refund' && l.charge_key === charge.idempotency_key);
}

export function sagaStatus(state: ShopState, sagaId: string): Status | undefined {
  return state.sagas.find((s) => s.saga_id === sagaId)?.status;
}

/**
 * The invariants of docs/guarantees.md, computed from the rows without any code of src/. Returns
 * one readable line per problem (empty when all hold), so a failure shows what is wrong.
 */
export function problems(state: ShopState, opts: { allowStuck?: boolean } = {}): string[] {
  const out: string[] = [];
  const bySaga = <T extends { saga_id: string }>(rows: T[], id: string) => rows.filter((r) => r.saga_id === id);

  // Stock is conserved: seeded = available + held.
  for (const p of state.products) {
    const held = state.reservations.filter((r) => r.product_id === p.product_id && r.status === 'held').reduce((n, r) => n + r.qty, 0);
    if (p.seeded_stock !== p.stock + held) out.push(`product ${p.product_id}: seeded ${p.seeded_stock} <> available ${p.stock} + held ${held}`);
  }
  // Money is conserved: opening = balance + charges kept.
  for (const a of state.accounts) {
    const kept = state.ledger
      .filter((l) => l.kind === 'charge' && l.customer_id === a.customer_id && !isRefunded(state, l))
      .reduce((n, l) => n + l.amount_cents, 0);
    if (a.opening_balance_cents !== a.balance_cents + kept) {
      out.push(`customer ${a.customer_id}: opening ${a.opening_balance_cents} <> balance ${a.balance_cents} + kept ${kept}`);
    }
  }
  // Every provider entry belongs to a saga we know.
  for (const l of state.ledger) {
    if (!state.sagas.some((s) => s.saga_id === sagaOfKey(l.idempotency_key))) out.push(`ledger ${l.kind} ${l.idempotency_key} belongs to no saga`);
  }

  for (const s of state.sagas) {
    const id = s.saga_id;
    const input = JSON.parse(s.input) as { qty: number; amountCents: number; productId: number };
    const charges = chargesOf(state, id);
    const [reservation] = bySaga(state.reservations, id);
    const [payment] = bySaga(state.payments, id);
    const [order] = bySaga(state.orders, id);
    const [shipment] = bySaga(state.shipments, id);
    if (charges.length > 1) out.push(`saga ${id} was charged ${charges.length} times`);
    const ok = s.status === 'completed' || s.status === 'compensated' || (opts.allowStuck === true && s.status === 'stuck');
    if (!ok) out.push(`saga ${id} is ${s.status}, not terminal`);
    if (s.status === 'completed') {
      const charge = charges[0];
      if (charge === undefined || isRefunded(state, charge)) out.push(`completed saga ${id} has no kept charge at the provider`);
      else if (charge.amount_cents !== input.amountCents) out.push(`completed saga ${id} was charged ${charge.amount_cents}, not ${input.amountCents}`);
      if (payment?.status !== 'charged') out.push(`completed saga ${id}: payment row is ${payment?.status ?? 'missing'}, not charged`);
      if (order?.status !== 'confirmed') out.push(`completed saga ${id}: order is ${order?.status ?? 'missing'}, not confirmed`);
      if (shipment?.status !== 'scheduled') out.push(`completed saga ${id}: shipment is ${shipment?.status ?? 'missing'}, not scheduled`);
      if (reservation?.status !== 'held' || reservation.qty !== input.qty) out.push(`completed saga ${id}: reservation is ${JSON.stringify(reservation ?? null)}, not ${input.qty} held`);
    }
    if (s.status === 'compensated') {
      for (const c of charges) if (!isRefunded(state, c)) out.push(`compensated saga ${id}: charge ${c.idempotency_key} was never refunded`);
      if (payment !== undefined && payment.status !== 'refunded') out.push(`compensated saga ${id}: payment row is ${payment.status}`);
      if (charges.length > 0 && payment?.status !== 'refunded') out.push(`compensated saga ${id}: the provider refunded a charge but payments says ${payment?.status ?? 'nothing'}`);
      if (order !== undefined && order.status !== 'cancelled') out.push(`compensated saga ${id}: order is ${order.status}`);
      if (shipment !== undefined && shipment.status !== 'cancelled') out.push(`compensated saga ${id}: shipment is ${shipment.status}`);
      if (reservation !== undefined && reservation.status !== 'released') out.push(`compensated saga ${id}: reservation is ${reservation.status}`);
    }
    // Payments row and provider ledger tell the same story.
    if (payment?.status === 'charged' && (charges.length !== 1 || isRefunded(state, charges[0]!))) {
      out.push(`saga ${id}: payments says charged but the provider has ${charges.length} charge(s)${charges[0] && isRefunded(state, charges[0]) ? ', refunded' : ''}`);
    }
    if (shipment?.status === 'scheduled' && order?.status !== 'confirmed') out.push(`saga ${id}: shipment scheduled for a ${order?.status ?? 'missing'} order`);
  }
  return out;
}

// ---- the log ------------------------------------------------------------------------------

export function logOf(shop: Shop): LogLine[] {
  return readLog(shop.log);
}

export function linesOf(shop: Shop, sagaId: string, where: Partial<LogLine> = {}): LogLine[] {
  return logOf(shop).filter((l) => l.sagaId === sagaId && Object.entries(where).every(([k, v]) => l[k] === v));
}

export function takeOvers(shop: Shop, sagaId: string): number {
  return linesOf(shop, sagaId, { event: 'taken-over' }).length;
}

// ---- time ---------------------------------------------------------------------------------

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until it is true; throws with `what` after `timeoutMs`. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000, everyMs = 20): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    let ok = false;
    try {
      ok = await cond();
    } catch {
      ok = false;
    }
    if (ok) return;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Every crash point of the engine, in step order. */
export const CRASH_POINTS = STEPS.flatMap((s) => [`action:${s}:before`, `action:${s}:after-effect`]).concat(
  STEPS.flatMap((s) => [`compensation:${s}:before`, `compensation:${s}:after-effect`]),
);
