import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { readLog, runSaga, tempDir } from '../support/cli.js';
import { openReader } from '../support/reader.js';
import { eventually, expectVerifyClean, postCheckout, startServer, stopServers, type Server } from './helpers.js';

// `saga serve` end to end: the real CLI on a free port, real databases, HTTP with fetch.

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

/** The shape of a JSON value: its keys, recursively, and the types of its leaves. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)]));
  return v === null ? 'null' : typeof v;
}

describe.each(BACKENDS)('saga serve on $name', (backend) => {
  let cwd: string;
  let db: string;
  let server: Server;
  let env: Record<string, string>;

  beforeAll(async () => {
    cwd = tempDir('saga-serve-');
    db = await backend.seededDb(cwd);
    env = { SAGA_DB: db, SAGA_LOG_FILE: join(cwd, 'saga.log') };
  });
  afterAll(async () => {
    await stopServers();
  });

  it('POST /api/checkouts: 201, Location, the JSON of `saga checkout --json`, the rows, one line per request in saga.log', async () => {
    server = await startServer([], { cwd, env });
    const res = await postCheckout(server.url, { productId: 101, qty: 2 });
    expect(res.status).toBe(201);
    const body = (await res.json()) as Json;
    expect(res.headers.get('location')).toBe(`/api/sagas/${body.sagaId as string}`);
    expect(res.headers.get('idempotent-replayed')).toBeNull();
    expect(body).toMatchObject({ status: 'completed', replayed: false, interrupted: false, product: { id: 101 }, qty: 2, customerId: 1, order: { status: 'confirmed' }, payment: { status: 'charged' } });

    const cli = await runSaga(['checkout', '--product', '101', '--qty', '2', '--json'], { cwd, env });
    expect(cli.code).toBe(0);
    expect(shape(body)).toEqual(shape(JSON.parse(cli.stdout)));

    expect(await count(db, `SELECT count(*) AS n FROM orders WHERE saga_id = ? AND status = 'confirmed'`, [body.sagaId])).toBe(1);
    const shown = (await (await fetch(`${server.url}${res.headers.get('location')!}`)).json()) as Json;
    const show = await runSaga(['show', body.sagaId as string, '--json'], { cwd, env });
    expect(shown).toEqual(JSON.parse(show.stdout));
    expect(readLog(join(cwd, 'saga.log')).some((l) => l.event === 'http' && l.msg.startsWith('POST /api/checkouts 201'))).toBe(true);
    await expectVerifyClean(db, cwd);
  });

  it('Prefer: respond-async: 202 with the Location at once; the saga ends in the background', async () => {
    server = await startServer(['--allow-faults'], { cwd, env: { ...env, SAGA_RETRY_BASE_MS: '100' } });
    const res = await postCheckout(server.url, { productId: 102, qty: 1, faults: { failAt: 'payment', mode: 'transient', times: 2 } }, { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    const location = res.headers.get('location')!;
    expect(location).toMatch(/^\/api\/sagas\/[0-9a-f-]{36}$/);
    // Answered before the retries are over, and the saga's first record is already there.
    const first = (await (await fetch(`${server.url}${location}`)).json()) as Json;
    expect(first.status).toBe('running');
    const done = await eventually(async () => {
      const s = (await (await fetch(`${server.url}${location}`)).json()) as Json;
      return s.status === 'running' ? undefined : s;
    }, 'the async saga to end');
    expect(done.status).toBe('completed');
    await expectVerifyClean(db, cwd);
  });

  it('Idempotency-Key: same body replays (Idempotent-Replayed), another body is 422, racing requests share one saga', async () => {
    server = await startServer([], { cwd, env });
    const key = `order-${backend.name}-1`;
    const first = await postCheckout(server.url, { productId: 103, qty: 1 }, { 'idempotency-key': key });
    expect(first.status).toBe(201);
    const a = (await first.json()) as Json;
    const again = await postCheckout(server.url, { qty: 1, productId: 103 }, { 'idempotency-key': key });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const b = (await again.json()) as Json;
    expect(b.sagaId).toBe(a.sagaId);
    expect(b.replayed).toBe(true);

    const other = await postCheckout(server.url, { productId: 103, qty: 2 }, { 'idempotency-key': key });
    expect(other.status).toBe(422);
    expect(other.headers.get('content-type')).toContain('application/problem+json');
    expect(await other.json()).toMatchObject({ status: 422, code: 'key_conflict', field: 'Idempotency-Key' });

    const raceKey = `order-${backend.name}-race`;
    const answers = await Promise.all(Array.from({ length: 8 }, () => postCheckout(server.url, { productId: 101, qty: 1 }, { 'idempotency-key': raceKey })));
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as Json[];
    expect(answers.map((r) => r.status)).toEqual(Array(8).fill(201));
    expect(new Set(bodies.map((x) => x.sagaId)).size).toBe(1);
    expect(answers.filter((r) => r.headers.get('idempotent-replayed') === null)).toHaveLength(1);
    expect(await count(db, 'SELECT count(*) AS n FROM sagas WHERE idempotency_key = ?', [raceKey])).toBe(1);
    expect(await count(db, 'SELECT count(*) AS n FROM payments WHERE saga_id = ?', [bodies[0]!.sagaId])).toBe(1);
    await expectVerifyClean(db, cwd);
  });

  it('faults without --allow-faults: 403 saying how to enable them, nothing written', async () => {
    server = await startServer([], { cwd, env });
    const before = await count(db, 'SELECT count(*) AS n FROM sagas');
    const res = await postCheckout(server.url, { productId: 101, qty: 1, faults: { failAt: 'payment' } });
    expect(res.status).toBe(403);
    const p = (await res.json()) as Json;
    expect(p).toMatchObject({ status: 403, code: 'faults_disabled', field: 'faults' });
    expect(p.detail).toContain('--allow-faults');
    expect(await count(db, 'SELECT count(*) AS n FROM sagas')).toBe(before);
  });

  it('faults with --allow-faults: a permanent payment failure rolls back (201, compensated); a stuck saga is 201 too', async () => {
    server = await startServer(['--allow-faults'], { cwd, env });
    const res = await postCheckout(server.url, { productId: 102, qty: 1, faults: { failAt: 'payment' } });
    expect(res.status).toBe(201);
    const body = (await res.json()) as Json;
    expect(body).toMatchObject({ status: 'compensated', failedStep: 'payment', reservation: { status: 'released' }, payment: null, order: null });
    const stuck = await postCheckout(server.url, { productId: 102, qty: 1, faults: { failAt: 'shipping', failCompensation: 'payment' } });
    expect(stuck.status).toBe(201);
    const s = (await stuck.json()) as Json;
    expect(s.status).toBe('stuck');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^saga_stuck [1-9]/m);
    expect(metrics).toMatch(/^saga_ended_total\{outcome="compensated"\} 1$/m);
    expect(metrics).toMatch(/^saga_step_retries_total\{step="payment",phase="compensation"\} [1-9]/m);
    // Leave the database clean for the tests after this one: recover the stuck saga.
    server.signal('SIGTERM');
    expect((await server.done).code).toBe(0);
    expect((await runSaga(['recover'], { cwd, env })).code).toBe(0);
    await expectVerifyClean(db, cwd);
  });

  it('bad input: 400 problem+json naming the field, 415 for a non-JSON body, 422 for an unknown product; nothing written', async () => {
    server = await startServer(['--allow-faults'], { cwd, env });
    const before = await count(db, 'SELECT count(*) AS n FROM sagas');
    const cases: [unknown, number, string | undefined][] = [
      [{ productId: 101 }, 400, 'qty'],
      [{ productId: 101, qty: '2' }, 400, 'qty'],
      [{ productId: 101, qty: 0 }, 400, 'qty'],
      [{ productId: 101, qty: 1, colour: 'red' }, 400, 'colour'],
      [{ productId: 101, qty: 1, faults: { failAt: 'nowhere' } }, 400, 'faults.failAt'],
      [{ productId: 101, qty: 1, faults: { mode: 'transient' } }, 400, 'faults.mode'],
      ['{"productId":101,', 400, undefined],
      [[1, 2], 400, undefined],
      [{ productId: 999, qty: 1 }, 422, 'productId'],
      [{ productId: 101, qty: 1, customerId: 42 }, 422, 'customerId'],
    ];
    for (const [body, status, field] of cases) {
      const res = await postCheckout(server.url, body);
      const p = (await res.json()) as Json;
      expect({ body, status: res.status, type: res.headers.get('content-type') }).toEqual({ body, status, type: 'application/problem+json; charset=utf-8' });
      expect(p).toMatchObject({ type: 'about:blank', status });
      expect(p.field).toBe(field);
      expect(typeof p.code).toBe('string');
      expect(JSON.stringify(p)).not.toMatch(/ at .*\.(c?js|ts):\d+/);
    }
    const form = await fetch(`${server.url}/api/checkouts`, { method: 'POST', body: 'productId=101&qty=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(415);
    expect(await form.json()).toMatchObject({ code: 'unsupported_media_type' });
    const big = await postCheckout(server.url, JSON.stringify({ productId: 101, qty: 1, pad: 'x'.repeat(100_000) }));
    expect(big.status).toBe(413);
    const key = await postCheckout(server.url, { productId: 101, qty: 1 }, { 'idempotency-key': 'no spaces allowed' });
    expect(key.status).toBe(400);
    expect(await key.json()).toMatchObject({ field: 'Idempotency-Key' });
    expect(await count(db, 'SELECT count(*) AS n FROM sagas')).toBe(before);
  });

  it('SAGA_API_TOKEN: /api needs the bearer token (401 without it); probes do not', async () => {
    server = await startServer([], { cwd, env: { ...env, SAGA_API_TOKEN: 's3cret-token' } });
    const none = await fetch(`${server.url}/api/inventory`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toContain('Bearer');
    expect(await none.json()).toMatchObject({ code: 'unauthorized' });
    expect((await fetch(`${server.url}/api/inventory`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const before = await count(db, 'SELECT count(*) AS n FROM sagas');
    expect((await postCheckout(server.url, { productId: 101, qty: 1 })).status).toBe(401);
    expect(await count(db, 'SELECT count(*) AS n FROM sagas')).toBe(before);
    expect((await fetch(`${server.url}/api/inventory`, { headers: { authorization: 'Bearer s3cret-token' } })).status).toBe(200);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('binding beyond 127.0.0.1 needs SAGA_API_TOKEN or --insecure (exit 2, one line)', async () => {
    const r = await runSaga(['serve', '--port', '0', '--host', '0.0.0.0'], { cwd, env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--host 0\.0\.0\.0 .*SAGA_API_TOKEN.*--insecure/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('concurrent checkouts share their commits (group commit): all answered 201, fewer saga log commits than two per checkout, verify clean', async () => {
    // A database of its own: the other tests here count the sagas and stock of theirs.
    const own = tempDir('saga-serve-group-');
    const ownDb = await backend.seededDb(own);
    const grouped = await startServer([], { cwd: own, env: { SAGA_DB: ownDb, SAGA_LOG_FILE: join(own, 'saga.log') } });
    const n = 24;
    const answers = await Promise.all(Array.from({ length: n }, () => postCheckout(grouped.url, { productId: 101, qty: 1 })));
    expect(answers.map((a) => a.status)).toEqual(Array(n).fill(201));
    const text = await (await fetch(`${grouped.url}/metrics`)).text();
    const commits = Number(/^saga_db_commits_total\{system="saga_log"\} (\d+)$/m.exec(text)?.[1]);
    const provider = Number(/^saga_db_commits_total\{system="provider"\} (\d+)$/m.exec(text)?.[1]);
    // Alone, each checkout commits twice to the saga log and once at the provider. How the
    // requests overlap depends on how they arrive (one checkout's completion may share a
    // transaction with the next one's start, and their charges then go one by one), so what is
    // asserted is that fewer transactions were made in all, and fewer by the saga log.
    expect(commits).toBeGreaterThan(0);
    expect(commits).toBeLessThan(2 * n);
    expect(commits + provider).toBeLessThan(3 * n);
    expect(await count(ownDb, `SELECT count(*) AS n FROM sagas WHERE status = 'completed'`)).toBe(n);
    await expectVerifyClean(ownDb, own);
  });

  it('list (cursor pages), show (short id), inventory, healthz, readyz and metrics', async () => {
    server = await startServer([], { cwd, env });
    for (let i = 0; i < 3; i++) expect((await postCheckout(server.url, { productId: 101, qty: 1 })).status).toBe(201);
    const all = await count(db, 'SELECT count(*) AS n FROM sagas');
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = (await (await fetch(`${server.url}/api/sagas?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`)).json()) as { sagas: Json[]; nextCursor: string | null };
      expect(page.sagas.length).toBeLessThanOrEqual(2);
      seen.push(...page.sagas.map((s) => s.sagaId as string));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(seen).toHaveLength(all);
    expect(new Set(seen).size).toBe(all);
    const cli = JSON.parse((await runSaga(['list', '--json', '--limit', '1000'], { cwd, env })).stdout) as Json[];
    expect(seen).toEqual(cli.map((s) => s.sagaId));
    const completed = (await (await fetch(`${server.url}/api/sagas?status=completed&limit=1000`)).json()) as { sagas: Json[] };
    expect(completed.sagas.every((s) => s.status === 'completed')).toBe(true);
    const bad = await fetch(`${server.url}/api/sagas?status=finished`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ field: 'status' });

    const short = seen[0]!.slice(-8);
    const shown = (await (await fetch(`${server.url}/api/sagas/${short}`)).json()) as Json;
    expect(shown.sagaId).toBe(seen[0]);
    const missing = await fetch(`${server.url}/api/sagas/00000000-0000-7000-8000-000000000000`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'unknown_saga' });

    const inventory = (await (await fetch(`${server.url}/api/inventory`)).json()) as Json[];
    expect(inventory).toEqual(JSON.parse((await runSaga(['inventory', '--json'], { cwd, env })).stdout));

    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${server.url}/readyz`)).json()).toMatchObject({ status: 'ready' });
    const metrics = await fetch(`${server.url}/metrics`);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    const text = await metrics.text();
    expect(text).toMatch(/^saga_started_total 3$/m);
    expect(text).toMatch(/^saga_ended_total\{outcome="completed"\} 3$/m);
    expect(text).toMatch(/^saga_step_attempts_total\{step="payment",phase="action",outcome="succeeded"\} 3$/m);
    expect(text).toMatch(/^saga_step_duration_seconds_count\{step="inventory",phase="action"\} 3$/m);
    expect(text).toMatch(/^saga_http_requests_total\{method="POST",route="\/api\/checkouts",status="201"\} 3$/m);
    expect(text).toMatch(/^saga_stuck 0$/m);
    expect(text).not.toMatch(/sagaId|process_cpu/);
  });

  it('GET /api/events: one event per log row, in order; Last-Event-ID resumes without loss, across a restart', async () => {
    server = await startServer([], { cwd, env });
    const last = await count(db, 'SELECT coalesce(max(event_id), 0) AS n FROM saga_events');
    const first = await readEvents(server.url, String(last), async () => {
      expect((await postCheckout(server.url, { productId: 101, qty: 1 })).status).toBe(201);
    }, 8);
    expect(first.map((e) => e.id)).toEqual(Array.from({ length: 8 }, (_, i) => last + 1 + i));
    expect(first[0]!.data).toMatchObject({ step: 'inventory', phase: 'action', event: 'started' });
    // The client goes away; sagas go on; the server restarts; the client comes back.
    const resumeFrom = first[3]!.id;
    server.signal('SIGTERM');
    expect((await server.done).code).toBe(0);
    expect((await runSaga(['checkout', '--product', '101', '--qty', '1'], { cwd, env })).code).toBe(0);
    server = await startServer([], { cwd, env });
    const total = await count(db, 'SELECT max(event_id) AS n FROM saga_events');
    const resumed = await readEvents(server.url, String(resumeFrom), async () => undefined, total - resumeFrom);
    expect(resumed.map((e) => e.id)).toEqual(Array.from({ length: total - resumeFrom }, (_, i) => resumeFrom + 1 + i));
  });
});

interface SseEvent {
  id: number;
  data: Json;
}

/** Opens /api/events with Last-Event-ID, runs `act`, and reads until `n` events have come. */
async function readEvents(url: string, lastEventId: string, act: () => Promise<void>, n: number): Promise<SseEvent[]> {
  const controller = new AbortController();
  const res = await fetch(`${url}/api/events`, { headers: { 'last-event-id': lastEventId }, signal: controller.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  await act();
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const timer = setTimeout(() => controller.abort(), 20_000);
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const id = /^id: (\d+)$/m.exec(block);
        const data = /^data: (.*)$/m.exec(block);
        if (id !== null && data !== null) events.push({ id: Number(id[1]), data: JSON.parse(data[1]!) as Json });
      }
      if (events.length >= n) break;
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return events;
}
