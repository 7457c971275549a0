/**
 * Group commit on SQLite (docs/guarantees.md, rule 12), in process, wired exactly as the CLI wires
 * it (`openApp`: the saga log and the payment provider share one in-flight counter): concurrent
 * sagas share transactions, a saga whose writes throw inside a shared transaction is undone alone
 * and told alone, and a lone saga commits at once, without waiting for company.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkInvariants } from '../../src/checkout/invariants.js';
import { checkoutSaga, type CheckoutInput } from '../../src/checkout/checkout-saga.js';
import type { PaymentProvider } from '../../src/checkout/payment-provider.js';
import { findProduct } from '../../src/checkout/queries.js';
import { openApp, type App } from '../../src/cli/app.js';
import { resolveGlobals } from '../../src/cli/settings.js';
import { SimulatedCrashError } from '../../src/engine/attempt.js';
import { systemClock } from '../../src/engine/clock.js';
import { LostOwnershipError } from '../../src/engine/errors.js';
import { faultInjector } from '../../src/engine/faults.js';
import { localMachine, processOwner } from '../../src/engine/process-identity.js';
import { recoverAbandonedSagas } from '../../src/engine/recovery.js';
import { startSaga, type EngineDeps, type SagaOutcome } from '../../src/engine/runner.js';
import { newSagaId } from '../../src/engine/saga-id.js';
import type { Owner } from '../../src/engine/store.js';
import { crashedOwner } from '../../src/explore/run-scenario.js';
import { createLogger } from '../../src/log.js';
import { BACKENDS } from '../support/backends.js';
import { openReader } from '../support/reader.js';
import { readLog, tempDir } from '../support/cli.js';
import { openSqlite } from '../../src/store/sqlite/open.js';
import { sagasInFlight } from '../../src/store/group-commit.js';
import { writeGroup } from '../../src/store/sqlite/write-group.js';

const SAGAS = 16;
const sqlite = BACKENDS.find((b) => b.name === 'sqlite')!;

interface Shop {
  readonly dir: string;
  readonly db: string;
  readonly log: string;
  readonly app: App;
  readonly logger: ReturnType<typeof createLogger>;
}

const open: Shop[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) {
    s.logger.close();
    await s.app.close();
  }
});

/** A seeded SQLite shop opened as `saga bench` opens it, logging to its saga.log. */
async function newShop(): Promise<Shop> {
  const dir = tempDir('saga-group-');
  const db = await sqlite.seededDb(dir);
  const app = await openApp(resolveGlobals({ flags: { db }, env: {}, dotenv: {} }), 'never');
  const log = join(dir, 'saga.log');
  const logger = createLogger({ level: 'info', logFile: log, color: false, onFileError: (err) => { throw err; } });
  const shop = { dir, db, log, app, logger };
  open.push(shop);
  return shop;
}

/**
 * The sagas' owner is a process that has exited (as in test/faults/in-process.ts), so a saga one
 * of them leaves unfinished is recovered at once, as after a real kill.
 */
function deps(shop: Shop, owner: Owner = crashedOwner()): EngineDeps {
  return { store: shop.app.store, logger: shop.logger.logger, clock: systemClock, random: Math.random, owner, leaseMs: 30_000 };
}

async function inputFor(app: App, productId: number): Promise<CheckoutInput> {
  const p = (await findProduct(app.db, productId))!;
  return { productId, qty: 1, customerId: 1, unitPriceCents: p.priceCents, amountCents: p.priceCents };
}

/** Starts `SAGAS` checkouts at once (each enters the in-flight count before anyone commits). */
function startAll(shop: Shop, input: CheckoutInput, each: (i: number, sagaId: string) => Partial<EngineDeps> = () => ({})) {
  return Array.from({ length: SAGAS }, (_, i) => {
    const sagaId = newSagaId();
    return { sagaId, run: startSaga(shop.app.checkout, input, { ...deps(shop), ...each(i, sagaId) }, { sagaId }) };
  });
}

async function rows<T>(db: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const reader = await openReader(db);
  try {
    return await reader.all<T>(sql, params);
  } finally {
    await reader.close();
  }
}

const violations = (app: App) => checkInvariants(app.db, { now: Date.now(), machine: localMachine() });

/** (sagaId, step, phase, event, attempt) of each step-event line of saga.log that is not a row of saga_events. */
async function loggedButNotRecorded(shop: Shop): Promise<string[]> {
  const key = (r: { sagaId: string; step: string; phase: string; event: string; attempt: number }) => `${r.sagaId} ${r.step} ${r.phase} ${r.event} #${r.attempt}`;
  const recorded = new Set(
    (await rows<{ saga_id: string; step: string; phase: string; event: string; attempt: number }>(shop.db, 'SELECT saga_id, step, phase, event, attempt FROM saga_events')).map((r) =>
      key({ sagaId: r.saga_id, step: r.step, phase: r.phase, event: r.event, attempt: Number(r.attempt) }),
    ),
  );
  return readLog(shop.log)
    .filter((l) => l.step !== undefined && l.phase !== undefined && typeof l.attempt === 'number' && ['started', 'succeeded', 'failed', 'retrying'].includes(l.event ?? ''))
    .map((l) => key(l as Parameters<typeof key>[0]))
    .filter((k) => !recorded.has(k));
}

