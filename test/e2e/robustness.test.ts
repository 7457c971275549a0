import { afterAll, describe, expect, it } from 'vitest';
import { openKeptDatabase } from '../../src/store/sqlite/kept-database.js';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { wantsColor } from '../../src/cli/color.js';
import { readLog, runSaga, startSaga, tempDir } from '../support/cli.js';

/** What a careless environment does to a CLI: bad paths, closed pipes, foreign files, impatient users. */
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function dir(): string {
  const d = tempDir();
  dirs.push(d);
  return d;
}
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const oneLine = (stderr: string) => {
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
};

async function until(check: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('bad settings are refused before anything is written', () => {
  it.each([
    ['a directory as --log-file', (d: string) => ['--log-file', d], /--log-file .* is a directory/],
    ['a --log-file in a missing directory', (d: string) => ['--log-file', join(d, 'nope', 'x.log')], /^saga: the directory of the log file .* does not exist: create .* first, or choose another file with --log-file \(or SAGA_LOG_FILE\)\n$/],
    ['an empty --log-file', () => ['--log-file', ''], /--log-file is empty/],
    ['an empty --db', () => ['--db', ''], /--db is empty/],
  ])('%s: exit 2, one line, no database created', async (_name, extra, says) => {
    const d = dir();
    const r = await runSaga(['checkout', '--product', '101', '--qty', '1', ...extra(d)], { cwd: d });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(says);
    oneLine(r.stderr);
    expect(readdirSync(d)).toEqual([]);
  });

  it.each([
    ['--fail-times with a mode that does not retry', ['checkout', '--product', '101', '--qty', '1', '--fail-at', 'payment', '--fail-times', '2'], /--fail-times 2 counts failed attempts of --fail-mode transient or timeout, and --fail-mode error fails once for good: add --fail-mode transient/],
    ['--interval without --watch', ['recover', '--interval', '100'], /--interval goes with --watch/],
    ['--force without --reset', ['seed', '--force'], /--force goes with --reset/],
  ])('%s: exit 2, one line', async (_name, args, says) => {
    const d = dir();
    expect((await runSaga(['seed'], { cwd: d })).code).toBe(0);
    const r = await runSaga(args, { cwd: d });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(says);
    oneLine(r.stderr);
  });

  it('a .env that is a directory is no .env', async () => {
    const d = dir();
    mkdirSync(join(d, '.env'));
    expect((await runSaga(['checkout', '--product', '101', '--qty', '1'], { cwd: d })).code).toBe(0);
  });

  it('bench with an unknown product: exit 2, one line, even with several processes', async () => {
    const d = dir();
    for (const extra of [[], ['--processes', '2']]) {
      const r = await runSaga(['bench', '--n', '4', '--product', '999', ...extra], { cwd: d });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/unknown product 999/);
      oneLine(r.stderr);
    }
  });
});

