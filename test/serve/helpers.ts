import { expect } from 'vitest';
import { runSaga, startSaga, type RunResult } from '../support/cli.js';

/**
 * A real `saga serve` process on a free port (`--port 0`), found by the line it prints on stdout
 * once it accepts requests: `saga serve: listening on http://127.0.0.1:<port>`.
 */
export interface Server {
  readonly url: string;
  readonly pid: number;
  readonly done: Promise<RunResult>;
  /** Output so far. */
  output(): { stdout: string; stderr: string };
  signal(sig: NodeJS.Signals): void;
}

const running = new Set<Server>();

export async function startServer(args: readonly string[], opts: { cwd: string; env?: Record<string, string> }): Promise<Server> {
  const { child, done } = startSaga(['serve', '--port', '0', ...args], opts);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const look = () => {
      const m = /^saga serve: listening on (http:\/\/\S+)$/m.exec(stdout);
      if (m !== null) resolve(m[1]!);
    };
    child.stdout.on('data', look);
    void done.then((r) => reject(new Error(`saga serve exited (${r.code ?? r.signal}) before listening:\n${r.stderr}`)));
  });
  const server: Server = {
    url,
    pid: child.pid!,
    done,
    output: () => ({ stdout, stderr }),
    signal: (sig) => void child.kill(sig),
  };
  running.add(server);
  void done.then(() => running.delete(server));
  return server;
}

/** Kills every server a test left running (afterEach). */
export async function stopServers(): Promise<void> {
  const left = [...running];
  for (const s of left) s.signal('SIGKILL');
  await Promise.all(left.map((s) => s.done));
}

export async function postCheckout(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/api/checkouts`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

/** `saga verify` over the database: exit 0, no violations. */
export async function expectVerifyClean(db: string, cwd: string): Promise<void> {
  const r = await runSaga(['verify', '--json', '--db', db], { cwd });
  expect(r.stdout, r.stderr).toContain('"violations":[]');
  expect(r.code).toBe(0);
}

/** Polls until `check` passes (for outcomes that arrive in the background: a 202's saga, recovery). */
export async function eventually<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
