import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../support/cli.js';

/**
 * On Node 24 the garbage collector freeing a better-sqlite3 database or statement aborts the
 * process (src/store/sqlite/kept-database.ts), so saga must never let one go before exit. A
 * preloaded probe counts the ones freed, on whatever Node runs the tests. The warm-up is the
 * build's last step (`npm ci` aborted there on Node 24, now and then); a bench of 300 checkouts
 * aborted there every time.
 */
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const PROBE = join(ROOT, 'test/support/freed-sqlite-objects.cjs');

/** A copy of the built CLI, so the warm-up writes its code cache there and not into the build under test. */
function cliCopy(): string {
  const d = tempDir();
  dirs.push(d);
  mkdirSync(join(d, 'bin'));
  mkdirSync(join(d, 'dist'));
  copyFileSync(join(ROOT, 'bin/saga.cjs'), join(d, 'bin/saga.cjs'));
  copyFileSync(join(ROOT, 'dist/saga.cjs'), join(d, 'dist/saga.cjs'));
  copyFileSync(join(ROOT, 'package.json'), join(d, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(d, 'node_modules'));
  symlinkSync(join(ROOT, 'migrations'), join(d, 'migrations'));
  return d;
}

function runProbed(cli: string, args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--expose-gc', '--require', PROBE, join(cli, 'bin/saga.cjs'), ...args], { cwd: cli, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status, stderr: r.stderr };
}

describe('better-sqlite3 objects', () => {
  it('are never freed by the garbage collector: not in the build warm-up (two commands), not in a bench', () => {
    const cli = cliCopy();
    const warmUp = runProbed(cli, ['--write-code-cache']);
    expect(warmUp.stderr).toMatch(/better-sqlite3 objects: [1-9]\d* made, 0 freed\n$/);
    expect(warmUp.status).toBe(0);

    const db = join(cli, 'bench.db');
    const bench = runProbed(cli, ['bench', '--n', '300', '--db', db, '--log-file', join(cli, 'saga.log')]);
    expect(bench.stderr).toMatch(/better-sqlite3 objects: [1-9]\d* made, 0 freed\n$/);
    expect(bench.status).toBe(0);
  });
});
