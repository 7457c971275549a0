import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { readLog } from '../support/cli.js';
import { openReader } from '../support/reader.js';
import { checkout, closeReaders, explain, newShop, saga, startIn, waitFor, type Shop } from '../faults/helpers.js';

/**
 * A saga recovery cannot drive (its stored input is not JSON, or its definition is unknown to
 * this version) is reported and skipped: it never stops the recovery of the others, `saga
 * recover` exits 4 because it is left neither done nor undone, and `list`, `show` and `verify`
 * still work and say what is wrong with it.
 */
const shops: Shop[] = [];

afterEach(async () => {
  await closeReaders();
  for (const shop of shops.splice(0)) rmSync(shop.dir, { recursive: true, force: true });
});

async function shopWith(backend: (typeof BACKENDS)[number]): Promise<Shop> {
  const shop = await newShop(backend);
  shops.push(shop);
  return shop;
}

/** A checkout SIGKILLed after the provider charged: running, its owner gone, for recovery to finish. */
async function abandonedSaga(shop: Shop): Promise<string> {
  const run = await checkout(shop, { failAt: 'payment', failMode: 'crash' });
  expect(run.signal, explain(run)).toBe('SIGKILL');
  const db = await openReader(shop.db);
  try {
    // The newest saga, whatever its status: a watcher already running may have recovered it by now
    // (filtering on 'running' then found the older damaged saga, and the test waited on the wrong one).
    const rows = await db.all<{ saga_id: string }>(`SELECT saga_id FROM sagas ORDER BY created_at DESC LIMIT 1`);
    return rows[0]!.saga_id;
  } finally {
    await db.close();
  }
}

async function sql(shop: Shop, text: string, params: unknown[] = []): Promise<void> {
  const db = await openReader(shop.db);
  try {
    await db.run(text, params);
  } finally {
    await db.close();
  }
}

async function statusOf(shop: Shop, sagaId: string): Promise<string | undefined> {
  const db = await openReader(shop.db);
  try {
    return (await db.all<{ status: string }>('SELECT status FROM sagas WHERE saga_id = ?', [sagaId]))[0]?.status;
  } finally {
    await db.close();
  }
}

const DAMAGED_INPUT = '{"productId": 101, "qty": 1, "custo';

