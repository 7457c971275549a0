/**
 * The CLI says what it is doing while it does it: what the first Ctrl-C lets finish, a wait on
 * another process's SQLite lock, where an injected fault was set (and `none` to switch it off),
 * `.env` lines it cannot use, and `--quiet`. All through the real CLI.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openKeptDatabase } from '../../src/store/sqlite/kept-database.js';
import { BACKENDS } from '../support/backends.js';
import { readLog, runSaga, tempDir, type LogLine } from '../support/cli.js';
import { checkoutArgs, closeReaders, expectHealthy, explain, linesOf, newShop, readState, saga, startIn, waitFor, type Shop } from '../faults/helpers.js';

const children: ReturnType<typeof startIn>['child'][] = [];

// A command that never ended (a failing test) must not outlive the run.
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await closeReaders();
});

/** Starts a command and keeps what it has written to stderr so far, to look at while it runs. */
function running(shop: Shop, args: readonly string[], env?: Record<string, string>) {
  const started = startIn(shop, args, env);
  children.push(started.child);
  let stderr = '';
  started.child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return { ...started, stderr: () => stderr, alive: () => started.child.exitCode === null && started.child.signalCode === null };
}

const hasLine = (shop: Shop, where: (l: LogLine) => boolean) => async () => {
  const { sagas } = await readState(shop);
  return sagas.length === 1 && linesOf(shop, sagas[0]!.saga_id).some(where);
};

/** The saga.log events of a run, without ids and times, to compare two runs. */
const eventsOf = (shop: Shop) => readLog(shop.log).filter((l) => l.sagaId !== undefined).map((l) => `${l.level} ${l.step ?? '-'} ${l.phase ?? '-'} ${l.event} #${l.attempt ?? '-'}`);

describe.concurrent.each(BACKENDS)('the first Ctrl-C says at once what it lets finish, on $name', (backend) => {
  it('during a slow step: "finishing payment", while payment is still in flight; a second Ctrl-C stops', async () => {
    const shop = await newShop(backend);
    // The injected hang lasts the whole step timeout (60 s): nothing ends before the signals do.
    const run = running(shop, checkoutArgs({ failAt: 'payment', failMode: 'timeout', stepTimeout: 60_000 }));
    try {
      await waitFor('payment to start', hasLine(shop, (l) => l.step === 'payment' && l.event === 'started'));
      run.child.kill('SIGINT');
      await waitFor('the interrupted line', () => run.stderr().includes('saga: interrupted:'));
      expect(run.stderr()).toContain('saga: interrupted: finishing payment (at most 60 s), then rolling back; Ctrl-C again to stop now\n');
      // Said while the step is still running, not when it ends.
      expect(run.alive()).toBe(true);
      run.child.kill('SIGINT');
    } catch (err) {
      run.child.kill('SIGKILL');
      throw err;
    }
    const done = await run.done;
    expect(done.code, explain(done)).toBe(130);
    expect(done.stderr).toMatch(/SIGINT again: stopped at once/);
    expect(done.stderr.match(/saga: interrupted: finishing payment/g)).toHaveLength(1);
  });

  it('during a backoff: "not retrying payment; rolling back", then it rolls back', async () => {
    const shop = await newShop(backend);
    const run = running(shop, checkoutArgs({ failAt: 'payment', failMode: 'transient', failTimes: 50 }), { SAGA_RETRY_BASE_MS: '4000' });
    try {
      await waitFor('a retrying line', hasLine(shop, (l) => l.event === 'retrying'));
      run.child.kill('SIGTERM');
    } catch (err) {
      run.child.kill('SIGKILL');
      throw err;
    }
    const done = await run.done;
    expect(done.code, explain(done)).toBe(143);
    expect(done.stderr).toContain('saga: interrupted: not retrying payment; rolling back; SIGTERM again to stop now\n');
    const state = await expectHealthy(shop);
    expect(state.sagas.map((s) => s.status)).toEqual(['compensated']);
  });

  it('`saga recover --watch`: says it stops, exits 0', async () => {
    const shop = await newShop(backend);
    const run = running(shop, ['recover', '--watch', '--interval', '50']);
    try {
      await waitFor('the watcher to start', () => readLog(shop.log).some((l) => l.event === 'watching'));
      run.child.kill('SIGINT');
    } catch (err) {
      run.child.kill('SIGKILL');
      throw err;
    }
    const done = await run.done;
    expect(done.code, explain(done)).toBe(0);
    expect(done.stderr).toMatch(/^saga: interrupted: (stopping|finishing the saga being recovered, then stopping; Ctrl-C again to stop now)$/m);
  });

  it('`saga bench`: says it lets the checkouts in flight finish, then reports', async () => {
    const shop = await newShop(backend);
    const run = running(shop, ['bench', '--n', '1000000', '--concurrency', '4']);
    try {
      await waitFor('checkouts to run', () => readLog(shop.log).filter((l) => l.event === 'completed').length >= 5, 30_000);
      run.child.kill('SIGINT');
    } catch (err) {
      run.child.kill('SIGKILL');
      throw err;
    }
    const done = await run.done;
    expect(done.code, explain(done)).toBe(130);
    expect(done.stderr).toContain('saga: interrupted: starting no more checkouts; letting those in flight finish, then reporting; Ctrl-C again to stop now\n');
    expect(done.stdout).toMatch(/throughput/);
  });
});

