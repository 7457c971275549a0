import { afterAll, describe, expect, it } from 'vitest';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { createPostgresDatabase } from '../support/pg-database.js';
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

async function until(check: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.runIf(adminUrl !== '')('saga on PostgreSQL', () => {
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
