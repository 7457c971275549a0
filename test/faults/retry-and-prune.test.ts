/**
 * `saga retry` and `saga prune` through the real CLI, on every backend: a retry drives one stuck
 * saga (and no other) with a fresh compensation budget; a prune deletes whole logs of old
 * terminal sagas only, in batches, never a business row, and `saga verify` stays clean after it.
 */
import { statSync } from 'node:fs';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openApp } from '../../src/cli/app.js';
import { resolveGlobals } from '../../src/cli/settings.js';
import { DEFAULT_PG_SCHEMA } from '../../src/store/postgres/open.js';
import { pruneSagas } from '../../src/store/prune.js';
import { openKeptDatabase } from '../../src/store/sqlite/kept-database.js';
import { BACKENDS } from '../support/backends.js';
import type { RunResult } from '../support/cli.js';
import {
  checkout, checkoutArgs, closeReaders, expectHealthy, explain, logOf, newShop, readState, saga, sagaStatus, startIn, verify, waitFor, type Shop, type ShopState,
} from './helpers.js';

afterAll(() => closeReaders());

const isPostgres = (db: string) => db.startsWith('postgres');

/** Runs DDL on the shop's database, as an operator would (SQLite text, PostgreSQL text). */
async function execOn(shop: Shop, sqlite: string, postgres: string): Promise<void> {
  if (isPostgres(shop.db)) {
    const client = new pg.Client({ connectionString: shop.db, options: `-c search_path=${DEFAULT_PG_SCHEMA}` });
    await client.connect();
    try {
      await client.query(postgres);
    } finally {
      await client.end();
    }
    return;
  }
  const db = openKeptDatabase(shop.db, { fileMustExist: true });
  try {
    db.exec(sqlite);
  } finally {
    db.close();
  }
}

/** The payment provider refuses every refund until `refundsBack`: a real cause of a stuck saga. */
const refundsDown = (shop: Shop) =>
  execOn(
    shop,
    `CREATE TRIGGER refunds_down BEFORE INSERT ON provider_ledger WHEN NEW.kind = 'refund' BEGIN SELECT RAISE(ABORT, 'refunds are down'); END;`,
    `CREATE FUNCTION refunds_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.kind = 'refund' THEN RAISE EXCEPTION 'refunds are down'; END IF; RETURN NEW; END $$;
     CREATE TRIGGER refunds_down BEFORE INSERT ON provider_ledger FOR EACH ROW EXECUTE FUNCTION refunds_down();`,
  );
const refundsBack = (shop: Shop) => execOn(shop, 'DROP TRIGGER refunds_down;', 'DROP TRIGGER refunds_down ON provider_ledger; DROP FUNCTION refunds_down();');

function json<T>(run: RunResult): T {
  return JSON.parse(run.stdout) as T;
}

interface RetryJson { sagaId: string; from: string; direction: string; status: string; error: string | null }
interface ErrorJson { error: { code: string; message: string } }

/** Business rows, which a prune must leave exactly as they were. */
function businessRows(state: ShopState) {
  const { sagas: _sagas, events: _events, ...rows } = state;
  return rows;
}