describe('a checkout waiting for another process\'s SQLite write lock', () => {
  it('says after a moment that it waits and on what, then completes once the lock is released', async () => {
    const shop = await newShop(BACKENDS[0]!);
    // Another connection, as another process would, holds the write lock.
    const other = openKeptDatabase(shop.db);
    other.prepare('BEGIN IMMEDIATE').run();
    let run: ReturnType<typeof running> | undefined;
    try {
      run = running(shop, checkoutArgs());
      const r = run;
      await waitFor('the waiting line', () => r.stderr().includes('saga: waiting'), 25_000);
      expect(r.stderr()).toContain(`saga: waiting for another process's write lock on ${shop.db} (up to 30 s; Ctrl-C to give up)\n`);
      expect((await readState(shop)).sagas).toEqual([]);
    } finally {
      other.prepare('COMMIT').run();
      other.close();
    }
    const done = await run.done;
    expect(done.code, explain(done)).toBe(0);
    expect(done.stderr.match(/saga: waiting/g)).toHaveLength(1);
    const state = await expectHealthy(shop);
    expect(state.sagas.map((s) => s.status)).toEqual(['completed']);
  });
});

describe.concurrent('where an injected fault came from, and `none`', () => {
  const sqlite = BACKENDS[0]!;
  const json = (stdout: string) => JSON.parse(stdout) as { status: string; injectedFaults: unknown[] };

  it('SAGA_FAIL_AT in .env: the checkout says so, with the line; --fail-at none switches it off for one run', async () => {
    const shop = await newShop(sqlite);
    writeFileSync(join(shop.dir, '.env'), '# demo\nSAGA_FAIL_AT=payment\n');
    const failing = await saga(shop, checkoutArgs());
    expect(failing.code, explain(failing)).toBe(3);
    expect(failing.stderr).toContain('saga: injecting a failure at payment (error) as set by .env:2: SAGA_FAIL_AT=payment; `--fail-at none` turns it off for one run\n');
    expect(json(failing.stdout).injectedFaults).toEqual([{ phase: 'action', step: 'payment', mode: 'error', times: null, from: ['.env:2: SAGA_FAIL_AT=payment'] }]);

    const off = await saga(shop, [...checkoutArgs(), '--fail-at', 'none']);
    expect(off.code, explain(off)).toBe(0);
    expect(off.stderr).not.toMatch(/injecting/);
    expect(json(off.stdout).status).toBe('completed');
    expect(json(off.stdout)).not.toHaveProperty('injectedFaults');

    const offByEnv = await saga(shop, checkoutArgs(), { SAGA_FAIL_AT: 'none' });
    expect(offByEnv.code, explain(offByEnv)).toBe(0);
  });

  it('from the environment and from flags; --fail-compensation none too', async () => {
    const shop = await newShop(sqlite);
    const env = await saga(shop, checkoutArgs(), { SAGA_FAIL_AT: 'shipping', SAGA_FAIL_COMPENSATION: 'payment', SAGA_FAIL_TIMES: '1' });
    expect(env.code, explain(env)).toBe(3);
    expect(env.stderr).toContain('saga: injecting a failure at shipping (error) as set by environment variable SAGA_FAIL_AT=shipping; `--fail-at none` turns it off for one run\n');
    expect(env.stderr).toContain(
      'saga: injecting a failure into the compensation of payment (transient, 1 time(s)) as set by environment variable SAGA_FAIL_COMPENSATION=payment, environment variable SAGA_FAIL_TIMES=1; `--fail-compensation none` turns it off for one run\n',
    );
    const noCompensationFault = await saga(shop, [...checkoutArgs(), '--fail-compensation', 'none'], { SAGA_FAIL_AT: 'shipping', SAGA_FAIL_COMPENSATION: 'payment', SAGA_FAIL_COMPENSATION_MODE: 'crash' });
    expect(noCompensationFault.code, explain(noCompensationFault)).toBe(3);
    expect(noCompensationFault.stderr).not.toMatch(/compensation of/);
    // Asked for on the command line: no reminder on the console, the report still says so.
    const flag = await saga(shop, checkoutArgs({ failAt: 'order' }));
    expect(flag.code, explain(flag)).toBe(3);
    expect(flag.stderr).not.toMatch(/injecting/);
    expect(JSON.parse(flag.stdout).injectedFaults).toEqual([{ phase: 'action', step: 'order', mode: 'error', times: null, from: ['--fail-at order'] }]);
    const mixed = await saga(shop, checkoutArgs({ failAt: 'payment' }), { SAGA_FAIL_MODE: 'transient', SAGA_FAIL_TIMES: '2' });
    expect(mixed.code, explain(mixed)).toBe(0);
    expect(mixed.stderr).toContain('saga: injecting a failure at payment (transient, 2 time(s)) as set by --fail-at payment, environment variable SAGA_FAIL_MODE=transient, environment variable SAGA_FAIL_TIMES=2; `--fail-at none` turns it off for one run\n');
  });
});

