import type Database from 'better-sqlite3';
import { openKeptDatabase } from '../../src/store/sqlite/kept-database.js';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { expect } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SAGA_BIN = join(ROOT, 'bin/saga.cjs');

const created: string[] = [];

/**
 * A new temporary directory, removed after the test file that made it ends (see
 * test/support/cleanup.ts, a setup file of every test file): a run leaves nothing behind.
 */
export function tempDir(prefix = 'saga-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real `saga` command as a new process in `cwd`, with a clean environment (no SAGA_*
 * or LOG_LEVEL from the machine running the tests) plus `env`.
 */
export function runSaga(args: readonly string[], opts: SpawnOptions): Promise<RunResult> {
  const child = startSaga(args, opts);
  return child.done;
}

/**
 * Not passed to the CLI under test: settings of the machine running the tests, and
 * NODE_EXTRA_CA_CERTS, which makes every Node process parse a whole certificate bundle at start
 * (about 60 ms here, more than saga's own start) for TLS that no test uses.
 */
const DROPPED = new Set(['LOG_LEVEL', 'DATABASE_URL', 'FORCE_COLOR', 'NODE_EXTRA_CA_CERTS']);

export interface SpawnOptions {
  cwd: string;
  env?: Record<string, string>;
  /** Run as this user (and group): a test running as root sees file permissions only as another user. */
  user?: { uid: number; gid: number };
}

export function startSaga(args: readonly string[], opts: SpawnOptions) {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('SAGA_') && !DROPPED.has(k)) env[k] = v;
  }
  // Fast retries keep the suites quick; tests about backoff set their own.
  if (process.env.SAGA_TEST_SPAWN_LOG) appendFileSync(process.env.SAGA_TEST_SPAWN_LOG, `${expect.getState().testPath} ${args[0]}\n`);
  const child = spawn(process.execPath, [SAGA_BIN, ...args], {
    cwd: opts.cwd,
    env: { ...env, SAGA_RETRY_BASE_MS: '5', NO_COLOR: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.user === undefined ? {} : { uid: opts.user.uid, gid: opts.user.gid }),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

export function openDb(path: string): Database.Database {
  return openKeptDatabase(path, { readonly: true, fileMustExist: true });
}

export interface LogLine {
  level: number;
  msg: string;
  sagaId?: string;
  saga?: string;
  step?: string;
  phase?: string;
  event?: string;
  attempt?: number;
  durationMs?: number;
  err?: { message: string };
  [key: string]: unknown;
}

export function readLog(path: string): LogLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as LogLine);
}
