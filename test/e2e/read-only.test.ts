import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { openDb, runSaga, tempDir, type SpawnOptions } from '../support/cli.js';
import { withPg } from '../support/pg-database.js';

/**
 * A database saga may not write: the commands that only read still work, reading it in place
 * and leaving no file behind; those that write refuse up front, with one line and exit 2.
 *
 * Permissions only stop a process that is not root. When the tests run as root (a container),
 * the CLI runs as user `nobody` (65534) instead, so every read-only case here is a real one;
 * the database is made by the test's own user, as its owner would.
 */
const AS_ROOT = process.getuid?.() === 0;
const NOBODY = { uid: 65534, gid: 65534 };

const restore: string[] = [];
afterEach(() => {
  // A read-only directory could not be emptied by the clean-up that follows.
  for (const dir of restore.splice(0)) chmodSync(dir, 0o755);
});

/** A directory the CLI may write (its cwd, where write commands keep saga.log). */
function writableDir(): string {
  const dir = tempDir('saga-ro-test-');
  if (AS_ROOT) chownSync(dir, NOBODY.uid, NOBODY.gid);
  return dir;
}

function asReader(cwd: string, db: string): SpawnOptions {
  return { cwd, env: { SAGA_DB: db }, ...(AS_ROOT ? { user: NOBODY } : {}) };
}

/** Names, sizes, modification times and contents of the files in `dir`. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir).sort().map((name) => {
      const path = join(dir, name);
      return [name, `${statSync(path).size} ${statSync(path).mtimeMs} ${createHash('sha256').update(readFileSync(path)).digest('hex')}`];
    }),
  );
}

/** A database with one completed checkout, in a directory of its own. */
async function shop(): Promise<{ dir: string; db: string; sagaId: string }> {
  const dir = tempDir('saga-ro-test-db-');
  chmodSync(dir, 0o755);
  const db = join(dir, 'saga.db');
  const r = await runSaga(['checkout', '--product', '101', '--qty', '1', '--json'], { cwd: dir, env: { SAGA_DB: db } });
  expect(r.code, r.stderr).toBe(0);
  return { dir, db, sagaId: (JSON.parse(r.stdout) as { sagaId: string }).sagaId };
}

const WRITERS = [['checkout', '--product', '101', '--qty', '1'], ['seed'], ['seed', '--reset', '--yes'], ['recover'], ['bench', '--n', '3']];

async function expectReadsWorkAndWritesAreRefused(s: { dir: string; db: string; sagaId: string }, why: string): Promise<void> {
  const cwd = writableDir();
  const opts = asReader(cwd, s.db);
  const before = snapshot(s.dir);

  const list = await runSaga(['list'], opts);
  expect([list.code, list.stderr]).toEqual([0, '']);
  expect(list.stdout.split('\n')[1]).toMatch(new RegExp(`^${s.sagaId} +\\S+ \\S+ +1 × 101 +completed`));
  const show = await runSaga(['show', s.sagaId], opts);
  expect([show.code, show.stderr]).toEqual([0, '']);
  expect(show.stdout.split('\n')[0]).toBe(`saga ${s.sagaId}  completed  checkout`);
  const verify = await runSaga(['verify'], opts);
  expect([verify.code, verify.stderr]).toEqual([0, '']);
  expect(verify.stdout).toMatch(/^✔ all invariants hold over 1 saga\(s\)/);
  const inventory = await runSaga(['inventory'], opts);
  expect([inventory.code, inventory.stderr]).toEqual([0, '']);
  expect(inventory.stdout.split('\n')[1]).toMatch(/^101 +Mechanical keyboard +\$89\.99 +25 +24 +0 +1$/);

  const refusal = `saga: cannot write ${s.db}: ${why}; fix the permissions or point --db elsewhere (list, show, verify and inventory can still read a read-only database)\n`;
  for (const args of WRITERS) {
    const r = await runSaga(args, opts);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
    expect(r.stderr, args.join(' ')).toBe(refusal);
    expect(r.stdout).toBe('');
  }
  // Not a byte written, no -wal or -shm left beside it.
  expect(snapshot(s.dir)).toEqual(before);
}

