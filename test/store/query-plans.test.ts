import type Database from 'better-sqlite3';
import { openKeptDatabase } from '../../src/store/sqlite/kept-database.js';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listCommand } from '../../src/cli/commands/list.js';
import { showCommand } from '../../src/cli/commands/show.js';
import type { CommandContext } from '../../src/cli/context.js';
import { resolveGlobals } from '../../src/cli/settings.js';
import type { Sources } from '../../src/config.js';
import { runSaga, tempDir } from '../support/cli.js';

/**
 * `saga list` and `saga show` must stay fast with 100,000 sagas: they answer from indexes. This
 * runs the real commands in this process against a real SQLite file, records every statement
 * better-sqlite3 runs for them (SQL and parameters, whatever code path prepared it), and asks
 * SQLite for the plan of each. A plan that scans a table that grows with the history, or sorts in
 * a temporary B-tree, fails here (the benchmark measures the time).
 *
 * PostgreSQL is not checked: its planner chooses by statistics, and on a test-sized table a
 * sequential scan is the right plan, so its EXPLAIN says nothing about 100,000 sagas.
 */
interface Ran {
  readonly sql: string;
  readonly params: unknown[];
}

/** The tables that grow with every checkout: reads from them must go through an index. */
const GROWING = ['sagas', 'saga_events', 'orders', 'payments', 'shipments', 'reservations', 'provider_ledger'];

let recording: Ran[] | undefined;
const statementProto = (() => {
  const db = openKeptDatabase(':memory:');
  const proto = Object.getPrototypeOf(db.prepare('SELECT 1')) as Record<string, (...args: unknown[]) => unknown>;
  db.close();
  return proto;
})();
const originals = new Map<string, (...args: unknown[]) => unknown>();

beforeAll(() => {
  for (const method of ['all', 'get', 'run', 'iterate']) {
    const original = statementProto[method]!;
    originals.set(method, original);
    statementProto[method] = function (this: { source: string }, ...args: unknown[]) {
      recording?.push({ sql: this.source, params: args });
      return original.apply(this, args);
    };
  }
});

afterAll(() => {
  for (const [method, original] of originals) statementProto[method] = original;
});

/** What a command ran: every statement better-sqlite3 executed while it ran. */
async function recordCommand(run: () => Promise<number>): Promise<{ code: number; ran: Ran[] }> {
  recording = [];
  try {
    const code = await run();
    return { code, ran: recording };
  } finally {
    recording = undefined;
  }
}

function contextFor(dbPath: string, dir: string): { ctx: CommandContext; out: () => string } {
  let out = '';
  const stdout = new Writable({ write: (chunk, _enc, done) => ((out += String(chunk)), done()) });
  const stderr = new Writable({ write: (_chunk, _enc, done) => done() });
  const sources: Sources = { flags: { db: dbPath, logFile: join(dir, 'saga.log') }, env: {}, dotenv: {} };
  return { ctx: { sources, settings: resolveGlobals(sources), stdout, stderr, color: false, colorErr: false }, out: () => out };
}

/** The statements that read a growing table, each with SQLite's plan for it with its own parameters. */
function plansOf(db: Database.Database, ran: Ran[]): { sql: string; plan: string }[] {
  const reads = ran.filter((r) => /^\s*SELECT\b/i.test(r.sql) && GROWING.some((t) => new RegExp(`\\b(FROM|JOIN)\\s+${t}\\b`, 'i').test(r.sql)));
  const unique = [...new Map(reads.map((r) => [r.sql, r])).values()];
  return unique.map((r) => ({
    sql: r.sql,
    plan: (db.prepare(`EXPLAIN QUERY PLAN ${r.sql}`).all(...(r.params as unknown[])) as { detail: string }[]).map((p) => p.detail).join(' | '),
  }));
}

function planText(plans: { sql: string; plan: string }[]): string {
  return plans.map((p) => `${p.sql.replace(/\s+/g, ' ')}\n  plan: ${p.plan}`).join('\n');
}

/**
 * Index use: no temporary sort, and no scan of a growing table except walking an index in its
 * order under a LIMIT (the newest N sagas), which stops after N rows.
 */
function expectIndexed({ sql, plan }: { sql: string; plan: string }): void {
  const why = `${sql}\n  plan: ${plan}`;
  expect(plan, why).not.toMatch(/TEMP B-TREE/);
  for (const table of GROWING) {
    const scan = new RegExp(`\\bSCAN ${table}\\b(.*?)(\\||$)`).exec(plan);
    if (scan === null) continue;
    expect(scan[1], `full scan of ${table}: ${why}`).toMatch(/USING (COVERING )?INDEX/);
    expect(sql, `index walk without LIMIT reads all of ${table}: ${why}`).toMatch(/ORDER BY[\s\S]*LIMIT \?/i);
  }
}

