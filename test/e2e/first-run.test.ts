import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { runSaga, tempDir } from '../support/cli.js';

// A database that does not exist yet, met by several first commands at once, or by one that dies
// right after creating it: creating the tables and loading the catalog is one step, so every
// command finds both or neither.

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function dir(): string {
  const d = tempDir('saga-first-run-');
  dirs.push(d);
  return d;
}

async function inventoryOf(db: string, cwd: string, productId: number) {
  const r = await runSaga(['inventory', '--json', '--db', db], { cwd });
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { productId: number; available: number; sold: number }[]).find((p) => p.productId === productId);
}

describe.concurrent.each(BACKENDS)('first run on $name', (backend) => {
  it('many concurrent first checkouts on a database that does not exist yet all succeed, and stock adds up', async () => {
    const cwd = dir();
    const db = await backend.freshDb(cwd);
    const n = 10;
    const runs = await Promise.all(Array.from({ length: n }, () => runSaga(['checkout', '--product', '102', '--qty', '1', '--json', '--db', db], { cwd })));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expect(runs.filter((r) => r.stderr.includes('created it and loaded the demo catalog'))).toHaveLength(1);
    expect(await inventoryOf(db, cwd, 102)).toMatchObject({ available: 60 - n, sold: n });
    expect((await runSaga(['verify', '--db', db], { cwd })).code).toBe(0);
  });

  it('concurrent first checkouts whose creator dies right after creating the database: all the others succeed', async () => {
    // Every process is armed to die just after it commits the creation of the database; only the
    // one that creates it gets there. Had it left the catalog for a later step, nobody would load it.
    const cwd = dir();
    const db = await backend.freshDb(cwd);
    const n = 8;
    const runs = await Promise.all(
      Array.from({ length: n }, () => runSaga(['checkout', '--product', '102', '--qty', '1', '--db', db], { cwd, env: { SAGA_CRASH_AT: 'open:create:after-commit' } })),
    );
    expect(runs.filter((r) => r.signal === 'SIGKILL')).toHaveLength(1);
    for (const r of runs.filter((r) => r.signal === null)) expect(r.code, r.stderr).toBe(0);
    expect(await inventoryOf(db, cwd, 102)).toMatchObject({ available: 60 - (n - 1), sold: n - 1 });
    expect((await runSaga(['verify', '--db', db], { cwd })).code).toBe(0);
  });
});