describe('databases that are not ours', () => {
  it("another program's SQLite file is refused and left byte for byte as it was", async () => {
    const d = dir();
    const path = join(d, 'notes.db');
    const other = openKeptDatabase(path);
    other.exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('keep me');`);
    other.close();
    const before = sha(path);
    for (const args of [['list'], ['checkout', '--product', '101', '--qty', '1'], ['seed']]) {
      const r = await runSaga([...args, '--db', path], { cwd: d });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/another program's SQLite database \(tables: notes\)/);
      oneLine(r.stderr);
    }
    expect(sha(path)).toBe(before);
  });

  it('an empty file is no database for list, and a new one for checkout', async () => {
    const d = dir();
    const path = join(d, 'empty.db');
    writeFileSync(path, '');
    const list = await runSaga(['list', '--db', path], { cwd: d });
    expect(list.code).toBe(2);
    expect(list.stderr).toMatch(/no saga database at .*empty\.db/);
    expect(readFileSync(path).length).toBe(0);
    const checkout = await runSaga(['checkout', '--product', '101', '--qty', '1', '--db', path], { cwd: d });
    expect(checkout.code).toBe(0);
    expect(checkout.stderr).toContain('created it and loaded the demo catalog');
  });
});

describe('a reader that goes away', () => {
  it('closing stdout and stderr mid-checkout does not leave the saga half-done', async () => {
    const d = dir();
    expect((await runSaga(['seed'], { cwd: d })).code).toBe(0);
    const run = startSaga(['checkout', '--product', '101', '--qty', '1', '--fail-at', 'shipping', '--fail-compensation', 'payment', '--fail-times', '2'], { cwd: d, env: { SAGA_RETRY_BASE_MS: '50' } });
    run.child.stdout.destroy();
    run.child.stderr.destroy();
    const r = await run.done;
    expect(r.signal).toBeNull();
    expect(r.code).toBe(3);
    const list = JSON.parse((await runSaga(['list', '--json'], { cwd: d })).stdout) as { status: string }[];
    expect(list.map((s) => s.status)).toEqual(['compensated']);
    expect((await runSaga(['verify'], { cwd: d })).code).toBe(0);
  });
});

describe('colour', () => {
  it.each([
    [{ isTTY: true }, {}, true],
    [{ isTTY: false }, {}, false],
    [{}, {}, false],
    [{ isTTY: true }, { NO_COLOR: '1' }, false],
    [{ isTTY: false }, { FORCE_COLOR: '1' }, true],
    [{ isTTY: true }, { FORCE_COLOR: '0' }, false],
  ])('stream %o with env %o: %s', (stream, env, expected) => {
    expect(wantsColor(stream, env as NodeJS.ProcessEnv)).toBe(expected);
  });
});

describe('show by the short id the console prints', () => {
  it('takes the last 8 characters, and says when a fragment is ambiguous', async () => {
    const d = dir();
    const a = JSON.parse((await runSaga(['checkout', '--product', '101', '--qty', '1', '--json'], { cwd: d })).stdout).sagaId as string;
    await runSaga(['checkout', '--product', '101', '--qty', '1'], { cwd: d });
    const short = a.slice(-8);
    expect(readLog(join(d, 'saga.log')).some((l) => l.sagaId === a)).toBe(true);
    const shown = await runSaga(['show', short, '--json'], { cwd: d });
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout).sagaId).toBe(a);
    // Ids made in the same minute share their time-ordered start.
    const ambiguous = await runSaga(['show', a.slice(0, 8)], { cwd: d });
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/matches more than one saga/);
  });
});

describe('seed --reset while sagas are being driven', () => {
  it('refuses without --force; with it, the driven checkout ends with one line', async () => {
    const d = dir();
    expect((await runSaga(['seed'], { cwd: d })).code).toBe(0);
    const slow = startSaga(['checkout', '--product', '101', '--qty', '1', '--fail-at', 'payment', '--fail-mode', 'transient', '--fail-times', '2'], { cwd: d, env: { SAGA_RETRY_BASE_MS: '3000' } });
    await until(() => readLog(join(d, 'saga.log')).some((l) => l.event === 'retrying'));
    const refused = await runSaga(['seed', '--reset'], { cwd: d });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/1 saga\(s\) are being driven right now .*--force/);
    oneLine(refused.stderr);
    const forced = await runSaga(['seed', '--reset', '--force'], { cwd: d });
    expect(forced.code).toBe(0);
    const r = await slow.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no longer exists \(was the database reset/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('several reruns of an abandoned --key checkout at once', () => {
  it('all wait for the one that takes it over, and all report it completed', async () => {
    const d = dir();
    const crashed = await runSaga(['checkout', '--product', '101', '--qty', '1', '--key', 'order-7', '--fail-at', 'payment', '--fail-mode', 'crash'], { cwd: d });
    expect(crashed.signal).toBe('SIGKILL');
    const reruns = await Promise.all([1, 2, 3, 4].map(() => runSaga(['checkout', '--product', '101', '--qty', '1', '--key', 'order-7', '--json'], { cwd: d })));
    const reports = reruns.map((r) => JSON.parse(r.stdout) as { sagaId: string; status: string; replayed: boolean });
    expect(reruns.map((r) => r.code)).toEqual([0, 0, 0, 0]);
    expect(new Set(reports.map((r) => r.sagaId)).size).toBe(1);
    expect(reports.every((r) => r.status === 'completed' && r.replayed)).toBe(true);
    const takeovers = readLog(join(d, 'saga.log')).filter((l) => l.event === 'taken-over');
    expect(takeovers).toHaveLength(1);
    expect((await runSaga(['verify'], { cwd: d })).code).toBe(0);
  });
});

describe('waiting on a saga another process drives', () => {
  it('Ctrl-C stops the wait, not the saga: exit 130, and the owner completes it', async () => {
    const d = dir();
    expect((await runSaga(['seed'], { cwd: d })).code).toBe(0);
    const args = ['checkout', '--product', '101', '--qty', '1', '--key', 'slow-1'];
    const owner = startSaga([...args, '--fail-at', 'payment', '--fail-mode', 'transient', '--fail-times', '1'], { cwd: d, env: { SAGA_RETRY_BASE_MS: '1500' } });
    await until(() => readLog(join(d, 'saga.log')).some((l) => l.event === 'retrying'));
    const waiter = startSaga(args, { cwd: d });
    let said = '';
    waiter.child.stderr.on('data', (b: Buffer) => (said += b.toString()));
    // It says at once that it waits, and for which saga; Ctrl-C then stops the wait.
    await until(() => /--key slow-1 belongs to saga \S+, which another process is driving; waiting for its outcome/.test(said));
    waiter.child.kill('SIGINT');
    const w = await waiter.done;
    expect(w.code).toBe(130);
    expect(w.stderr).toMatch(/interrupted: stopped waiting for saga \S+; its owner goes on driving it/);
    // Two lines: that it waits, and that it stopped waiting; no stack.
    expect(w.stderr.trim().split('\n')).toHaveLength(2);
    expect(w.stderr).not.toMatch(/\n\s+at /);
    const o = await owner.done;
    expect(o.code).toBe(0);
    expect((await runSaga(['verify'], { cwd: d })).code).toBe(0);
  });
});

describe('recover --watch and stuck sagas', () => {
  it('the daemon leaves stuck sagas to an explicit `saga recover`', async () => {
    const d = dir();
    const stuck = await runSaga(['checkout', '--product', '101', '--qty', '1', '--fail-at', 'shipping', '--fail-compensation', 'inventory', '--json'], { cwd: d });
    expect(stuck.code).toBe(4);
    const watcher = startSaga(['recover', '--watch', '--interval', '50'], { cwd: d });
    // Give it several passes once it is watching (its start may be slow on a loaded machine).
    const watching = () => readLog(join(d, 'saga.log')).some((l) => l.event === 'watching');
    for (let waited = 0; !watching() && waited < 15_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    expect(watching()).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    watcher.child.kill('SIGTERM');
    expect((await watcher.done).code).toBe(0);
    expect(readLog(join(d, 'saga.log')).filter((l) => l.event === 'taken-over')).toHaveLength(0);
    const recovered = await runSaga(['recover', '--json'], { cwd: d });
    expect(recovered.code).toBe(0);
    expect(JSON.parse(recovered.stdout).recovered).toEqual([expect.objectContaining({ sagaId: JSON.parse(stuck.stdout).sagaId, from: 'stuck', status: 'compensated' })]);
  });
});
