import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { tempDir } from '../support/cli.js';
import { openReader } from '../support/reader.js';
import { eventually, expectVerifyClean, postCheckout, startServer, stopServers, type Server } from './helpers.js';

// `saga serve` stopping: gracefully (SIGTERM), by a crash (SIGKILL, an injected crash), and with a
// second server on the same database finishing what the first left.

afterEach(stopServers);

type Json = Record<string, unknown>;

async function sagaRows(db: string): Promise<{ saga_id: string; status: string; idempotency_key: string | null }[]> {
  const reader = await openReader(db);
  try {
    return await reader.all('SELECT saga_id, status, idempotency_key FROM sagas');
  } finally {
    await reader.close();
  }
}

async function takeOvers(db: string): Promise<number> {
  const reader = await openReader(db);
  try {
    return Number((await reader.all<{ n: number }>('SELECT count(*) AS n FROM saga_takeovers'))[0]!.n);
  } finally {
    await reader.close();
  }
}

/** Every saga terminal: finished by recovery where a server died under it. */
async function allTerminal(db: string): Promise<void> {
  await eventually(async () => ((await sagaRows(db)).every((s) => s.status === 'completed' || s.status === 'compensated') ? true : undefined), 'every saga to be terminal');
}

/**
 * Each saga of the loads below fails its payment once and retries after SAGA_RETRY_BASE_MS, so
 * many are in flight (not just their requests) at any instant, and a kill leaves some half-done.
 */
const SLOW = { productId: 102, qty: 1, faults: { failAt: 'payment', mode: 'transient', times: 1 } };
const SLOW_ENV = { SAGA_RETRY_BASE_MS: '150' };

/** `n` checkouts with keys `<prefix>-<i>`, 8 at a time; a request cut off by a dying server is `undefined`. */
async function load(url: () => string, n: number, prefix: string, after?: (answered: number) => void): Promise<(Json | undefined)[]> {
  const answers: (Json | undefined)[] = Array(n).fill(undefined);
  let next = 0;
  let answered = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < n) {
        const i = next++;
        try {
          const res = await postCheckout(url(), SLOW, { 'idempotency-key': `${prefix}-${i}` });
          if (res.status === 201) answers[i] = (await res.json()) as Json;
          answered++;
          after?.(answered);
        } catch {
          // The server died under this request: the client retries below.
        }
      }
    }),
  );
  return answers;
}

/** A client retrying every key gets the saga its first answer named, and each key has one saga. */
async function retryEveryKey(url: string, db: string, prefix: string, first: (Json | undefined)[]): Promise<void> {
  for (let i = 0; i < first.length; i++) {
    const res = await postCheckout(url, SLOW, { 'idempotency-key': `${prefix}-${i}` });
    expect(res.status).toBe(201);
    const body = (await res.json()) as Json;
    expect(['completed', 'compensated']).toContain(body.status);
    if (first[i] !== undefined) {
      expect(body.sagaId).toBe(first[i]!.sagaId);
      expect(res.headers.get('idempotent-replayed')).toBe('true');
    }
  }
  const keys = (await sagaRows(db)).map((s) => s.idempotency_key).filter((k) => k?.startsWith(`${prefix}-`));
  expect(keys).toHaveLength(first.length);
  expect(new Set(keys).size).toBe(first.length);
}