describe('a read-only database', () => {
  it('read-only file: list, show, verify and inventory read it; checkout, seed, recover and bench refuse it (exit 2)', async () => {
    const s = await shop();
    chmodSync(s.db, 0o444);
    // As root, the directory is nobody's: only the file is read-only to the CLI.
    if (AS_ROOT) chownSync(s.dir, NOBODY.uid, NOBODY.gid);
    await expectReadsWorkAndWritesAreRefused(s, 'the file is read-only');
  });

  it('read-only directory: the same, although the file itself is writable', async () => {
    const s = await shop();
    if (AS_ROOT) chownSync(s.db, NOBODY.uid, NOBODY.gid);
    chmodSync(s.dir, 0o555);
    restore.push(s.dir);
    await expectReadsWorkAndWritesAreRefused(s, `its directory ${s.dir} is read-only`);
  });

  it('a -wal file holding commits the database file lacks: list reads them too', async () => {
    const dir = tempDir('saga-ro-test-db-');
    chmodSync(dir, 0o755);
    const db = join(dir, 'saga.db');
    const env = { SAGA_DB: db };
    expect((await runSaga(['seed'], { cwd: dir, env })).code).toBe(0);
    // A reader holding a snapshot from before the checkout keeps the checkout's commits in the
    // -wal (a checkpoint may not write past it), and, read-only, it cannot checkpoint on close.
    const reader = openDb(db);
    reader.prepare('BEGIN').run();
    reader.prepare('SELECT count(*) FROM sagas').get();
    const r = await runSaga(['checkout', '--product', '101', '--qty', '1', '--json'], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    reader.prepare('COMMIT').run();
    reader.close();
    expect(statSync(`${db}-wal`).size).toBeGreaterThan(0);
    chmodSync(dir, 0o555);
    restore.push(dir);
    const before = snapshot(dir);
    const list = await runSaga(['list', '--json'], asReader(writableDir(), db));
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { sagaId: string }[]).map((x) => x.sagaId)).toEqual([(JSON.parse(r.stdout) as { sagaId: string }).sagaId]);
    expect(snapshot(dir)).toEqual(before);
    expect(existsSync(`${db}-wal`)).toBe(true);
  });
});

describe.each(BACKENDS.filter((b) => b.name === 'postgres'))('a read-only PostgreSQL database', (backend) => {
  it('default_transaction_read_only: list, show, verify and inventory read it; checkout, seed, recover and bench refuse it (exit 2)', async () => {
    const cwd = tempDir('saga-ro-test-');
    const url = await backend.seededDb(cwd);
    const opts = { cwd, env: { SAGA_DB: url } };
    const sagaId = (JSON.parse((await runSaga(['checkout', '--product', '101', '--qty', '1', '--json'], opts)).stdout) as { sagaId: string }).sagaId;
    const name = new URL(url).pathname.slice(1);
    await withPg(url, (c) => c.query(`ALTER DATABASE ${name} SET default_transaction_read_only = on`));
    const reads: [string[], RegExp][] = [
      [['list'], new RegExp(`^${sagaId} `, 'm')],
      [['show', sagaId], new RegExp(`^saga ${sagaId}  completed`)],
      [['verify'], /^✔ all invariants hold over 1 saga\(s\)/],
      [['inventory'], /^101 +Mechanical keyboard +\$89\.99 +25 +24 +0 +1$/m],
    ];
    for (const [args, shows] of reads) {
      const r = await runSaga(args, opts);
      expect([r.code, r.stderr], args.join(' ')).toEqual([0, '']);
      expect(r.stdout).toMatch(shows);
    }
    for (const args of WRITERS) {
      const r = await runSaga(args, opts);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/^saga: cannot write postgres:\/\/\S+: its transactions are read-only \(a standby, or default_transaction_read_only\); point --db at a writable database \(list, show, verify and inventory can still read it\)\n$/);
    }
    const rows = await withPg(url, async (c) => (await c.query('SELECT count(*)::int AS n FROM saga.sagas')).rows[0] as { n: number });
    expect(rows.n).toBe(1);
  });
});
