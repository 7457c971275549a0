import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { TestBackend } from '../support/backends.js';
import { ROOT, SAGA_BIN, tempDir } from '../support/cli.js';

/**
 * A shop as a reader of the docs would have it after trying things out, to run the docs' recipes
 * in: `saga` on PATH (the real built CLI), a database with a completed, a rolled-back and a
 * crashed-then-recovered saga, and a saga.log that `saga recover --watch` wrote to as well (lines
 * without a `sagaId`). Each recipe gets a copy of it, so recipes cannot disturb one another.
 */
export interface Shop {
  /** A directory holding a copy of the shop (saga.db there on SQLite; saga.log), and its env. */
  copy(): Promise<{ cwd: string; env: NodeJS.ProcessEnv }>;
}

export interface ShellResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Settings of the machine running the tests that a reader's shell would not have. */
const DROPPED = new Set(['LOG_LEVEL', 'DATABASE_URL', 'FORCE_COLOR', 'NODE_EXTRA_CA_CERTS']);

function baseEnv(binDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('SAGA_') && !DROPPED.has(k)) env[k] = v;
  }
  // Fast retries keep the recipes quick (a recipe's shape does not depend on the delay).
  return { ...env, PATH: `${binDir}:${env.PATH ?? ''}`, NO_COLOR: '1', SAGA_RETRY_BASE_MS: '5' };
}

/**
 * `saga`, as `npm link` would install it, and `npx`, which in a clone finds the project's own
 * commands (`npx saga`, `npx pino-pretty`) and here must never download anything.
 */
export function writeShims(binDir: string): void {
  mkdirSync(binDir, { recursive: true });
  const saga = join(binDir, 'saga');
  writeFileSync(saga, `#!/bin/sh\nexec '${process.execPath}' '${SAGA_BIN}' "$@"\n`);
  const npx = join(binDir, 'npx');
  writeFileSync(
    npx,
    `#!/bin/sh\nname="$1"; shift\n` +
      `if [ "$name" = saga ]; then exec '${saga}' "$@"; fi\n` +
      `if [ -x '${ROOT}/node_modules/.bin/'"$name" ]; then exec '${ROOT}/node_modules/.bin/'"$name" "$@"; fi\n` +
      `echo "npx $name: not a command of this project (the docs tests never download)" >&2; exit 127\n`,
  );
  chmodSync(saga, 0o755);
  chmodSync(npx, 0o755);
}

/** Runs `script` with bash in `cwd`; with `merged`, stderr goes to the same pipe as stdout, in order. */
export function shell(script: string, opts: { cwd: string; env: NodeJS.ProcessEnv; merged?: boolean }): Promise<ShellResult> {
  // The final `exit` keeps bash from exec-ing the last command, so a command killed by a signal
  // reports 128 + its number, as in an interactive shell.
  const body = `${script}\nexit $?`;
  const child = spawn('bash', ['-c', opts.merged ? `exec 2>&1\n${body}` : body], { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    // An interactive shell says just `Killed` of a job that was SIGKILLed; bash -c names the line and pid.
    const killed = (s: string) => s.replace(/^bash: line \d+:\s+\d+ Killed\s.*$/gm, 'Killed');
    child.on('close', (code) => resolve({ code, stdout: killed(stdout), stderr: killed(stderr) }));
  });
}

export function hasJq(): boolean {
  return spawnSync('jq', ['--version']).status === 0;
}

export async function makeShop(backend: TestBackend): Promise<Shop> {
  const root = tempDir('saga-docs-');
  const binDir = join(root, 'bin');
  writeShims(binDir);
  const cwd = join(root, 'shop');
  mkdirSync(cwd);
  const db = await backend.seededDb(root);
  const env = baseEnv(binDir);
  if (backend.name === 'postgres') env.SAGA_DB = db;
  else copyFileSync(db, join(cwd, 'saga.db'));

  const run = async (script: string, exitCode: number) => {
    const r = await shell(script, { cwd, env });
    expect(r.code, `${script}\n${r.stdout}${r.stderr}`).toBe(exitCode);
    return r;
  };
  await run('saga checkout --product 101 --qty 2', 0);
  await run('saga checkout --product 101 --qty 2 --fail-at payment', 3);
  await run('saga checkout --product 101 --qty 1 --fail-at payment --fail-mode crash', 137);
  // The daemon takes the crashed saga over; it is stopped once it has said so on stdout.
  const watch = spawn('saga', ['recover', '--watch', '--interval', '50', '--json'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let watched = '';
  const exited = new Promise<number | null>((resolve) => watch.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve) => {
    watch.stdout.on('data', (d: Buffer) => {
      watched += d.toString();
      if (watched.includes('\n')) resolve();
    });
    watch.on('close', () => resolve());
  });
  watch.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(JSON.parse(watched)).toMatchObject({ status: 'completed', direction: 'forward' });
  const log = readFileSync(join(cwd, 'saga.log'), 'utf8');
  expect(log).toContain('"event":"watching"');

  let copies = 0;
  return {
    async copy() {
      const dir = join(root, `copy-${++copies}`);
      mkdirSync(dir);
      for (const f of readdirSync(cwd)) if (f.startsWith('saga.')) copyFileSync(join(cwd, f), join(dir, f));
      const copyEnv = { ...env };
      if (backend.name === 'postgres') copyEnv.SAGA_DB = await backend.copyDb(db, dir);
      expect(existsSync(join(dir, 'saga.log'))).toBe(true);
      return { cwd: dir, env: copyEnv };
    },
  };
}