describe('the queries `saga list` and `saga show` run use indexes (SQLite)', () => {
  const dir = tempDir('saga-test-');
  const dbPath = join(dir, 'saga.db');
  let db: Database.Database;
  let sagaIds: string[];

  beforeAll(async () => {
    // Real rows from the real CLI: a completed, a rolled-back and a stuck checkout.
    for (const args of [[], ['--fail-at', 'order'], ['--fail-at', 'shipping', '--fail-compensation', 'payment']]) {
      const r = await runSaga(['checkout', '--product', '101', '--qty', '1', '--json', ...args], { cwd: dir, env: { SAGA_DB: dbPath } });
      expect([0, 3, 4], r.stderr).toContain(r.code);
    }
    db = openKeptDatabase(dbPath, { readonly: true, fileMustExist: true });
    sagaIds = (db.prepare('SELECT saga_id FROM sagas ORDER BY created_at').all() as { saga_id: string }[]).map((r) => r.saga_id);
    expect(sagaIds).toHaveLength(3);
  }, 60_000);

  afterAll(() => {
    db?.close();
  });

  const list = (flags: Parameters<typeof listCommand>[0]) => {
    const { ctx, out } = contextFor(dbPath, dir);
    return recordCommand(() => listCommand(flags, ctx)).then((r) => ({ ...r, out: out() }));
  };
  const show = (sagaId: string) => {
    const { ctx, out } = contextFor(dbPath, dir);
    return recordCommand(() => showCommand({ sagaId }, ctx)).then((r) => ({ ...r, out: out() }));
  };

  it('saga list: newest first from sagas_created, no sort', async () => {
    const { code, ran, out } = await list({});
    expect(code).toBe(0);
    for (const id of sagaIds) expect(out).toContain(id);
    const plans = plansOf(db, ran);
    expect(plans.map((p) => p.plan), planText(plans)).toEqual([expect.stringMatching(/SCAN sagas USING INDEX sagas_created/)]);
    plans.forEach(expectIndexed);
  });

  it('saga list --status stuck: from sagas_status_created, no sort', async () => {
    const { code, ran, out } = await list({ status: 'stuck' });
    expect(code).toBe(0);
    expect(out).toContain(sagaIds[2]);
    const plans = plansOf(db, ran);
    expect(plans.map((p) => p.plan), planText(plans)).toEqual([expect.stringMatching(/SEARCH sagas USING INDEX sagas_status_created \(status=\?\)/)]);
    plans.forEach(expectIndexed);
  });

  it('saga show <id>: the saga, its events and its business rows, each by saga_id', async () => {
    const { code, ran, out } = await show(sagaIds[0]!);
    expect(code).toBe(0);
    expect(out).toContain(`saga ${sagaIds[0]}`);
    const plans = plansOf(db, ran);
    const searched = plans.map((p) => /SEARCH (\w+) USING (?:COVERING )?INDEX \w+ \(saga_id=\?\)/.exec(p.plan)?.[1]).sort();
    expect(searched, planText(plans)).toEqual(['orders', 'payments', 'reservations', 'saga_events', 'sagas', 'shipments']);
    // A full id is found by the first lookup: the short-id fallback does not run.
    expect(plans.filter((p) => /LIKE/i.test(p.sql))).toEqual([]);
    plans.forEach(expectIndexed);
  });

  it('saga show <short id>: the lookup by the end of the id, then the same reads', async () => {
    const short = sagaIds[1]!.slice(-8);
    const { code, ran, out } = await show(short);
    expect(code).toBe(0);
    expect(out).toContain(`saga ${sagaIds[1]}`);
    const plans = plansOf(db, ran);
    const [lookup, ...others] = [...plans.filter((p) => /LIKE/i.test(p.sql)), ...plans.filter((p) => !/LIKE/i.test(p.sql))];
    expect(lookup?.sql, 'the short-id lookup ran').toMatch(/LIKE/i);
    // Known and accepted for now: an id's end cannot be looked up in a B-tree of ids, so this
    // fallback reads a whole index holding the ids (the primary key's, or sagas_created's, which
    // SQLite picks once the row is wider: both hold ids, never the rows), and only when no id
    // matches exactly. Pinned here so a plan that reads the table fails.
    expect(lookup!.plan).toMatch(/^SCAN sagas USING COVERING INDEX (sqlite_autoindex_sagas_1|sagas_created)$/);
    others.forEach(expectIndexed);
  });
});