describe.concurrent.each(BACKENDS)('saga retry on $name', (backend) => {
  it('retries a stuck saga\'s compensation with a fresh budget, by its short id, and touches no other saga', async () => {
    const shop = await newShop(backend);
    const first = await checkout(shop, { failAt: 'shipping', failCompensation: 'payment' });
    const second = await checkout(shop, { failAt: 'shipping', failCompensation: 'payment' });
    expect([first.code, second.code], explain(second)).toEqual([4, 4]);
    const id = first.report!.sagaId;

    const r = await saga(shop, ['retry', id.slice(-8)]);
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout.trim()).toBe(`saga ${id}  stuck -> rolled back -> compensated`);
    const state = await expectHealthy(shop, { allowStuck: true });
    expect(sagaStatus(state, id)).toBe('compensated');
    expect(sagaStatus(state, second.report!.sagaId)).toBe('stuck');
    // Taken over as recovery takes a saga over: a stuck saga has no owner.
    const shown = json<{ takeOvers: { reason: string; status: string }[] }>(await saga(shop, ['show', id, '--json']));
    expect(shown.takeOvers).toMatchObject([{ reason: 'no-owner', status: 'stuck' }]);
  });

  it('exits 4 while the compensation still fails (each retry a fresh budget), 0 once the cause is fixed', async () => {
    const shop = await newShop(backend);
    await refundsDown(shop);
    const stuck = await checkout(shop, { failAt: 'shipping' });
    expect(stuck.code, explain(stuck)).toBe(4);
    const id = stuck.report!.sagaId;
    const refundAttempts = async () => (await readState(shop)).events.filter((e) => e.saga_id === id && e.step === 'payment' && e.phase === 'compensation' && e.event === 'started').length;
    const before = await refundAttempts();

    const again = await saga(shop, ['retry', id, '--json']);
    expect(again.code, explain(again)).toBe(4);
    expect(json<RetryJson>(again)).toMatchObject({ sagaId: id, from: 'stuck', direction: 'backward', status: 'stuck' });
    expect(await refundAttempts()).toBe(2 * before);
    const text = await saga(shop, ['retry', id]);
    expect(text.code).toBe(4);
    expect(text.stdout).toContain(`saga retry ${id}\` again`);

    await refundsBack(shop);
    const fixed = await saga(shop, ['retry', id, '--json']);
    expect(fixed.code, explain(fixed)).toBe(0);
    expect(json<RetryJson>(fixed)).toMatchObject({ sagaId: id, status: 'compensated' });
    const state = await expectHealthy(shop);
    expect(state.ledger.map((l) => l.kind).sort()).toEqual(['charge', 'refund']);
  });

  it('refuses a saga a live owner drives (saga_busy), one that ended (saga_ended), and bad ids, each with exit 2', async () => {
    const shop = await newShop(backend);
    const done = await checkout(shop);
    const ended = await saga(shop, ['retry', done.report!.sagaId, '--json']);
    expect(ended.code).toBe(2);
    expect(json<ErrorJson>(ended).error.code).toBe('saga_ended');

    const slow = startIn(shop, checkoutArgs({ failAt: 'payment', failMode: 'transient', failTimes: 50 }), { SAGA_RETRY_BASE_MS: '4000' });
    try {
      await waitFor('a retrying line', () => logOf(shop).some((l) => l.event === 'retrying'));
      const running = (await readState(shop)).sagas.find((s) => s.status === 'running')!.saga_id;
      const busy = await saga(shop, ['retry', running]);
      expect(busy.code).toBe(2);
      expect(busy.stderr).toMatch(/is running and its owner is alive .*saga cancel/);
      expect((await readState(shop)).sagas.find((s) => s.saga_id === running)?.status).toBe('running');
      const ambiguous = await saga(shop, ['retry', running.slice(0, 6), '--json']);
      expect(ambiguous.code).toBe(2);
      expect(json<ErrorJson>(ambiguous).error.code).toBe('ambiguous_saga_id');
    } finally {
      slow.child.kill('SIGKILL');
      await slow.done;
    }
    const unknown = await saga(shop, ['retry', '00000000-0000-0000-0000-000000000000']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^saga: no saga 00000000-0000-0000-0000-000000000000 in /);
  });
});

interface PruneJson {
  dryRun: boolean;
  endedBefore: string;
  sagas: { completed: number; compensated: number };
  events: number;
  takeOvers: number;
  batches: number;
  vacuumed: boolean;
}

