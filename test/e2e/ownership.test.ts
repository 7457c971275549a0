import { readFileSync, readlinkSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import type { SagaRow } from '../../src/store/saga-rows.js';
import { openReader } from '../support/reader.js';
import { checkout, closeReaders, explain, newShop, saga, takeOvers, type Shop } from '../faults/helpers.js';

/**
 * Rule 7 with containers: a recoverer takes a saga over before its lease expires only when it can
 * prove the owner is gone, which it can only from the owner's own PID namespace on the same
 * running kernel. An owner elsewhere (a container with the same hostname, whose pid means nothing
 * here) keeps its saga until its lease expires; an owner here that really died is replaced at once.
 */
const shops: Shop[] = [];

afterEach(async () => {
  await closeReaders();
  for (const shop of shops.splice(0)) rmSync(shop.dir, { recursive: true, force: true });
});

type OwnerRow = Pick<SagaRow, 'saga_id' | 'status' | 'owner_id' | 'owner_host' | 'owner_pid' | 'owner_pid_scope' | 'owner_started_at' | 'lease_until'>;

async function withDb<T>(shop: Shop, fn: (db: Awaited<ReturnType<typeof openReader>>) => Promise<T>): Promise<T> {
  const db = await openReader(shop.db);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

const ownerOf = (shop: Shop, sagaId: string) =>
  withDb(shop, async (db) => (await db.all<OwnerRow>('SELECT saga_id, status, owner_id, owner_host, owner_pid, owner_pid_scope, owner_started_at, lease_until FROM sagas WHERE saga_id = ?', [sagaId]))[0]!);

/** A `saga checkout` SIGKILLed after the provider charged: its owner really died, on this host. */
async function crashedCheckout(shop: Shop): Promise<string> {
  const run = await checkout(shop, { failAt: 'payment', failMode: 'crash' });
  expect(run.signal, explain(run)).toBe('SIGKILL');
  return withDb(shop, async (db) => (await db.all<{ saga_id: string }>(`SELECT saga_id FROM sagas WHERE status = 'running' ORDER BY created_at DESC LIMIT 1`))[0]!.saga_id);
}

/** This (test) process's start time as /proc says: a live process in the recoverer's namespace. */
function ownStartTime(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

describe.each(BACKENDS)('who may take a saga over before its lease expires ($name)', (backend) => {
  it('an owner in the same PID namespace that was SIGKILLed is taken over at once; it recorded its boot id, namespace and start time', async () => {
    const shop = await newShop(backend);
    shops.push(shop);
    const sagaId = await crashedCheckout(shop);
    const owner = await ownerOf(shop, sagaId);
    expect(owner.owner_host).toBe(hostname());
    expect(owner.owner_pid_scope).toBe(`${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}/${readlinkSync('/proc/self/ns/pid')}`);
    expect(Number(owner.owner_started_at)).toBeGreaterThan(0);
    expect(Number(owner.lease_until)).toBeGreaterThan(Date.now()); // its lease is far from over: only its death lets recover in

    const rec = await saga(shop, ['recover']);
    expect(rec.code, explain(rec)).toBe(0);
    expect(rec.stdout, explain(rec)).toMatch(new RegExp(`${sagaId} +running +resumed forward -> completed`));
    expect((await ownerOf(shop, sagaId)).status).toBe('completed');
  });

  it('an owner with this hostname in another PID namespace (a container) is left alone until its lease expires', async () => {
    const shop = await newShop(backend);
    shops.push(shop);
    const sagaId = await crashedCheckout(shop);
    // The same row as a container on this host would write it: same hostname, a pid that does not
    // exist here (its own namespace's pid), another namespace; its lease current.
    const dead = (await ownerOf(shop, sagaId)).owner_pid!;
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    await withDb(shop, (db) =>
      db.run('UPDATE sagas SET owner_id = ?, owner_host = ?, owner_pid = ?, owner_pid_scope = ?, owner_started_at = ?, lease_until = ? WHERE saga_id = ?', [
        `${hostname()}:${dead}:c0ffee00`, hostname(), dead, `${bootId}/pid:[4026599999]`, 12345, Date.now() + 10 * 60_000, sagaId,
      ]),
    );
    const before = await ownerOf(shop, sagaId);

    const rec = await saga(shop, ['recover']);
    expect(rec.code, explain(rec)).toBe(0);
    expect(rec.stdout, explain(rec)).toMatch(new RegExp(`${sagaId} +running +skipped: its owner may be alive and its lease is current`));
    expect(await ownerOf(shop, sagaId)).toEqual(before);
    expect(takeOvers(shop, sagaId)).toBe(0);
    const verify = await saga(shop, ['verify', '--json']);
    expect(verify.code, explain(verify)).toBe(0); // owned under a live lease: no violation

    // Its lease runs out (the container stopped renewing it): now it is recovered.
    await withDb(shop, (db) => db.run('UPDATE sagas SET lease_until = ? WHERE saga_id = ?', [Date.now() - 1, sagaId]));
    const after = await saga(shop, ['recover']);
    expect(after.code, explain(after)).toBe(0);
    expect(after.stdout, explain(after)).toMatch(new RegExp(`${sagaId} +running +resumed forward -> completed`));
    expect(takeOvers(shop, sagaId)).toBe(1);
  });

  it('a live pid is the owner only if it started when the owner did: a reused pid is taken over at once, the real owner is not', async () => {
    const shop = await newShop(backend);
    shops.push(shop);
    const live = await crashedCheckout(shop);
    const reused = await crashedCheckout(shop);
    const { owner_pid_scope: scope } = await ownerOf(shop, live);
    const lease = Date.now() + 10 * 60_000;
    // This test process is alive in the recoverer's namespace: once as itself, once as the
    // holder of a pid whose owner (started earlier) is gone.
    const claim = (sagaId: string, startedAt: number) =>
      withDb(shop, (db) =>
        db.run('UPDATE sagas SET owner_id = ?, owner_host = ?, owner_pid = ?, owner_pid_scope = ?, owner_started_at = ?, lease_until = ? WHERE saga_id = ?', [
          `${hostname()}:${process.pid}:${startedAt}`, hostname(), process.pid, scope, startedAt, lease, sagaId,
        ]),
      );
    await claim(live, ownStartTime());
    await claim(reused, ownStartTime() - 1);

    const rec = await saga(shop, ['recover']);
    expect(rec.code, explain(rec)).toBe(0);
    expect(rec.stdout, explain(rec)).toMatch(new RegExp(`${live} +running +skipped: its owner may be alive`));
    expect(rec.stdout, explain(rec)).toMatch(new RegExp(`${reused} +running +resumed forward -> completed`));
    expect((await ownerOf(shop, live)).status).toBe('running');
  });
});