describe.each(BACKENDS)('a saga recovery cannot drive ($name)', (backend) => {
  it('a damaged row is reported and skipped: the healthy saga next to it is recovered, recover exits 4; list, show and verify mark it', async () => {
    const shop = await shopWith(backend);
    const damaged = await abandonedSaga(shop);
    const healthy = await abandonedSaga(shop);
    await sql(shop, 'UPDATE sagas SET input = ? WHERE saga_id = ?', [DAMAGED_INPUT, damaged]);

    const rec = await saga(shop, ['recover']);
    expect(rec.code, explain(rec)).toBe(4);
    const lines = rec.stdout.trim().split('\n');
    const damagedLine = lines.filter((l) => l.startsWith(damaged));
    expect(damagedLine, explain(rec)).toHaveLength(1);
    expect(damagedLine[0]).toMatch(/skipped, left running: its stored input is not valid JSON .*repair its input.*then run `saga recover`/);
    expect(lines.find((l) => l.startsWith(healthy)), explain(rec)).toMatch(/resumed forward -> completed/);
    expect(rec.stderr).not.toMatch(/SyntaxError|internal error|at .*\.js/);
    expect(await statusOf(shop, healthy)).toBe('completed');
    expect(await statusOf(shop, damaged)).toBe('running');
    expect(readLog(shop.log).filter((l) => l.sagaId === damaged && l.event === 'recover-skipped')).toHaveLength(1);

    // Run again: still reported, still 4, in --json too.
    const again = await saga(shop, ['recover', '--json']);
    expect(again.code, explain(again)).toBe(4);
    const json = JSON.parse(again.stdout) as { recovered: { sagaId: string; action: string; error?: string }[]; stuck: boolean };
    expect(json.stuck).toBe(true);
    expect(json.recovered).toEqual([expect.objectContaining({ sagaId: damaged, action: 'damaged', error: expect.stringMatching(/not valid JSON/) })]);

    const list = await saga(shop, ['list']);
    expect(list.code, explain(list)).toBe(0);
    expect(list.stdout.split('\n').find((l) => l.startsWith(damaged))).toMatch(/damaged +RUNNING +damaged row: see `saga show`/);
    expect(list.stdout.split('\n').find((l) => l.startsWith(healthy))).toMatch(/1 × 101 +completed/);
    const listJson = await saga(shop, ['list', '--json']);
    expect(listJson.code, explain(listJson)).toBe(0);
    const rows = JSON.parse(listJson.stdout) as { sagaId: string; damage: string | null; productId: number | null }[];
    expect(rows.find((r) => r.sagaId === damaged)).toMatchObject({ damage: expect.stringMatching(/not valid JSON/), productId: null });
    expect(rows.find((r) => r.sagaId === healthy)).toMatchObject({ damage: null, productId: 101 });

    const show = await saga(shop, ['show', damaged]);
    expect(show.code, explain(show)).toBe(0);
    expect(show.stdout).toMatch(/input {3}damaged: its stored input is not valid JSON/);
    expect(show.stdout).toMatch(/recovery cannot drive this saga; repair its input/);
    const showJson = await saga(shop, ['show', damaged, '--json']);
    expect(showJson.code, explain(showJson)).toBe(0);
    expect(JSON.parse(showJson.stdout)).toMatchObject({ sagaId: damaged, status: 'running', input: null, damage: expect.stringMatching(/not valid JSON/) });

    const verify = await saga(shop, ['verify', '--json']);
    expect(verify.code, explain(verify)).toBe(5);
    const violations = (JSON.parse(verify.stdout) as { violations: { invariant: string; message: string }[] }).violations;
    expect(violations.filter((v) => v.invariant === 'saga-damaged')).toEqual([
      expect.objectContaining({ message: expect.stringMatching(new RegExp(`saga ${damaged} is running but its stored input is not valid JSON`)) }),
    ]);
  });

  it('recover --watch says so once and goes on recovering the sagas whose owners die later', async () => {
    const shop = await shopWith(backend);
    const damaged = await abandonedSaga(shop);
    const healthy = await abandonedSaga(shop);
    await sql(shop, 'UPDATE sagas SET input = ? WHERE saga_id = ?', [DAMAGED_INPUT, damaged]);

    const watcher = startIn(shop, ['recover', '--watch', '--interval', '50']);
    try {
      await waitFor('the watcher to recover the healthy saga', async () => (await statusOf(shop, healthy)) === 'completed', 30_000);
      const later = await abandonedSaga(shop);
      await waitFor('the watcher to recover a saga abandoned after it started', async () => (await statusOf(shop, later)) === 'completed', 30_000);
    } finally {
      watcher.child.kill('SIGTERM');
    }
    const run = await watcher.done;
    expect(run.code, explain(run)).toBe(0);
    expect(run.stdout.split('\n').filter((l) => l.startsWith(damaged)), explain(run)).toEqual([expect.stringMatching(/skipped, left running: its stored input is not valid JSON/)]);
    expect(run.stderr).not.toMatch(/recovery pass failed/);
    expect(await statusOf(shop, damaged)).toBe('running');
  });

  it('a saga of an unknown definition is left as it is and recover exits 4, saying why and what to do', async () => {
    const shop = await shopWith(backend);
    const unknown = await abandonedSaga(shop);
    const healthy = await abandonedSaga(shop);
    await sql(shop, `UPDATE sagas SET definition = 'refund-v2' WHERE saga_id = ?`, [unknown]);

    const rec = await saga(shop, ['recover']);
    expect(rec.code, explain(rec)).toBe(4);
    expect(rec.stdout.split('\n').find((l) => l.startsWith(unknown)), explain(rec)).toMatch(
      /skipped, left running: its definition "refund-v2" is not known to this saga version; run `saga recover` with the saga version that started it/,
    );
    expect(rec.stdout.split('\n').find((l) => l.startsWith(healthy)), explain(rec)).toMatch(/resumed forward -> completed/);
    expect(await statusOf(shop, unknown)).toBe('running');

    const json = await saga(shop, ['recover', '--json']);
    expect(json.code, explain(json)).toBe(4);
    expect((JSON.parse(json.stdout) as { recovered: unknown[] }).recovered).toEqual([
      expect.objectContaining({ sagaId: unknown, action: 'unknown-definition', error: expect.stringMatching(/refund-v2/) }),
    ]);
  });
});