describe.each(BACKENDS)('saga serve stopping, on $name', (backend) => {
  async function setUp() {
    const cwd = tempDir('saga-serve-life-');
    const db = await backend.seededDb(cwd);
    return { cwd, db, env: { SAGA_DB: db, SAGA_LOG_FILE: join(cwd, 'saga.log') } };
  }

  it('SIGTERM with a saga in flight: its request is answered (201, completed), then exit 0', async () => {
    const { cwd, db, env } = await setUp();
    // Two transient payment failures with slow retries: the saga takes about a second.
    const server = await startServer(['--allow-faults'], { cwd, env: { ...env, SAGA_RETRY_BASE_MS: '300' } });
    const answer = postCheckout(server.url, { productId: 101, qty: 1, faults: { failAt: 'payment', mode: 'transient', times: 2 } });
    await eventually(async () => ((await sagaRows(db)).length === 1 ? true : undefined), 'the saga to start');
    server.signal('SIGTERM');
    const res = await answer;
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ status: 'completed', steps: [{ attempts: 1 }, { attempts: 3 }, { attempts: 1 }, { attempts: 1 }] });
    const exit = await server.done;
    expect(exit.code).toBe(0);
    expect(exit.stderr).toMatch(/SIGTERM: no new requests; waiting up to \d+ ms for 1 saga/);
    expect(exit.stderr).toContain('stopped: every saga in flight reached its end');
    expect((await sagaRows(db)).map((s) => s.status)).toEqual(['completed']);
    await expectVerifyClean(db, cwd);
  });

  it('a second SIGTERM exits at once (143); the next start finishes the saga it left', async () => {
    const { cwd, db, env } = await setUp();
    const slow = { ...env, SAGA_RETRY_BASE_MS: '3000' };
    let server = await startServer(['--allow-faults'], { cwd, env: slow });
    const answer = postCheckout(server.url, { productId: 101, qty: 1, faults: { failAt: 'payment', mode: 'transient', times: 2 } }).catch(() => undefined);
    await eventually(async () => ((await sagaRows(db)).length === 1 ? true : undefined), 'the saga to start');
    server.signal('SIGTERM');
    await eventually(async () => (server.output().stderr.includes('SIGTERM: no new requests') ? true : undefined), 'the first signal to be taken');
    server.signal('SIGTERM');
    const exit = await server.done;
    expect(exit.code).toBe(143);
    expect(exit.stderr).toContain('SIGTERM again: stopped at once; the sagas in flight keep their leases');
    expect(await answer).toBeUndefined();
    expect((await sagaRows(db)).map((s) => s.status)).toEqual(['running']);
    server = await startServer([], { cwd, env });
    await allTerminal(db);
    await expectVerifyClean(db, cwd);
  });

  it('a grace period that runs out: exit 0, the saga left to recovery, which the next start finishes', async () => {
    const { cwd, db, env } = await setUp();
    let server = await startServer(['--allow-faults', '--grace-ms', '200'], { cwd, env: { ...env, SAGA_RETRY_BASE_MS: '3000' } });
    void postCheckout(server.url, { productId: 101, qty: 1, faults: { failAt: 'payment', mode: 'transient', times: 2 } }).catch(() => undefined);
    await eventually(async () => ((await sagaRows(db)).length === 1 ? true : undefined), 'the saga to start');
    server.signal('SIGTERM');
    const exit = await server.done;
    expect(exit.code).toBe(0);
    expect(exit.stderr).toContain('stopped after the 200 ms grace period: 1 saga(s) still running are left to recovery');
    server = await startServer([], { cwd, env });
    await allTerminal(db);
    await expectVerifyClean(db, cwd);
  });

  it('SIGKILL in the middle of a load, then a restart: every saga terminal, verify clean, retried keys get their saga', async () => {
    const { cwd, db, env } = await setUp();
    let server: Server = await startServer(['--allow-faults'], { cwd, env: { ...env, ...SLOW_ENV } });
    const url = server.url;
    const first = await load(() => url, 60, 'kill', (answered) => {
      if (answered === 20) server.signal('SIGKILL');
    });
    expect((await server.done).signal).toBe('SIGKILL');
    expect(first.filter(Boolean).length).toBeGreaterThanOrEqual(20);
    // The kill left sagas half-done: the next start has something to recover.
    expect((await sagaRows(db)).filter((s) => s.status === 'running' || s.status === 'compensating').length).toBeGreaterThan(0);
    server = await startServer(['--allow-faults'], { cwd, env: { ...env, ...SLOW_ENV } });
    await allTerminal(db);
    await expectVerifyClean(db, cwd);
    await retryEveryKey(server.url, db, 'kill', first);
    await expectVerifyClean(db, cwd);
  });

  it('an injected crash kills the server; the next start finishes the saga; the key then answers it', async () => {
    const { cwd, db, env } = await setUp();
    let server = await startServer(['--allow-faults'], { cwd, env });
    await expect(postCheckout(server.url, { productId: 101, qty: 1, faults: { failAt: 'payment', mode: 'crash' } }, { 'idempotency-key': 'crash-1' })).rejects.toThrow();
    const crashed = await server.done;
    expect(crashed.signal).toBe('SIGKILL');
    expect(crashed.stderr).toMatch(/crashing at action:payment:after-effect as asked by a request's faults/);
    expect((await sagaRows(db)).map((s) => s.status)).toEqual(['running']);
    server = await startServer(['--allow-faults'], { cwd, env });
    await allTerminal(db);
    const res = await postCheckout(server.url, { productId: 101, qty: 1, faults: { failAt: 'payment', mode: 'crash' } }, { 'idempotency-key': 'crash-1' });
    expect(res.status).toBe(201);
    expect(res.headers.get('idempotent-replayed')).toBe('true');
    expect((await res.json()) as Json).toMatchObject({ sagaId: (await sagaRows(db))[0]!.saga_id, status: 'completed' });
    await expectVerifyClean(db, cwd);
  });

  it('two servers on one database share the load; when one dies, the other recovers its sagas', async () => {
    const { cwd, db, env } = await setUp();
    const a = await startServer(['--allow-faults', '--recover-interval', '200'], { cwd, env: { ...env, ...SLOW_ENV } });
    const b = await startServer(['--allow-faults', '--recover-interval', '200'], { cwd, env: { ...env, ...SLOW_ENV } });
    let turn = 0;
    const first = await load(() => (turn++ % 2 === 0 ? a.url : b.url), 40, 'two', (answered) => {
      if (answered === 16) a.signal('SIGKILL');
    });
    expect((await a.done).signal).toBe('SIGKILL');
    // Nobody restarts A: B's recovery loop finishes what A left (and records each take-over).
    await allTerminal(db);
    expect(await takeOvers(db)).toBeGreaterThan(0);
    await expectVerifyClean(db, cwd);
    await retryEveryKey(b.url, db, 'two', first);
  });
});
