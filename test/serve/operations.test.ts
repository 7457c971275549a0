import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { readLog, tempDir } from '../support/cli.js';
import { openReader } from '../support/reader.js';
import { eventually, expectVerifyClean, postCheckout, startServer, stopServers } from './helpers.js';

// `POST /api/sagas/:id/cancel` and `POST /api/sagas/:id/retry`: `saga cancel` and `saga retry`
// over HTTP, on a real `saga serve`, on every backend.

afterEach(stopServers);

type Json = Record<string, unknown>;

async function count(db: string, sql: string, params: unknown[] = []): Promise<number> {
  const reader = await openReader(db);
  try {
    return Number((await reader.all<{ n: number }>(sql, params))[0]!.n);
  } finally {
    await reader.close();
  }
}

function post(url: string, path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}${path}`, { method: 'POST', headers });
}

async function show(url: string, id: string, headers: Record<string, string> = {}): Promise<Json> {
  const res = await fetch(`${url}/api/sagas/${id}`, { headers });
  expect(res.status).toBe(200);
  return (await res.json()) as Json;
}

async function expectProblem(res: Response, status: number, code: string): Promise<Json> {
  expect(res.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
  const p = (await res.json()) as Json;
  expect({ status: res.status, code: p.code }).toEqual({ status, code });
  expect(p).toMatchObject({ type: 'about:blank', status });
  return p;
}

describe.each(BACKENDS)('saga operations over HTTP on $name', (backend) => {
  let cwd: string;
  let db: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    cwd = tempDir('saga-serve-ops-');
    db = await backend.seededDb(cwd);
    env = { SAGA_DB: db, SAGA_LOG_FILE: join(cwd, 'saga.log') };
  });
  afterAll(stopServers);

  it('cancel of a saga held in its payment back-off: retry is 409 saga_busy, cancel 202; it ends compensated and show says http:127.0.0.1 cancelled it', async () => {
    // A long back-off holds the saga in its payment step; the cancel cuts it short.
    const server = await startServer(['--allow-faults'], { cwd, env: { ...env, SAGA_RETRY_BASE_MS: '4000' } });
    const started = await postCheckout(server.url, { productId: 102, qty: 1, faults: { failAt: 'payment', mode: 'transient', times: 50 } }, { prefer: 'respond-async' });
    expect(started.status).toBe(202);
    const { sagaId } = (await started.json()) as { sagaId: string };
    await eventually(async () => {
      const s = await show(server.url, sagaId);
      return (s.events as Json[]).some((e) => e.step === 'payment' && e.event === 'failed') ? s : undefined;
    }, 'a failed payment attempt');
    const short = sagaId.slice(-8);

    const busy = await post(server.url, `/api/sagas/${short}/retry`);
    const b = await expectProblem(busy, 409, 'saga_busy');
    expect(b.detail).toContain(`POST /api/sagas/${sagaId}/cancel`);

    const cancelled = await post(server.url, `/api/sagas/${short}/cancel`);
    expect(cancelled.status).toBe(202);
    expect(cancelled.headers.get('location')).toBe(`/api/sagas/${sagaId}`);
    const body = (await cancelled.json()) as Json;
    expect(body).toEqual({ sagaId, outcome: 'recorded', status: 'running', cancelRequestedAt: expect.stringMatching(/^\d{4}-.*Z$/), cancelRequestedBy: 'http:127.0.0.1', ownerAlive: true });

    const ended = await eventually(async () => {
      const s = await show(server.url, sagaId);
      return s.status === 'running' || s.status === 'compensating' ? undefined : s;
    }, 'the cancelled saga to roll back');
    expect(ended).toMatchObject({ status: 'compensated', cancelRequestedBy: 'http:127.0.0.1', cancelRequestedAt: body.cancelRequestedAt });
    expect(readLog(join(cwd, 'saga.log')).filter((l) => l.event === 'cancel-requested' && l.sagaId === sagaId).map((l) => l.by)).toEqual(['http:127.0.0.1']);
    expect(await count(db, 'SELECT count(*) AS n FROM payments WHERE saga_id = ?', [sagaId])).toBe(0);

    // Once rolled back, another cancel is refused, saying who cancelled it.
    const again = await expectProblem(await post(server.url, `/api/sagas/${sagaId}/cancel`), 409, 'saga_ended');
    expect(again.detail).toContain('cancelled by http:127.0.0.1');
    await expectVerifyClean(db, cwd);
  });

  it('cancel (and retry) of a completed saga: 409 saga_ended in HTTP words, nothing recorded', async () => {
    const server = await startServer([], { cwd, env });
    const res = await postCheckout(server.url, { productId: 101, qty: 1 });
    expect(res.status).toBe(201);
    const { sagaId } = (await res.json()) as { sagaId: string };

    const refused = await expectProblem(await post(server.url, `/api/sagas/${sagaId}/cancel`), 409, 'saga_ended');
    expect(refused.title).toBe('Conflict');
    expect(refused.detail).toMatch(/already completed .*a completed saga cannot be cancelled; its effects stand/);
    expect(refused.detail).toContain(`GET /api/sagas/${sagaId}`);
    expect(refused.detail).not.toContain('saga show');
    expect(await show(server.url, sagaId)).toMatchObject({ status: 'completed', cancelRequestedAt: null, cancelRequestedBy: null });
    expect(await count(db, `SELECT count(*) AS n FROM payments WHERE saga_id = ? AND status = 'charged'`, [sagaId])).toBe(1);

    const retried = await expectProblem(await post(server.url, `/api/sagas/${sagaId.slice(-8)}/retry`), 409, 'saga_ended');
    expect(retried.detail).toContain('nothing to retry');
  });

  it('retry of a stuck saga: 200 with the JSON of `saga retry --json`, it ends compensated and the payment is refunded', async () => {
    const server = await startServer(['--allow-faults'], { cwd, env });
    const res = await postCheckout(server.url, { productId: 102, qty: 1, faults: { failAt: 'shipping', failCompensation: 'payment' } });
    expect(res.status).toBe(201);
    const stuck = (await res.json()) as { sagaId: string; status: string };
    expect(stuck.status).toBe('stuck');
    const { sagaId } = stuck;

    const retried = await post(server.url, `/api/sagas/${sagaId.slice(-8)}/retry`);
    expect(retried.status).toBe(200);
    expect(await retried.json()).toEqual({ sagaId, from: 'stuck', direction: 'backward', status: 'compensated', error: null });
    expect((await show(server.url, sagaId)).status).toBe('compensated');
    expect(await count(db, `SELECT count(*) AS n FROM payments WHERE saga_id = ? AND status = 'refunded'`, [sagaId])).toBe(1);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^saga_stuck 0$/m);
    await expectVerifyClean(db, cwd);
  });

  it('bad ids and the token: unknown 404, ambiguous short id 400, no token 401; nothing recorded', async () => {
    const auth = { authorization: 'Bearer ops-token' };
    const server = await startServer([], { cwd, env: { ...env, SAGA_API_TOKEN: 'ops-token' } });
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await postCheckout(server.url, { productId: 101, qty: 1 }, auth);
      expect(res.status).toBe(201);
      ids.push(((await res.json()) as { sagaId: string }).sagaId);
    }
    let common = 0;
    while (ids[0]![common] === ids[1]![common]) common++;
    expect(common).toBeGreaterThanOrEqual(6);
    const before = await count(db, 'SELECT count(*) AS n FROM sagas WHERE cancel_requested_at IS NOT NULL');

    for (const op of ['cancel', 'retry']) {
      const unknown = await expectProblem(await post(server.url, `/api/sagas/00000000-0000-7000-8000-000000000000/${op}`, auth), 404, 'unknown_saga');
      expect(unknown.detail).toBe('no saga 00000000-0000-7000-8000-000000000000: GET /api/sagas lists saga ids');
      const ambiguous = await expectProblem(await post(server.url, `/api/sagas/${ids[0]!.slice(0, common)}/${op}`, auth), 400, 'ambiguous_saga_id');
      expect(ambiguous.detail).toContain('GET /api/sagas');
      await expectProblem(await post(server.url, `/api/sagas/${ids[0]}/${op}`), 401, 'unauthorized');
    }
    // Through the token hook only: with the token, the same cancel reaches the saga (and is refused as ended).
    await expectProblem(await post(server.url, `/api/sagas/${ids[0]}/cancel`, auth), 409, 'saga_ended');
    expect(await count(db, 'SELECT count(*) AS n FROM sagas WHERE cancel_requested_at IS NOT NULL')).toBe(before);
    for (const id of ids) expect(await show(server.url, id, auth)).toMatchObject({ status: 'completed', cancelRequestedBy: null });
  });
});
