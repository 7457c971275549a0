import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { createPostgresDatabase, withPg } from '../support/pg-database.js';
import { readLog, runSaga, startSaga, tempDir } from '../support/cli.js';

/** What only PostgreSQL has: URLs, DATABASE_URL, the watch daemon sharing work across processes. */
const adminUrl = inject('pgAdminUrl');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function fresh() {
  const dir = tempDir();
  dirs.push(dir);
  return { dir, url: await createPostgresDatabase(adminUrl) };
}

async function until(check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.runIf(adminUrl !== '')('saga on PostgreSQL', { concurrent: true }, () => {
  it('DATABASE_URL selects PostgreSQL; nothing is written to the working directory but saga.log', async () => {
    const { dir, url } = await fresh();
    const r = await runSaga(['checkout', '--product', '101', '--qty', '2', '--json'], { cwd: dir, env: { DATABASE_URL: url } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('created it and loaded the demo catalog');
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'completed', order: { status: 'confirmed' }, payment: { status: 'charged' }, shipment: { status: 'scheduled' } });
    const rolledBack = await runSaga(['checkout', '--product', '101', '--qty', '1', '--fail-at', 'order'], { cwd: dir, env: { DATABASE_URL: url } });
    expect(rolledBack.code).toBe(3);
    const inventory = JSON.parse((await runSaga(['inventory', '--json', '--db', url], { cwd: dir })).stdout) as { productId: number; available: number; sold: number }[];
    expect(inventory.find((p) => p.productId === 101)).toMatchObject({ available: 23, sold: 2 });
    expect((await runSaga(['verify', '--db', url], { cwd: dir })).code).toBe(0);
    expect(readdirSync(dir)).toEqual(['saga.log']);
  });

  it('an unreachable server is one line, exit 1, and never prints the password', async () => {
    const { dir } = await fresh();
    const r = await runSaga(['checkout', '--product', '101', '--qty', '1', '--db', 'postgres://saga:hunter2@127.0.0.1:1/nope'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/cannot connect to postgres:\/\/saga:\*\*\*@127\.0\.0\.1:1\/nope/);
    expect(r.stderr).not.toContain('hunter2');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a role without the privilege to create saga\'s tables is the database\'s trouble: one line, exit 1, code database_failed', async () => {
    const { dir, url } = await fresh();
    const role = `limited_${Math.random().toString(36).slice(2, 10)}`;
    await withPg(adminUrl, async (c) => {
      await c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'sesame-open'`);
    });
    try {
      const limited = new URL(url);
      limited.username = role;
      limited.password = 'sesame-open';
      const r = await runSaga(['seed', '--json', '--db', limited.href], { cwd: dir });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^saga: the database failed \(permission denied for database .* \(SQLSTATE 42501\)\)/);
      expect(r.stderr).not.toContain('sesame-open');
      expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'database_failed' }, exitCode: 1 });
    } finally {
      await withPg(adminUrl, async (c) => {
        await c.query(`DROP OWNED BY ${role}`).catch(() => undefined);
      });
      await withPg(url, async (c) => {
        await c.query(`DROP OWNED BY ${role}`);
      });
      await withPg(adminUrl, async (c) => {
        await c.query(`DROP ROLE ${role}`);
      });
    }
  });

  it('recover --watch takes over a crashed checkout at once, then stops on SIGTERM with exit 0', async () => {
    const { dir, url } = await fresh();
    const opts = { cwd: dir, env: { SAGA_DB: url } };
    expect((await runSaga(['seed'], opts)).code).toBe(0);
    const watcher = startSaga(['recover', '--watch', '--interval', '100'], opts);
    const crashed = await runSaga(['checkout', '--product', '101', '--qty', '1', '--fail-at', 'payment', '--fail-mode', 'crash'], opts);
    expect(crashed.signal).toBe('SIGKILL');
    const log = join(dir, 'saga.log');
    await until(() => readLog(log).some((l) => l.event === 'succeeded' && l.step === 'shipping'));
    watcher.child.kill('SIGTERM');
    const stopped = await watcher.done;
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toMatch(/running\s+resumed forward -> completed/);
    expect(readLog(log).some((l) => l.event === 'stopped')).toBe(true);
    const list = JSON.parse((await runSaga(['list', '--json'], opts)).stdout) as { status: string }[];
    expect(list.map((s) => s.status)).toEqual(['completed']);
    expect((await runSaga(['verify'], opts)).code).toBe(0);
  });

  it('several recover --watch daemons share abandoned sagas and never drive one twice', async () => {
    const { dir, url } = await fresh();
    const opts = { cwd: dir, env: { SAGA_DB: url } };
    expect((await runSaga(['seed'], opts)).code).toBe(0);
    const crashes = await Promise.all(
      ['action:payment:after-effect', 'action:order:after-effect', 'compensation:inventory:before', 'action:payment:before', 'compensation:payment:after-effect', 'action:shipping:after-effect'].map((point) =>
        // --fail-at shipping makes the compensations run, so their crash points are reached too.
        runSaga(['checkout', '--product', '102', '--qty', '1', '--fail-at', 'shipping'], { ...opts, env: { ...opts.env, SAGA_CRASH_AT: point } }),
      ),
    );
    expect(crashes.filter((c) => c.signal === 'SIGKILL').length).toBeGreaterThanOrEqual(5);
    const watchers = [1, 2, 3].map(() => startSaga(['recover', '--watch', '--interval', '50', '--json'], opts));
    await until(() => readLog(join(dir, 'saga.log')).filter((l) => l.event === 'taken-over').length >= crashes.filter((c) => c.signal === 'SIGKILL').length);
    await new Promise((r) => setTimeout(r, 500));
    watchers.forEach((w) => w.child.kill('SIGTERM'));
    const outs = await Promise.all(watchers.map((w) => w.done));
    outs.forEach((o) => expect(o.code).toBe(0));
    const takeovers = readLog(join(dir, 'saga.log')).filter((l) => l.event === 'taken-over').map((l) => l.sagaId);
    expect(new Set(takeovers).size).toBe(takeovers.length);
    const list = JSON.parse((await runSaga(['list', '--json'], opts)).stdout) as { status: string }[];
    expect(list.every((s) => s.status === 'completed' || s.status === 'compensated')).toBe(true);
    expect((await runSaga(['verify'], opts)).code).toBe(0);
  });
});

/** The URL with a password (the test server trusts every connection, so any password works). */
function withPassword(url: string, password = 'hunter2'): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

function inventoryRow(stdout: string, productId: number) {
  return (JSON.parse(stdout) as { productId: number; available: number; sold: number }[]).find((p) => p.productId === productId);
}

describe.runIf(adminUrl !== '')('PostgreSQL first runs', { concurrent: true }, () => {
  it('8 seeds and 4 checkouts at once on a new database: every one exits 0, the schema is made once, stock adds up', async () => {
    const { dir, url } = await fresh();
    // To make them truly meet, this test holds the migration lock until all 12 wait for it.
    await withPg(url, async (holder) => {
      await holder.query(`SELECT pg_advisory_lock(74112024, hashtext('saga'))`);
      const seeds = Array.from({ length: 8 }, () => startSaga(['seed', '--json', '--db', url], { cwd: dir }));
      const checkouts = Array.from({ length: 4 }, () => startSaga(['checkout', '--product', '101', '--qty', '1', '--db', url], { cwd: dir }));
      await until(async () => (await holder.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)).rows[0].n === 12, 60_000);
      await holder.query(`SELECT pg_advisory_unlock(74112024, hashtext('saga'))`);
      const seedRuns = await Promise.all(seeds.map((s) => s.done));
      const checkoutRuns = await Promise.all(checkouts.map((c) => c.done));
      for (const r of [...seedRuns, ...checkoutRuns]) expect(r.code, r.stderr).toBe(0);
      const seedResults = seedRuns.map((r) => (JSON.parse(r.stdout) as { result: string }).result);
      const createdByCheckout = checkoutRuns.filter((r) => r.stderr.includes('created it')).length;
      expect(seedResults.filter((r) => r === 'created').length + createdByCheckout).toBe(1);
      expect(seedResults.every((r) => r === 'created' || r === 'unchanged')).toBe(true);
    });
    const inv = await runSaga(['inventory', '--json', '--db', url], { cwd: dir });
    expect(inventoryRow(inv.stdout, 101)).toMatchObject({ available: 25 - 4, sold: 4 });
    expect((await runSaga(['verify', '--db', url], { cwd: dir })).code).toBe(0);
  });
});

describe.runIf(adminUrl !== '')('PostgreSQL: saga keeps to a schema of its own', { concurrent: true }, () => {
  it("an application's own orders and products tables in public are never touched", async () => {
    const { dir, url } = await fresh();
    // Its database's search_path names only public, as an application's often does.
    const name = new URL(url).pathname.slice(1);
    await withPg(url, (c) => c.query(`ALTER DATABASE ${name} SET search_path = public; CREATE TABLE public.orders (id SERIAL PRIMARY KEY, note TEXT NOT NULL); INSERT INTO public.orders (note) VALUES ('the app''s order'); CREATE TABLE public.products (sku TEXT)`));
    expect((await runSaga(['seed', '--db', url], { cwd: dir })).code).toBe(0);
    const r = await runSaga(['checkout', '--product', '101', '--qty', '2', '--db', url], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect((await runSaga(['verify', '--db', url], { cwd: dir })).code).toBe(0);
    await withPg(url, async (c) => {
      expect((await c.query('SELECT id, note FROM public.orders')).rows).toEqual([{ id: 1, note: "the app's order" }]);
      expect((await c.query('SELECT count(*)::int AS n FROM public.products')).rows[0].n).toBe(0);
      expect((await c.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`)).rows.map((t) => t.table_name)).toEqual(['orders', 'products']);
      expect((await c.query('SELECT count(*)::int AS n FROM saga.orders')).rows[0].n).toBe(1);
    });
  });

  it('tables an older saga left in public are not hidden behind a new schema: one line, exit 1, nothing created', async () => {
    const { dir, url } = await fresh();
    // An older saga kept everything in public: here, the same tables made with SAGA_PG_SCHEMA=public.
    const old = { cwd: dir, env: { SAGA_DB: url, SAGA_PG_SCHEMA: 'public' } };
    expect((await runSaga(['checkout', '--product', '101', '--qty', '1'], old)).code).toBe(0);
    const r = await runSaga(['checkout', '--product', '101', '--qty', '1', '--db', url], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/saga's tables from an older version in schema public: set SAGA_PG_SCHEMA=public/);
    await withPg(url, async (c) => expect((await c.query(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'saga'`)).rows[0].n).toBe(0));
    expect((await runSaga(['list', '--json'], old)).stdout).toContain('"status":"completed"');
  });

  it("a URL's own options cannot move saga's tables out of its schema", async () => {
    const { dir, url } = await fresh();
    const withOptions = new URL(url);
    withOptions.searchParams.set('options', '-c search_path=public');
    expect((await runSaga(['checkout', '--product', '101', '--qty', '1', '--db', withOptions.toString()], { cwd: dir })).code).toBe(0);
    await withPg(url, async (c) => {
      expect((await c.query(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public'`)).rows[0].n).toBe(0);
      expect((await c.query('SELECT count(*)::int AS n FROM saga.sagas')).rows[0].n).toBe(1);
    });
  });

  it("a schema that exists with another program's tables is refused in one line, and left as it was", async () => {
    const { dir, url } = await fresh();
    await withPg(url, (c) => c.query('CREATE SCHEMA saga; CREATE TABLE saga.things (x INT)'));
    for (const args of [['seed'], ['checkout', '--product', '101', '--qty', '1'], ['list']]) {
      const r = await runSaga([...args, '--db', url], { cwd: dir });
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^saga: schema saga in postgres:\/\/\S+ holds another program's tables \(no saga bookkeeping\): set SAGA_PG_SCHEMA to another schema/);
    }
    await withPg(url, async (c) => {
      expect((await c.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'saga'`)).rows).toEqual([{ table_name: 'things' }]);
    });
    // Another schema in the same database is fine.
    expect((await runSaga(['checkout', '--product', '101', '--qty', '1', '--db', url], { cwd: dir, env: { SAGA_PG_SCHEMA: 'saga_shop' } })).code).toBe(0);
  });

  it('two schemas in one database are independent: neither waits for the other, each has its own stock', async () => {
    const { dir, url } = await fresh();
    const a = { cwd: dir, env: { SAGA_DB: url, SAGA_PG_SCHEMA: 'shop_a' } };
    const b = { cwd: dir, env: { SAGA_DB: url, SAGA_PG_SCHEMA: 'shop_b' } };
    // Another process (this test) holds shop_a's migration lock: shop_b must not wait for it.
    await withPg(url, async (holder) => {
      await holder.query(`SELECT pg_advisory_lock(74112024, hashtext('shop_a'))`);
      const seedB = await runSaga(['seed'], b);
      expect(seedB.code, seedB.stderr).toBe(0);
      const waitingA = startSaga(['seed', '--json'], a);
      await until(async () => (await holder.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)).rows[0].n === 1);
      await holder.query(`SELECT pg_advisory_unlock(74112024, hashtext('shop_a'))`);
      const seedA = await waitingA.done;
      expect(seedA.code, seedA.stderr).toBe(0);
      expect(JSON.parse(seedA.stdout)).toMatchObject({ result: 'created' });
    });
    await Promise.all([
      runSaga(['checkout', '--product', '101', '--qty', '2'], a).then((r) => expect(r.code, r.stderr).toBe(0)),
      runSaga(['checkout', '--product', '101', '--qty', '1'], b).then((r) => expect(r.code, r.stderr).toBe(0)),
    ]);
    expect(inventoryRow((await runSaga(['inventory', '--json'], a)).stdout, 101)).toMatchObject({ available: 23, sold: 2 });
    expect(inventoryRow((await runSaga(['inventory', '--json'], b)).stdout, 101)).toMatchObject({ available: 24, sold: 1 });
    for (const opts of [a, b]) {
      expect((await runSaga(['verify'], opts)).code).toBe(0);
      expect(JSON.parse((await runSaga(['list', '--json'], opts)).stdout)).toHaveLength(1);
    }
    const bad = await runSaga(['list'], { cwd: dir, env: { SAGA_DB: url, SAGA_PG_SCHEMA: 'Shop-A' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/SAGA_PG_SCHEMA=Shop-A is not a usable schema name/);
  });
});

describe.runIf(adminUrl !== '')('PostgreSQL: the database failing is not a bug', { concurrent: true }, () => {
  /**
   * Runs a checkout that blocks on a row the test holds, then cuts the database away from it the
   * way a stopped server would: its connections are terminated and new ones refused. Returns the
   * checkout's result once the database is back.
   */
  async function checkoutCutOff(url: string, dir: string, lockRow: string) {
    const name = new URL(url).pathname.slice(1);
    let result: Awaited<ReturnType<typeof runSaga>> | undefined;
    await withPg(adminUrl, async (admin) => {
      await withPg(url, async (blocker) => {
        await blocker.query('BEGIN');
        await blocker.query(lockRow);
        const run = startSaga(['checkout', '--product', '101', '--qty', '1', '--db', url], { cwd: dir, env: { SAGA_LEASE_MS: '100' } });
        await until(async () => (await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`, [name])).rows[0].n > 0);
        await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
        await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> $2`, [name, (blocker as unknown as { processID: number }).processID]);
        result = await run.done;
        await blocker.query('ROLLBACK');
      });
      await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    });
    return result!;
  }

  it('a connection lost mid-checkout is one line naming the saga, exit 1; `saga recover` then finishes it', async () => {
    const { dir, url: plain } = await fresh();
    const url = withPassword(plain);
    expect((await runSaga(['seed', '--db', url], { cwd: dir })).code).toBe(0);
    // The payment step waits on the customer's provider account: the saga and its reservation are committed.
    const r = await checkoutCutOff(url, dir, 'SELECT * FROM saga.provider_accounts WHERE customer_id = 1 FOR UPDATE');
    expect(r.code).toBe(1);
    // Above it, the step lines the checkout logs as it goes; then one line about the failure.
    expect(r.stderr.split('\n').filter((l) => l.startsWith('saga:')), r.stderr).toHaveLength(1);
    expect(r.stderr).toMatch(/(^|\n)saga: the database failed during saga \S+ \(.*\): once it is back, `saga recover` will finish the saga\n$/);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    const sagaId = /during saga (\S+) /.exec(r.stderr)![1]!;
    expect(JSON.parse((await runSaga(['list', '--json', '--db', url], { cwd: dir })).stdout)).toMatchObject([{ sagaId, status: 'running' }]);
    const recovered = await runSaga(['recover', '--db', url], { cwd: dir });
    expect(recovered.code, recovered.stderr).toBe(0);
    expect(recovered.stdout).toContain(sagaId);
    expect(JSON.parse((await runSaga(['list', '--json', '--db', url], { cwd: dir })).stdout)).toMatchObject([{ sagaId, status: 'completed' }]);
    expect(inventoryRow((await runSaga(['inventory', '--json', '--db', url], { cwd: dir })).stdout, 101)).toMatchObject({ available: 24, sold: 1 });
    expect((await runSaga(['verify', '--db', url], { cwd: dir })).code).toBe(0);
    expect(r.stdout + r.stderr + readFileSync(join(dir, 'saga.log'), 'utf8')).not.toContain('hunter2');
  });

  it('a connection lost before the saga was first recorded says so, and nothing is left behind', async () => {
    const { dir, url } = await fresh();
    expect((await runSaga(['seed', '--db', url], { cwd: dir })).code).toBe(0);
    // The inventory step (committed with the saga's first record) waits on the stock row.
    const r = await checkoutCutOff(url, dir, 'SELECT * FROM saga.inventory WHERE product_id = 101 FOR UPDATE');
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('saga:')), r.stderr).toHaveLength(1);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(r.stderr).toMatch(/(^|\n)saga: the database failed as saga (\S+) was starting \(.*\): once it is back, `saga show \2` tells whether it was recorded; if it was, `saga recover` will finish it, if not, nothing was changed\n$/);
    expect(JSON.parse((await runSaga(['list', '--json', '--db', url], { cwd: dir })).stdout)).toEqual([]);
    expect((await runSaga(['verify', '--db', url], { cwd: dir })).code).toBe(0);
  });

  it('a database that refuses connections is one line, exit 1, without a stack', async () => {
    const { dir, url } = await fresh();
    expect((await runSaga(['seed', '--db', url], { cwd: dir })).code).toBe(0);
    const name = new URL(url).pathname.slice(1);
    await withPg(adminUrl, (admin) => admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`));
    try {
      const r = await runSaga(['list', '--db', url], { cwd: dir });
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    } finally {
      await withPg(adminUrl, (admin) => admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`));
    }
  });
});

describe.runIf(adminUrl !== '')('PostgreSQL URLs', { concurrent: true }, () => {
  it.each([
    { db: 'postgres://u:hunter2@localhost:notaport/db', says: /is not a valid URL/ },
    { db: 'mysql://u:hunter2@h/db', says: /saga does not support mysql:\/\/ databases; give a SQLite file path .* or a postgres:\/\/ \(postgresql:\/\/\) URL/ },
    { db: 'postgres://u:hunter2@h/db?sslmode=sometimes', says: /sslmode=sometimes in the database URL is not one of/ },
  ])('--db $db is bad input: exit 2, one line, no password anywhere, nothing written', async ({ db, says }) => {
    const { dir } = await fresh();
    for (const args of [['checkout', '--product', '101', '--qty', '1', '--db', db], ['seed', '--db', db]]) {
      const r = await runSaga(args, { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(says);
      expect(r.stdout + r.stderr).not.toContain('hunter2');
    }
    const viaEnv = await runSaga(['list'], { cwd: dir, env: { SAGA_DB: db } });
    expect(viaEnv.code).toBe(2);
    expect(viaEnv.stderr).not.toContain('hunter2');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('the password never reaches stdout, stderr or saga.log on the ordinary paths', async () => {
    const { dir, url } = await fresh();
    const db = withPassword(url);
    const runs = [
      await runSaga(['checkout', '--product', '101', '--qty', '1', '--db', db], { cwd: dir }),
      await runSaga(['seed', '--db', db], { cwd: dir }),
      await runSaga(['checkout', '--product', '101', '--qty', '1', '--fail-at', 'payment', '--db', db], { cwd: dir, env: { LOG_LEVEL: 'debug' } }),
      await runSaga(['bench', '--n', '5', '--db', db, '--json'], { cwd: dir }),
      await runSaga(['checkout', '--product', '101', '--qty', '1', '--db', withPassword(url.replace(/:\d+\//, ':1/'))], { cwd: dir }),
    ];
    expect(runs.map((r) => r.code)).toEqual([0, 0, 3, 0, 1]);
    expect(runs[0]!.stderr).toContain('postgres://saga:***@');
    for (const r of runs) expect(r.stdout + r.stderr).not.toContain('hunter2');
    expect(existsSync(join(dir, 'saga.log'))).toBe(true);
    expect(readFileSync(join(dir, 'saga.log'), 'utf8')).not.toContain('hunter2');
  });

  it('sslmode is libpq\'s, translated by saga: no warning block from pg; require against a server without TLS is one line', async () => {
    const { dir, url } = await fresh();
    const require = await runSaga(['seed', '--db', `${withPassword(url)}?sslmode=require`], { cwd: dir });
    expect(require.code).toBe(1);
    expect(require.stderr.trim().split('\n'), require.stderr).toHaveLength(1);
    expect(require.stderr).toMatch(/^saga: cannot connect to postgres:\/\/saga:\*\*\*@\S+\?sslmode=require: The server does not support SSL connections; check the URL/);
    // libpq's prefer: TLS when offered, else plain; disable: plain. Neither makes pg warn.
    for (const mode of ['prefer', 'disable', 'allow', 'prefer&uselibpqcompat=true']) {
      const r = await runSaga(['seed', '--db', `${url}?sslmode=${mode}`], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
    }
    const verify = await runSaga(['list', '--db', `${url}?sslmode=verify-full`], { cwd: dir });
    expect(verify.code).toBe(1);
    expect(verify.stderr.trim().split('\n')).toHaveLength(1);
    expect(verify.stderr).not.toMatch(/WARNING|Warning/);
  });
});
