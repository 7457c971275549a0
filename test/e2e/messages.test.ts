import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { openReader } from '../support/reader.js';
import { runSaga, SAGA_BIN, tempDir, type RunResult } from '../support/cli.js';

/**
 * Messages that say the right thing: each example fits its option, each count is about what it
 * names, times read as times, lines fit the terminal, and the commands that could surprise a
 * newcomer (bench, seed --reset) say what they do to which database.
 */

const checkoutJson = async (args: string[], opts: { cwd: string; env: Record<string, string> }, code: number): Promise<string> => {
  const r = await runSaga(['checkout', '--json', ...args], opts);
  expect(r.code, r.stderr).toBe(code);
  return (JSON.parse(r.stdout) as { sagaId: string }).sagaId;
};

describe('an id flag gives an example of its own kind', () => {
  it.each([
    ['--customer', ['checkout', '--product', '101', '--qty', '1', '--customer', '0'], 'saga: --customer 0 is invalid: must be a positive whole-number id, such as 1 (see `saga checkout --help`)'],
    ['--product', ['checkout', '--product', 'x', '--qty', '1'], 'saga: --product x is invalid: must be a positive whole-number id, such as 101 (see `saga checkout --help`)'],
  ])('%s', async (_flag, args, line) => {
    const dir = tempDir();
    const r = await runSaga(args, { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`${line}\n`);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe.each(BACKENDS)('checkout messages on $name', (backend) => {
  const shop = async () => {
    const dir = tempDir();
    return { cwd: dir, env: { SAGA_DB: await backend.seededDb(dir) } };
  };

  it('out of stock says how many there are', async () => {
    const opts = await shop();
    const few = await runSaga(['checkout', '--product', '104', '--qty', '5'], opts);
    expect(few.code).toBe(3);
    expect(few.stdout.split('\n')[0]).toBe('✖ checkout rolled back: inventory: out of stock: only 4 of product 104 left, 5 asked');
    const none = await runSaga(['checkout', '--product', '105', '--qty', '1'], opts);
    expect(none.code).toBe(3);
    expect(none.stdout.split('\n')[0]).toBe('✖ checkout rolled back: inventory: out of stock: product 105 has none left');
  });

  it("the rollback summary counts the charge's attempts as the charge's and the refund's as the refund's", async () => {
    const opts = await shop();
    const timedOut = await runSaga(['checkout', '--product', '101', '--qty', '1', '--fail-at', 'payment', '--fail-mode', 'timeout', '--fail-times', '5', '--step-timeout', '300'], opts);
    expect(timedOut.code, timedOut.stderr).toBe(3);
    expect(timedOut.stdout.split('\n')).toContain('  payment    compensated         $89.99 refunded (charge tried 3 times)');
    const refundRetried = await runSaga(['checkout', '--product', '101', '--qty', '1', '--fail-at', 'shipping', '--fail-compensation', 'payment', '--fail-times', '2'], opts);
    expect(refundRetried.code, refundRetried.stderr).toBe(3);
    expect(refundRetried.stdout.split('\n')).toContain('  payment    compensated         $89.99 refunded (refund tried 3 times)');
  });

  it('show: a crashed saga that recover finished shows the take-over, and the attempt it cut off as interrupted', async () => {
    const opts = await shop();
    const crashed = await runSaga(['checkout', '--product', '101', '--qty', '1', '--fail-at', 'payment', '--fail-mode', 'crash'], opts);
    expect(crashed.code, crashed.stderr).not.toBe(0);
    const [sagaId] = (JSON.parse((await runSaga(['list', '--json'], opts)).stdout) as { sagaId: string }[]).map((s) => s.sagaId);
    expect((await runSaga(['recover'], opts)).code).toBe(0);
    const shown = await runSaga(['show', sagaId!], opts);
    expect(shown.code).toBe(0);
    const lines = shown.stdout.split('\n');
    const interrupted = lines.findIndex((l) => /^\+\S+ +payment +action +#1 +interrupted +- +\(process died\)$/.test(l));
    const takeOver = lines.findIndex((l) => /^\+\S+ +» take-over +taken over +by pid \d+ on \S+ from pid \d+ on \S+ \(process died\)$/.test(l));
    const retried = lines.findIndex((l) => /^\+\S+ +payment +action +#2 +succeeded/.test(l));
    expect([interrupted, takeOver, retried].every((i) => i > 0), shown.stdout).toBe(true);
    expect(interrupted < takeOver && takeOver < retried, shown.stdout).toBe(true);
    expect(shown.stdout).not.toContain('in flight');
    const json = JSON.parse((await runSaga(['show', sagaId!, '--json'], opts)).stdout) as { takeOvers: { reason: string; status: string; at: string; owner: { pid: number }; previousOwner: { pid: number } }[] };
    expect(json.takeOvers).toHaveLength(1);
    expect(json.takeOvers[0]).toMatchObject({ reason: 'owner-died', status: 'running', at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) });
    expect(json.takeOvers[0]!.owner.pid).not.toBe(json.takeOvers[0]!.previousOwner.pid);
  });

  it('verify shows a lease as a time, and --json gives it as ISO 8601', async () => {
    const opts = await shop();
    const sagaId = await checkoutJson(['--product', '101', '--qty', '1'], opts, 0);
    const leaseUntil = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    const db = await openReader(opts.env.SAGA_DB);
    try {
      await db.run(`UPDATE sagas SET status = 'running', owner_id = 'gone', owner_host = 'elsewhere', owner_pid = 1, lease_until = ? WHERE saga_id = ?`, [leaseUntil, sagaId]);
    } finally {
      await db.close();
    }
    const human = await runSaga(['verify'], opts);
    expect(human.code).toBe(5);
    expect(human.stdout).toContain('"lease_until":"2026-01-02 03:04:05.678 UTC"');
    expect(human.stdout).not.toContain(String(leaseUntil));
    const json = JSON.parse((await runSaga(['verify', '--json'], opts)).stdout) as { violations: { invariant: string; rows: Record<string, unknown>[] }[] };
    expect(json.violations.find((v) => v.invariant === 'saga-abandoned')!.rows[0]).toMatchObject({ saga_id: sagaId, lease_until: '2026-01-02T03:04:05.678Z' });
  });
});

describe('list fits the terminal', () => {
  it('with COLUMNS=80 every line fits, with short ids; piped without COLUMNS, nothing is cut', async () => {
    const dir = tempDir();
    const opts = { cwd: dir, env: { SAGA_DB: join(dir, 'saga.db') } };
    const completed = await checkoutJson(['--product', '101', '--qty', '1'], opts, 0);
    const compensated = await checkoutJson(['--product', '104', '--qty', '5'], opts, 3);
    const narrow = await runSaga(['list'], { ...opts, env: { ...opts.env, COLUMNS: '80' } });
    expect(narrow.code).toBe(0);
    const lines = narrow.stdout.trimEnd().split('\n');
    expect(lines.every((l) => [...l].length <= 80), narrow.stdout).toBe(true);
    expect(lines[0]).toMatch(/^SAGA +CREATED \(UTC\) +ITEMS +STATUS +FAILED AT +TOOK$/);
    expect(lines[1]).toMatch(new RegExp(`^${compensated.slice(-8)}  \\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d  5 × 104  compensated  inventory  \\S+$`));
    expect(lines[2]).toMatch(new RegExp(`^${completed.slice(-8)}  \\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d  1 × 101  completed +\\S+$`));
    // The short id is one `saga show` takes.
    expect((await runSaga(['show', completed.slice(-8)], opts)).stdout).toContain(`saga ${completed}`);
    const piped = await runSaga(['list'], opts);
    expect(piped.stdout.split('\n')[1]).toMatch(new RegExp(`^${compensated} +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3} +5 × 104 +compensated +failed at inventory +\\S+$`));
  });
});

describe('bench', () => {
  it('runs on a scratch database it removes, unless --db names one, and says which', async () => {
    const dir = tempDir();
    const scratch = await runSaga(['bench', '--n', '5'], { cwd: dir });
    expect(scratch.code, scratch.stderr).toBe(0);
    const said = /^saga: benchmarking on a scratch database, (\S+\/bench\.db), removed afterwards \(give --db to bench another\)$/m.exec(scratch.stderr);
    expect(said, scratch.stderr).not.toBeNull();
    expect(existsSync(said![1]!)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
    const named = await runSaga(['bench', '--n', '5', '--db', 'mine.db', '--log-file', 'mine.log'], { cwd: dir });
    expect(named.code, named.stderr).toBe(0);
    expect(named.stderr).toBe('saga: benchmarking on mine.db\n');
    expect(readdirSync(dir).sort()).toEqual(['mine.db', 'mine.log']);
  });
});

/** Runs saga with its stdin on a terminal (a pty made by util-linux `script`), typing `input`. */
function runOnTerminal(args: string[], cwd: string, input: string): Promise<RunResult> {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const command = [process.execPath, SAGA_BIN, ...args].map(quote).join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], { cwd, env: { ...process.env, NO_COLOR: '1', SAGA_DB: join(cwd, 'saga.db') }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stdin.end(input);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr: '' }));
  });
}

describe('seed --reset on a terminal', () => {
  const sagas = async (cwd: string) => (JSON.parse((await runSaga(['list', '--json'], { cwd, env: { SAGA_DB: join(cwd, 'saga.db') } })).stdout) as unknown[]).length;

  it('asks first: no keeps everything (exit 2), y resets, --yes does not ask', async () => {
    const dir = tempDir();
    await checkoutJson(['--product', '101', '--qty', '1'], { cwd: dir, env: { SAGA_DB: join(dir, 'saga.db') } }, 0);
    const no = await runOnTerminal(['seed', '--reset'], dir, 'n\n');
    expect(no.code).toBe(2);
    expect(no.stdout).toContain(`Reset ${join(dir, 'saga.db')}? This deletes its 1 saga(s) and every order, payment and shipment. [y/N] `);
    expect(no.stdout).toContain(`saga: nothing was reset: answer y to reset ${join(dir, 'saga.db')}, or pass --yes`);
    expect(await sagas(dir)).toBe(1);
    const yes = await runOnTerminal(['seed', '--reset'], dir, 'y\n');
    expect(yes.code, yes.stdout).toBe(0);
    expect(await sagas(dir)).toBe(0);
    await checkoutJson(['--product', '101', '--qty', '1'], { cwd: dir, env: { SAGA_DB: join(dir, 'saga.db') } }, 0);
    const flagged = await runOnTerminal(['seed', '--reset', '--yes'], dir, '');
    expect(flagged.code, flagged.stdout).toBe(0);
    expect(flagged.stdout).not.toContain('[y/N]');
    expect(await sagas(dir)).toBe(0);
  });

  it('without a terminal it does not ask', async () => {
    const dir = tempDir();
    const opts = { cwd: dir, env: { SAGA_DB: join(dir, 'saga.db') } };
    await checkoutJson(['--product', '101', '--qty', '1'], opts, 0);
    const r = await runSaga(['seed', '--reset'], opts);
    expect(r.code, r.stderr).toBe(0);
    expect(await sagas(dir)).toBe(0);
  });
});