describe('group commit on SQLite', () => {
  it(`${SAGAS} concurrent checkouts share their transactions and all complete`, async () => {
    const shop = await newShop();
    const input = await inputFor(shop.app, 101);
    const before = shop.app.counters!();
    const outcomes = await Promise.all(startAll(shop, input).map((s) => s.run));
    const after = shop.app.counters!();

    expect(outcomes.map((o) => o.status)).toEqual(Array(SAGAS).fill('completed'));
    // Alone, each checkout commits twice to the saga log and once to the provider: 32 and 16.
    // Together they share: the 16 first commits are one transaction, the 16 last another.
    expect(after.commits - before.commits).toBeLessThanOrEqual(4);
    expect(after.providerCommits - before.providerCommits).toBeLessThanOrEqual(2);
    const sagas = await rows<{ status: string; n: number }>(shop.db, 'SELECT status, count(*) AS n FROM sagas GROUP BY status');
    expect(sagas).toEqual([{ status: 'completed', n: SAGAS }]);
    expect(await rows(shop.db, "SELECT count(*) AS n FROM payments WHERE status = 'charged'")).toEqual([{ n: SAGAS }]);
    expect(await rows(shop.db, "SELECT count(*) AS n FROM provider_ledger WHERE kind = 'charge'")).toEqual([{ n: SAGAS }]);
    expect(await violations(shop.app)).toEqual([]);
    expect(await loggedButNotRecorded(shop)).toEqual([]);
  });

  it('a guard that fails in a shared transaction fails that saga alone: the others keep their stock', async () => {
    const shop = await newShop();
    // Product 103 has 12 units: 16 checkouts at once, in one shared transaction.
    const input = await inputFor(shop.app, 103);
    const outcomes = await Promise.all(startAll(shop, input).map((s) => s.run));

    const by = (status: SagaOutcome['status']) => outcomes.filter((o) => o.status === status);
    expect(by('completed')).toHaveLength(12);
    expect(by('compensated')).toHaveLength(4);
    for (const o of by('compensated')) {
      expect(o.failedStep).toBe('inventory');
      expect(o.error).toMatch(/out of stock/);
    }
    expect(await rows(shop.db, 'SELECT stock FROM inventory WHERE product_id = 103')).toEqual([{ stock: 0 }]);
    expect(await rows(shop.db, "SELECT count(*) AS n FROM reservations WHERE product_id = 103 AND status = 'held'")).toEqual([{ n: 12 }]);
    // The four that found no stock were never charged.
    expect(await rows(shop.db, "SELECT count(*) AS n FROM provider_ledger WHERE kind = 'charge'")).toEqual([{ n: 12 }]);
    expect(await violations(shop.app)).toEqual([]);
    expect(await loggedButNotRecorded(shop)).toEqual([]);
  });

  it('a batch that throws in a shared transaction (a crash inside it) is undone alone; the others commit', async () => {
    const shop = await newShop();
    const input = await inputFor(shop.app, 101);
    const VICTIM = 7;
    // The victim "crashes" inside its transaction after its order step's writes ran: in the
    // same shared transaction as the others' completing commits.
    const sagas = startAll(shop, input, (i) => (i === VICTIM ? { faults: faultInjector({ crashAt: ['action:order:after-effect'] }, (p) => { throw new SimulatedCrashError(p); }) } : {}));
    const settled = await Promise.allSettled(sagas.map((s) => s.run));
    const victim = sagas[VICTIM]!.sagaId;

    settled.forEach((r, i) => {
      if (i === VICTIM) expect(r.status === 'rejected' && r.reason).toBeInstanceOf(SimulatedCrashError);
      else expect(r.status === 'fulfilled' && r.value.status).toBe('completed');
    });
    // Nothing of the victim's undone commit is in the database: no payment row, no order, the
    // payment's outcome not recorded, the saga still running at its payment's write-ahead record.
    expect(await rows(shop.db, 'SELECT status FROM sagas WHERE saga_id = ?', [victim])).toEqual([{ status: 'running' }]);
    expect(await rows(shop.db, 'SELECT count(*) AS n FROM payments WHERE saga_id = ?', [victim])).toEqual([{ n: 0 }]);
    expect(await rows(shop.db, 'SELECT count(*) AS n FROM orders WHERE saga_id = ?', [victim])).toEqual([{ n: 0 }]);
    expect(await rows(shop.db, 'SELECT step, phase, event FROM saga_events WHERE saga_id = ? ORDER BY event_id', [victim])).toEqual([
      { step: 'inventory', phase: 'action', event: 'started' },
      { step: 'inventory', phase: 'action', event: 'succeeded' },
      { step: 'payment', phase: 'action', event: 'started' },
    ]);
    // The others' commits in that transaction are durable.
    expect(await rows(shop.db, "SELECT count(*) AS n FROM sagas WHERE status = 'completed'")).toEqual([{ n: SAGAS - 1 }]);
    expect(await rows(shop.db, "SELECT count(*) AS n FROM orders WHERE status = 'confirmed'")).toEqual([{ n: SAGAS - 1 }]);
    expect(await loggedButNotRecorded(shop)).toEqual([]);

    // Recovery finishes the victim (its owner is gone); every invariant holds.
    const recovered = await recoverAbandonedSagas(shop.app.definitions, { ...deps(shop, processOwner()), machine: localMachine() });
    expect(recovered.map((r) => [r.sagaId, r.action === 'recovered' && r.outcome.status])).toEqual([[victim, 'completed']]);
    expect(await rows(shop.db, "SELECT count(*) AS n FROM provider_ledger WHERE kind = 'charge'")).toEqual([{ n: SAGAS }]);
    expect(await violations(shop.app)).toEqual([]);
  });

  it('a saga that lost its lease is refused alone inside a shared transaction; the others commit', async () => {
    const shop = await newShop();
    const input = await inputFor(shop.app, 101);
    const VICTIM = 5;
    let victim = '';
    const usurper: Owner = { ...crashedOwner(), id: `${crashedOwner().id}:usurper` };
    // While the victim's charge is at the provider, another process takes the saga over: the
    // victim's next commit, shared with the others' completing commits, must be refused.
    const provider: PaymentProvider = {
      charge: async (req) => {
        if (req.key.startsWith(`${victim}:`)) {
          const saga = (await shop.app.store.getSaga(victim))!;
          expect(await shop.app.store.takeOver(victim, saga, usurper, Date.now() - 1, 'lease-expired')).toBe(true);
        }
        return shop.app.provider.charge(req);
      },
      refund: (req) => shop.app.provider.refund(req),
    };
    const checkout = checkoutSaga({ provider, now: Date.now, timeoutMs: 5_000, retryBaseDelayMs: 1 });
    const sagas = Array.from({ length: SAGAS }, () => {
      const sagaId = newSagaId();
      return { sagaId, run: startSaga(checkout, input, deps(shop), { sagaId }) };
    });
    victim = sagas[VICTIM]!.sagaId;
    const settled = await Promise.allSettled(sagas.map((s) => s.run));

    settled.forEach((r, i) => {
      if (i === VICTIM) expect(r.status === 'rejected' && r.reason).toBeInstanceOf(LostOwnershipError);
      else expect(r.status === 'fulfilled' && r.value.status).toBe('completed');
    });
    expect(await rows(shop.db, 'SELECT status, owner_id FROM sagas WHERE saga_id = ?', [victim])).toEqual([{ status: 'running', owner_id: usurper.id }]);
    expect(await rows(shop.db, 'SELECT count(*) AS n FROM payments WHERE saga_id = ?', [victim])).toEqual([{ n: 0 }]);
    expect(await rows(shop.db, "SELECT count(*) AS n FROM sagas WHERE status = 'completed'")).toEqual([{ n: SAGAS - 1 }]);
    expect(await loggedButNotRecorded(shop)).toEqual([]);

    const recovered = await recoverAbandonedSagas(shop.app.definitions, { ...deps(shop, processOwner()), machine: localMachine() });
    expect(recovered.map((r) => [r.sagaId, r.action === 'recovered' && r.outcome.status])).toEqual([[victim, 'completed']]);
    expect(await violations(shop.app)).toEqual([]);
  });

  describe('a lone saga commits at once', () => {
    /** A batch that creates a saga (nothing else): a commit whose effect is one row. */
    const createBatch = (owner: Owner) => {
      const sagaId = newSagaId();
      return { sagaId, batch: { sagaId, owner, leaseUntil: Date.now() + 30_000, ops: [], create: { sagaId, definition: 'checkout', input: {}, createdAt: Date.now() } } };
    };
    const sagaRows = (shop: Shop) => rows<{ saga_id: string }>(shop.db, 'SELECT saga_id FROM sagas ORDER BY saga_id');
    /**
     * Marks the next turn of the event loop, from before a commit is submitted: racing it against
     * the commit says whether the commit waited for the turn to end (an order, not a timing).
     */
    const nextTurn = () => new Promise((r) => setImmediate(() => r('next turn')));
    const first = (commit: Promise<unknown>, turn: Promise<unknown>) => Promise.race([commit.then(() => 'commit'), turn]);

    it('with one saga in flight, its commit is in the database when commit() returns and settles before the next turn', async () => {
      const shop = await newShop();
      const { store } = shop.app;
      const owner = crashedOwner();
      store.inFlight!.enter();
      try {
        const { sagaId, batch } = createBatch(owner);
        const turn = nextTurn();
        const committing = store.commit(batch);
        // Read by another connection before this process awaited anything: already committed.
        expect(await sagaRows(shop)).toEqual([{ saga_id: sagaId }]);
        expect(await first(committing, turn)).toBe('commit');
        expect(shop.app.counters!().commits).toBe(1);
      } finally {
        store.inFlight!.leave();
      }
      // A whole checkout alone: two commits of its own, one at the provider.
      const before = shop.app.counters!();
      const sagaId = newSagaId();
      const outcome = await startSaga(shop.app.checkout, await inputFor(shop.app, 101), deps(shop, owner), { sagaId });
      expect(outcome.status).toBe('completed');
      expect(shop.app.counters!()).toEqual({ commits: before.commits + 2, providerCommits: before.providerCommits + 1 });
    });

    it('with two in flight, commits submitted in one turn wait for the turn to end and share one transaction', async () => {
      const shop = await newShop();
      const { store } = shop.app;
      const owner = crashedOwner();
      store.inFlight!.enter();
      store.inFlight!.enter();
      try {
        const a = createBatch(owner);
        const b = createBatch(owner);
        const turn = nextTurn();
        const committing = [store.commit(a.batch), store.commit(b.batch)];
        expect(await sagaRows(shop)).toEqual([]);
        expect(await first(Promise.all(committing), turn)).toBe('next turn');
        await Promise.all(committing);
        expect((await sagaRows(shop)).map((r) => r.saga_id).sort()).toEqual([a.sagaId, b.sagaId].sort());
        expect(shop.app.counters!().commits).toBe(1);
      } finally {
        store.inFlight!.leave();
        store.inFlight!.leave();
      }
    });
  });
});