describe.concurrent('.env lines saga cannot use are named', () => {
  const sqlite = BACKENDS[0]!;

  it('a malformed line: one warning with file and line, and the setting after it is not lost', async () => {
    const shop = await newShop(sqlite);
    // Node's parser would glue line 2 to line 3 and lose SAGA_FAIL_AT with it.
    writeFileSync(join(shop.dir, '.env'), '# comment\nFOO BAR\nSAGA_FAIL_AT=payment\n');
    const run = await saga(shop, checkoutArgs());
    expect(run.code, explain(run)).toBe(3);
    expect(run.stderr.split('\n').filter((l) => l.includes('.env:'))).toEqual([
      'saga: .env:2: ignored "FOO BAR": not KEY=VALUE',
      'saga: injecting a failure at payment (error) as set by .env:3: SAGA_FAIL_AT=payment; `--fail-at none` turns it off for one run',
    ]);
  });

  it('a misspelt SAGA_ setting: one warning with file and line, and the run goes on', async () => {
    const shop = await newShop(sqlite);
    writeFileSync(join(shop.dir, '.env'), 'SAGA_SYNC=full\nSAGA_FAIL_ATT=payment\nOTHER_TOOL=1\n');
    const run = await saga(shop, [...checkoutArgs(), '--quiet']);
    expect(run.code, explain(run)).toBe(0);
    expect(run.stderr).toBe('saga: .env:2: SAGA_FAIL_ATT is not a saga setting (ignored); see .env.example for the settings\n');
  });

  it('a bad value says whether it came from .env (with its line) or the environment', async () => {
    const shop = await newShop(sqlite);
    writeFileSync(join(shop.dir, '.env'), 'LOG_LEVEL=info\n\nSAGA_SYNC=sometimes\n');
    const fromFile = await saga(shop, checkoutArgs());
    expect(fromFile.code, explain(fromFile)).toBe(2);
    expect(fromFile.stderr).toBe('saga: .env:3: SAGA_SYNC=sometimes is invalid: --sync must be one of full, normal; fix or remove the line in .env\n');
    const fromEnv = await saga(shop, checkoutArgs(), { SAGA_SYNC: 'often' });
    expect(fromEnv.code, explain(fromEnv)).toBe(2);
    expect(fromEnv.stderr).toBe('saga: environment variable SAGA_SYNC=often is invalid: --sync must be one of full, normal; fix or unset the variable\n');
  });
});