describe.concurrent.each(BACKENDS)('saga prune on $name', (backend) => {
  it('deletes the whole log of terminal sagas only, keeps every business row, and verify stays clean', async () => {
    const shop = await newShop(backend);
    expect((await checkout(shop)).code).toBe(0);
    expect((await checkout(shop)).code).toBe(0);
    expect((await checkout(shop, { failAt: 'order' })).code).toBe(3);
    // Crashed, then recovered: a take-over row goes with its log.
    expect((await checkout(shop, {}, { SAGA_CRASH_AT: 'action:order:before' })).signal).toBe('SIGKILL');
    expect((await saga(shop, ['recover'])).code).toBe(0);
    const stuck = await checkout(shop, { failAt: 'shipping', failCompensation: 'order' });
    expect(stuck.code).toBe(4);
    const before = await readState(shop);

    // Nothing ended an hour ago.
    const young = await saga(shop, ['prune', '--older-than', '1h']);
    expect(young.code, explain(young)).toBe(0);
    expect(young.stdout).toMatch(/^nothing to prune: no saga in .* ended before /);

    const dry = await saga(shop, ['prune', '--older-than', '0s', '--dry-run', '--json']);
    expect(dry.code, explain(dry)).toBe(0);
    expect(json<PruneJson>(dry)).toMatchObject({ dryRun: true, sagas: { completed: 3, compensated: 1 }, takeOvers: 1, batches: 0 });
    expect(await readState(shop)).toEqual(before);

    const pruned = await saga(shop, ['prune', '--older-than', '0s', '--json']);
    expect(pruned.code, explain(pruned)).toBe(0);
    const report = json<PruneJson>(pruned);
    expect(report).toMatchObject({ dryRun: false, sagas: { completed: 3, compensated: 1 }, takeOvers: 1, batches: 1, events: json<PruneJson>(dry).events });
    const after = await readState(shop);
    // Only the stuck saga's log is left, whole; every business row is as it was.
    expect(after.sagas.map((s) => s.saga_id)).toEqual([stuck.report!.sagaId]);
    expect(after.events).toEqual(before.events.filter((e) => e.saga_id === stuck.report!.sagaId));
    expect(businessRows(after)).toEqual(businessRows(before));
    expect(logOf(shop).filter((l) => l.event === 'pruned')).toMatchObject([{ sagas: 4, events: report.events }]);

    const checked = await verify(shop);
    expect(checked.violations).toEqual([]);
    expect(json<{ pruned: { sagas: number } }>(checked).pruned.sagas).toBe(4);
    const text = await saga(shop, ['verify']);
    expect(text.code, explain(text)).toBe(0);
    expect(text.stdout).toMatch(/the log of 4 pruned saga\(s\), which ended before .* is gone: their rows were checked against each other and the provider, not against their log/);
  });

  it('after a prune, verify still catches a pruned saga whose rows are half done (pruned-saga-half-done)', async () => {
    const shop = await newShop(backend);
    const done = await checkout(shop);
    expect((await saga(shop, ['prune', '--older-than', '0s'])).code).toBe(0);
    expect((await verify(shop)).violations).toEqual([]);
    // Its stock handed back behind its back: conserved, but no longer the stock of a completed saga.
    const id = done.report!.sagaId;
    await execOn(
      shop,
      `UPDATE inventory SET stock = stock + 1 WHERE product_id = 101; UPDATE reservations SET status = 'released' WHERE saga_id = '${id}';`,
      `UPDATE inventory SET stock = stock + 1 WHERE product_id = 101; UPDATE reservations SET status = 'released' WHERE saga_id = '${id}';`,
    );
    const checked = await verify(shop);
    expect(checked.code).toBe(5);
    expect(checked.violations.map((v) => v.invariant)).toEqual(['pruned-saga-half-done']);
    expect(checked.violations[0]!.message).toContain(id);
  });

  it('works in batches of the size given, each whole', async () => {
    const shop = await newShop(backend);
    for (let i = 0; i < 5; i++) expect((await checkout(shop)).code).toBe(0);
    const app = await openApp(resolveGlobals({ flags: { db: shop.db }, env: {}, dotenv: {} }), 'never');
    try {
      const report = await pruneSagas(app.db, { endedBefore: Date.now() + 1, now: Date.now(), dryRun: false, batchSize: 2 });
      expect(report).toMatchObject({ sagas: { completed: 5, compensated: 0 }, batches: 3 });
      expect((await app.db.all<{ sagas: number }>('SELECT sagas FROM saga_prunes ORDER BY prune_id')).map((r) => Number(r.sagas))).toEqual([2, 2, 1]);
    } finally {
      await app.close();
    }
    expect((await readState(shop)).events).toEqual([]);
    expect((await verify(shop)).violations).toEqual([]);
  });

  it('under concurrent checkouts: never a saga in flight, never part of a log, and verify stays clean', async () => {
    const shop = await newShop(backend);
    // Two sagas held in flight (a back-off of 30 s or more) for as long as the test wants them.
    const held = Array.from({ length: 2 }, () => startIn(shop, checkoutArgs({ failAt: 'payment', failMode: 'transient', failTimes: 50 }), { SAGA_RETRY_BASE_MS: '60000' }));
    const quick: ReturnType<typeof startIn>[] = [];
    const prunes: RunResult[] = [];
    try {
      await waitFor('two retrying sagas', () => logOf(shop).filter((l) => l.event === 'retrying').length >= 2);
      // Quick checkouts start, run and end while the prunes run.
      quick.push(...Array.from({ length: 3 }, () => startIn(shop, checkoutArgs())));
      for (let i = 0; i < 4; i++) prunes.push(await saga(shop, ['prune', '--older-than', '0s', '--json']));
      await Promise.all(quick.map((q) => q.done));
      expect((await readState(shop)).sagas.filter((s) => s.status === 'running')).toHaveLength(2);
      for (const s of (await readState(shop)).sagas.filter((x) => x.status === 'running')) expect((await saga(shop, ['cancel', s.saga_id])).code).toBe(0);
    } catch (err) {
      for (const r of [...held, ...quick]) r.child.kill('SIGKILL');
      throw err;
    }
    for (const p of prunes) expect(p.code, explain(p)).toBe(0);
    // No checkout lost its saga under it: the quick ones completed, the held ones were cancelled.
    for (const q of await Promise.all(quick.map((r) => r.done))) expect(q.code, explain(q)).toBe(0);
    for (const h of await Promise.all(held.map((r) => r.done))) expect(h.code, explain(h)).toBe(3);
    const pruned = prunes.reduce((n, p) => n + json<PruneJson>(p).sagas.completed + json<PruneJson>(p).sagas.compensated, 0);
    const state = await readState(shop);
    expect(state.sagas.length + pruned).toBe(5);
    // Every log left is whole: no event lost its saga, and each saga kept has its first record.
    for (const e of state.events) expect(state.sagas.some((s) => s.saga_id === e.saga_id)).toBe(true);
    for (const s of state.sagas) expect(state.events.some((e) => e.saga_id === s.saga_id && e.step === 'inventory' && e.phase === 'action' && e.event === 'succeeded')).toBe(true);
    expect((await verify(shop)).violations).toEqual([]);
    expect(state.orders.map((o) => o.status)).toEqual(Array(3).fill('confirmed'));
  });

  it('--vacuum gives the space back', async () => {
    const shop = await newShop(backend);
    expect((await saga(shop, ['bench', '--n', '400', '--concurrency', '8'])).code).toBe(0);
    const size = () => statSync(shop.db).size;
    const before = isPostgres(shop.db) ? 0 : size();
    const r = await saga(shop, ['prune', '--older-than', '0s', '--vacuum']);
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout).toMatch(/vacuumed the saga log of /);
    if (isPostgres(shop.db)) {
      await waitFor('saga_events vacuumed', async () => {
        const client = new pg.Client({ connectionString: shop.db });
        await client.connect();
        try {
          const row = (await client.query(`SELECT last_vacuum FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'saga_events'`, [DEFAULT_PG_SCHEMA])).rows[0] as { last_vacuum: Date | null } | undefined;
          return row?.last_vacuum !== null && row?.last_vacuum !== undefined;
        } finally {
          await client.end();
        }
      });
    } else {
      expect(size()).toBeLessThan(before / 2);
    }
    expect((await verify(shop)).violations).toEqual([]);
  });

  it('bad input: a bad duration, no --older-than, --vacuum with --dry-run: exit 2, one line, nothing deleted', async () => {
    const shop = await newShop(backend);
    expect((await checkout(shop)).code).toBe(0);
    const before = await readState(shop);
    for (const [args, says] of [
      [['prune', '--older-than', '3x'], /^saga: --older-than 3x is invalid: must be a whole number and a unit, d, h, m or s, such as 30d, 12h, 90m or 45s/],
      [['prune', '--older-than', '-1d'], /--older-than/],
      [['prune'], /required option '--older-than <duration>' not specified/],
      [['prune', '--older-than', '0s', '--dry-run', '--vacuum'], /--vacuum does nothing with --dry-run/],
    ] as const) {
      const r = await saga(shop, args);
      expect(r.code, explain(r)).toBe(2);
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(says)]);
    }
    expect(await readState(shop)).toEqual(before);
  });
});