describe('the write group itself, on a real SQLite file', () => {
  /** A bare table on a database of its own, and a group that believes `n` sagas are in flight. */
  function bareGroup(n: number, opts: Parameters<typeof writeGroup>[2] = {}) {
    const dir = tempDir('saga-write-group-');
    const path = join(dir, 'bare.db');
    const db = openSqlite(path, { durability: 'normal' });
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)');
    const inFlight = sagasInFlight();
    for (let i = 0; i < n; i++) inFlight.enter();
    const rows = () => (db.prepare('SELECT id FROM t ORDER BY id').all() as { id: number }[]).map((r) => r.id);
    const insert = (id: number, bytes = 8) => () => db.prepare('INSERT INTO t (id, body) VALUES (?, ?)').run(id, Buffer.alloc(bytes)).changes;
    return { db, group: writeGroup(db, inFlight, opts), rows, insert, close: () => db.close() };
  }

  it('a write whose error ends the whole transaction (the disk is full) fails alone; the others run again and commit', async () => {
    const g = bareGroup(3);
    try {
      // Room for small rows, not for a 1 MiB one: SQLite answers SQLITE_FULL and rolls everything back.
      const pages = Number(g.db.prepare('PRAGMA page_count').pluck().get());
      g.db.prepare(`PRAGMA max_page_count = ${pages + 20}`).run();
      const results = await Promise.allSettled([g.group.submit(g.insert(1)), g.group.submit(g.insert(2, 1 << 20)), g.group.submit(g.insert(3))]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(String((results[1] as PromiseRejectedResult).reason.code)).toBe('SQLITE_FULL');
      expect(g.rows()).toEqual([1, 3]);
      expect(g.group.commits).toBe(1);
    } finally {
      g.close();
    }
  });

  it('a crash point after the shared COMMIT tells every writer (none is left waiting)', async () => {
    const g = bareGroup(2, { point: (name) => { if (name === 'group:1:after') throw new SimulatedCrashError(name); } });
    try {
      const results = await Promise.allSettled([g.group.submit(g.insert(1)), g.group.submit(g.insert(2))]);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      // Durable all the same: the process "died" after the COMMIT, before anybody was told.
      expect(g.rows()).toEqual([1, 2]);
    } finally {
      g.close();
    }
  });

  it('a commit submitted inside an open transaction is refused, not quietly nested in it', async () => {
    const g = bareGroup(1);
    try {
      g.db.exec('BEGIN');
      await expect(g.group.submit(g.insert(1))).rejects.toThrow(/inside an open transaction/);
      g.db.exec('ROLLBACK');
      expect(g.rows()).toEqual([]);
    } finally {
      g.close();
    }
  });
});
