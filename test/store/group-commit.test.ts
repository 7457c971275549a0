import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { seedCatalog, SEED_CUSTOMERS, SEED_PRODUCTS } from '../../src/checkout/catalog.js';
import { checkoutSaga, type CheckoutInput } from '../../src/checkout/checkout-saga.js';
import { checkInvariants } from '../../src/checkout/invariants.js';
import { SimulatedCrashError } from '../../src/engine/attempt.js';
import { DuplicateSagaKeyError, LostOwnershipError } from '../../src/engine/errors.js';
import { startSaga, type EngineDeps } from '../../src/engine/runner.js';
import type { Batch, Owner } from '../../src/engine/store.js';
import { BACKENDS, type OpenedBackend } from '../support/backends.js';
import { tempDir } from '../support/cli.js';

/**
 * Group commit (docs/guarantees.md, rule 12): the commits of concurrent sagas in one process share
 * transactions, each saga's in a savepoint of its own. A saga whose writes fail is rejected alone;
 * nobody hears "committed" before the shared transaction is.
 */
const PRODUCT = SEED_PRODUCTS[0]; // 101, stock 25
const CUSTOMER = SEED_CUSTOMERS[0];

describe.each(BACKENDS)('group commit on $name', (backend) => {
  let dir: string;
  let opened: OpenedBackend;

  beforeEach(async () => {
    dir = tempDir('saga-group-');
    opened = await backend.open(dir);
    await seedCatalog(opened.db);
  });
  afterEach(async () => {
    await opened.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const owner = (id: string): Owner => ({ id, host: hostname(), pid: process.pid, pidScope: null, startedAt: null });
  const stock = async () => (await opened.db.get<{ stock: number }>('SELECT stock FROM inventory WHERE product_id = ?', [PRODUCT.productId]))!.stock;
  const sagaRow = (sagaId: string) => opened.db.get<{ status: string }>('SELECT status FROM sagas WHERE saga_id = ?', [sagaId]);
  const takeOneUnit = { op: 'writes' as const, writes: [{ sql: 'UPDATE inventory SET stock = stock - 1 WHERE product_id = ?', params: [PRODUCT.productId] }] };
  const create = (sagaId: string, by: Owner, extra: Partial<Batch> & { key?: string } = {}): Batch => ({
    sagaId, owner: by, leaseUntil: Date.now() + 30_000, ops: [takeOneUnit],
    create: { sagaId, definition: 'test', input: {}, createdAt: Date.now(), ...(extra.key === undefined ? {} : { idempotencyKey: extra.key }) },
    ...(extra.beforeCommit === undefined ? {} : { beforeCommit: extra.beforeCommit }),
  });

  it('16 checkouts started at once all complete, sharing transactions: fewer commits than one per saga, every invariant holds', async () => {
    const def = checkoutSaga({ provider: opened.provider, now: Date.now, timeoutMs: 5_000, retryBaseDelayMs: 1 });
    const deps: EngineDeps = {
      store: opened.store,
      logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
      clock: { now: Date.now, sleep: async () => undefined },
      random: Math.random,
      owner: owner('test'),
      leaseMs: 30_000,
    };
    const input: CheckoutInput = { productId: PRODUCT.productId, qty: 1, customerId: CUSTOMER.customerId, unitPriceCents: PRODUCT.priceCents, amountCents: PRODUCT.priceCents };
    const before = opened.commits();
    const outcomes = await Promise.all(Array.from({ length: 16 }, () => startSaga(def, input, deps, { sagaId: randomUUID() })));

    expect(outcomes.map((o) => o.status)).toEqual(Array(16).fill('completed'));
    expect(await stock()).toBe(PRODUCT.stock - 16);
    const completed = await opened.db.get<{ n: number }>(`SELECT count(*) AS n FROM sagas WHERE status = 'completed' AND owner_id IS NULL`);
    expect(Number(completed!.n)).toBe(16);
    // Alone, a checkout commits the saga log twice (32 here); shared, far fewer.
    expect(opened.commits() - before).toBeLessThanOrEqual(16);
    expect(await checkInvariants(opened.db, { now: Date.now(), machine: { host: hostname(), pidScope: null, process: () => ({ alive: true, startedAt: null }) } })).toEqual([]);
  });

  it('in one shared transaction, a lost lease, a duplicate key and a crash are each rejected alone; the others commit, and are durable once told', async () => {
    const me = owner('me');
    // A saga this process owned, then lost to a recoverer: its next commit must fail.
    const lost = randomUUID();
    await opened.store.commit(create(lost, me));
    const rec = (await opened.store.getSaga(lost))!;
    expect(await opened.store.takeOver(lost, rec, owner('recoverer'), Date.now() + 30_000, 'lease-expired')).toBe(true);
    const stockBefore = await stock();
    const commitsBefore = opened.commits();

    // Several sagas in flight: the commits group.
    for (let i = 0; i < 6; i++) opened.store.inFlight!.enter();
    const [a, b, c, d] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const key = `key-${randomUUID()}`;
    // Each success is checked the moment it is told: its row must already be there, from any reader.
    const seenWhenTold = (p: Promise<unknown>, sagaId: string) => p.then(async () => (await sagaRow(sagaId))?.status ?? 'absent');
    const results = await Promise.allSettled([
      seenWhenTold(opened.store.commit(create(a, me, { key })), a),
      opened.store.commit({ sagaId: lost, owner: me, leaseUntil: Date.now() + 30_000, ops: [takeOneUnit] }),
      seenWhenTold(opened.store.commit(create(b, me)), b),
      opened.store.commit(create(c, me, { key })),
      opened.store.commit(create(randomUUID(), me, { beforeCommit: () => { throw new SimulatedCrashError('test'); } })),
      seenWhenTold(opened.store.commit(create(d, me)), d),
    ]);
    for (let i = 0; i < 6; i++) opened.store.inFlight!.leave();

    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).constructor.name))).toEqual([
      'running', LostOwnershipError.name, 'running', DuplicateSagaKeyError.name, SimulatedCrashError.name, 'running',
    ]);
    // Exactly the three that committed took their unit of stock; nothing of the others remains.
    expect(await stock()).toBe(stockBefore - 3);
    expect(await sagaRow(c)).toBeUndefined();
    expect(Number((await opened.db.get<{ n: number }>('SELECT count(*) AS n FROM sagas'))!.n)).toBe(4);
    // Six commits in at most two transactions (PostgreSQL runs the first alone while the rest queue).
    expect(opened.commits() - commitsBefore).toBeLessThanOrEqual(2);
  });
});