describe.concurrent('--quiet', () => {
  const sqlite = BACKENDS[0]!;

  it.each([
    { how: '--quiet', args: ['--quiet'], env: {} as Record<string, string> },
    { how: 'SAGA_QUIET=1', args: [], env: { SAGA_QUIET: '1' } },
  ])('$how: no log lines on the console, the summary stays, saga.log is as full as without it', async ({ args, env }) => {
    const [loud, quiet] = await Promise.all([newShop(sqlite), newShop(sqlite)]);
    const checkoutFlags = ['checkout', '--product', '101', '--qty', '1', '--fail-at', 'payment'];
    const a = await saga(loud, checkoutFlags);
    const b = await saga(quiet, [...checkoutFlags, ...args], env);
    expect(a.code, explain(a)).toBe(3);
    expect(b.code, explain(b)).toBe(3);
    expect(a.stderr).toMatch(/payment\s+action\s+failed/);
    expect(b.stderr).toBe('');
    expect(b.stdout).toMatch(/^✖ checkout rolled back: payment: injected permanent failure in payment$/m);
    expect(eventsOf(quiet)).toEqual(eventsOf(loud));
    expect(eventsOf(quiet).length).toBeGreaterThan(5);
  });
});

describe('faults that cannot act', () => {
  it.each([
    { args: ['--fail-compensation', 'payment'], code: 0, says: 'saga: --fail-compensation payment will not fire: the compensation of payment runs only in a rollback after a later step failed; add --fail-at order or shipping' },
    { args: ['--fail-at', 'order', '--fail-compensation', 'shipping'], code: 3, says: 'saga: --fail-compensation shipping will not fire when order fails (shipping never runs): the compensation of shipping runs only in a rollback after a later step failed; use --fail-at shipping --fail-mode timeout' },
  ])('$args: the checkout runs and says the compensation fault will not fire', async ({ args, code, says }) => {
    const cwd = tempDir('saga-unfireable-');
    const r = await runSaga(['checkout', '--product', '101', '--qty', '1', '--quiet', ...args], { cwd });
    expect(r.code, r.stderr).toBe(code);
    expect(r.stderr.split('\n')).toContain(says);
  });

  it('a fault mode set in .env without a step names the .env line, not a flag', async () => {
    const cwd = tempDir('saga-unfireable-');
    writeFileSync(join(cwd, '.env'), 'SAGA_FAIL_MODE=timeout\n');
    const r = await runSaga(['checkout', '--product', '101', '--qty', '1'], { cwd });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('saga: .env:1: SAGA_FAIL_MODE=timeout needs a step to fail: add --fail-at <step> (or SAGA_FAIL_AT); or fix or remove the line in .env\n');
  });
});
