import { createServer as createTcpServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, type TestBackend } from '../support/backends.js';
import { withPg } from '../support/pg-database.js';
import { openDb, readLog, runSaga, startSaga, tempDir, type LogLine, type RunResult } from '../support/cli.js';
import { startReceiver, type Receiver, type ReceivedSpan } from './otlp-receiver.js';

// Every saga an OpenTelemetry trace: the real CLI exports to a real OTLP/HTTP receiver on
// loopback, and these tests read the spans it received, the saga.log lines and the saga rows.

let receiver: Receiver;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(() => receiver.close());

const STEPS = ['inventory', 'payment', 'order', 'shipping'];

function otel(extra: Record<string, string> = {}): Record<string, string> {
  return { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_SERVICE_NAME: 'shop-checkout', ...extra };
}

function checkout(dir: string, args: string[], env: Record<string, string>, db = join(dir, 'saga.db')): Promise<RunResult> {
  return runSaga(['checkout', '--product', '101', '--qty', '1', '--db', db, ...args], { cwd: dir, env });
}

function sagaIdOf(run: RunResult): string {
  const id = /saga ([0-9a-f-]{36})/.exec(run.stdout + run.stderr)?.[1];
  if (id === undefined) throw new Error(`no saga id in output:\n${run.stdout}\n${run.stderr}`);
  return id;
}

/** The spans of one saga's trace, found through its root span's saga.id. */
function traceOf(sagaId: string): { root: ReceivedSpan; spans: ReceivedSpan[] } {
  const roots = receiver.spans.filter((s) => s.name === 'saga checkout' && s.attributes['saga.id'] === sagaId);
  expect(roots, `root spans of ${sagaId}`).toHaveLength(1);
  const root = roots[0]!;
  return { root, spans: receiver.spans.filter((s) => s.traceId === root.traceId && s !== root) };
}

const children = (spans: ReceivedSpan[], root: ReceivedSpan, name: string) => spans.filter((s) => s.name === name && s.parentSpanId === root.spanId);

describe('traces', () => {
  it('a completed checkout is one trace: a root span and a child per step attempt, exported over http/protobuf; saga.log lines carry its ids', async () => {
    const dir = tempDir();
    const run = await checkout(dir, [], otel());
    expect(run.code, run.stderr).toBe(0);
    const sagaId = sagaIdOf(run);
    const { root, spans } = traceOf(sagaId);
    expect(receiver.contentTypes).toContain('application/x-protobuf');
    expect(root.parentSpanId).toBe('');
    expect(root.service).toBe('shop-checkout');
    expect(root.attributes).toMatchObject({ 'saga.id': sagaId, 'saga.definition': 'checkout', 'saga.outcome': 'completed', 'saga.resumed': false });
    expect(root.status.code).not.toBe(2);
    expect(spans.map((s) => s.name)).toEqual(expect.arrayContaining(STEPS));
    expect(spans).toHaveLength(4);
    for (const [i, step] of STEPS.entries()) {
      const [span] = children(spans, root, step);
      expect(span, step).toBeDefined();
      expect(span!.attributes).toMatchObject({ 'saga.id': sagaId, 'saga.step': step, 'saga.step_index': i, 'saga.phase': 'action', 'saga.attempt': 1, 'saga.outcome': 'succeeded' });
      expect(span!.startNs >= root.startNs && span!.endNs <= root.endNs, `${step} within the saga`).toBe(true);
    }
    // The external step carries the key its provider saw.
    expect(children(spans, root, 'payment')[0]!.attributes['saga.idempotency_key']).toBe(`${sagaId}:payment`);

    // The trace is stored with the saga, for a recoverer to continue.
    const db = openDb(join(dir, 'saga.db'));
    try {
      const row = db.prepare('SELECT trace_context FROM sagas WHERE saga_id = ?').get(sagaId) as { trace_context: string };
      expect(row.trace_context).toBe(`00-${root.traceId}-${root.spanId}-01`);
    } finally {
      db.close();
    }

    // saga.log and the trace join: step lines name their attempt's span, the outcome line the root.
    const lines = readLog(join(dir, 'saga.log')).filter((l) => l.sagaId === sagaId);
    expect(lines.length).toBeGreaterThan(4);
    for (const line of lines) expect(line.trace_id, line.msg).toBe(root.traceId);
    const spanOf = (l: LogLine) => spans.find((s) => s.spanId === l.span_id);
    for (const line of lines.filter((l) => l.step !== undefined && l.event !== undefined)) {
      expect(spanOf(line)?.name, line.msg).toBe(line.step);
    }
    expect(lines.find((l) => l.event === 'completed')?.span_id).toBe(root.spanId);
  });

  it('a rolled-back checkout shows each failed attempt, its back-off and the compensations, over http/json', async () => {
    const dir = tempDir();
    const run = await checkout(dir, ['--fail-at', 'shipping', '--fail-mode', 'transient', '--fail-times', '9'], otel({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }));
    expect(run.code, run.stderr).toBe(3);
    const sagaId = sagaIdOf(run);
    const { root, spans } = traceOf(sagaId);
    expect(receiver.contentTypes).toContain('application/json');
    expect(root.attributes).toMatchObject({ 'saga.outcome': 'compensated', 'saga.failed_step': 'shipping' });
    expect(String(root.attributes['saga.error'])).toContain('shipping');
    expect(root.status.code).toBe(2);

    const attempts = children(spans, root, 'shipping').sort((a, b) => Number(a.attributes['saga.attempt']) - Number(b.attributes['saga.attempt']));
    expect(attempts.map((s) => s.attributes['saga.attempt'])).toEqual([1, 2, 3]);
    for (const a of attempts) {
      expect(a.attributes).toMatchObject({ 'saga.outcome': 'failed', 'saga.error_kind': 'transient', 'saga.uncertain': false });
      expect(String(a.attributes['saga.error'])).toContain('injected transient failure');
      expect(a.status.code).toBe(2);
    }
    // A back-off between each failed attempt and the next, and none after the last.
    const backoffs = children(spans, root, 'backoff shipping').sort((a, b) => Number(a.attributes['saga.attempt']) - Number(b.attributes['saga.attempt']));
    expect(backoffs.map((s) => s.attributes['saga.attempt'])).toEqual([1, 2]);
    for (const [i, b] of backoffs.entries()) {
      expect(b.attributes['saga.retry.delay_ms']).toEqual(expect.any(Number));
      // It lasts from the failure to the next attempt: the wait is visible in the trace.
      expect(b.startNs >= attempts[i]!.endNs, `back-off ${i + 1} after its attempt`).toBe(true);
      expect(b.endNs, `back-off ${i + 1} ends as the next attempt starts`).toBe(attempts[i + 1]!.startNs);
    }
    // Compensations are marked, in reverse order of the steps that succeeded.
    const compensations = spans.filter((s) => s.attributes['saga.phase'] === 'compensation').sort((a, b) => (a.startNs < b.startNs ? -1 : 1));
    expect(compensations.map((s) => s.name)).toEqual(['compensate order', 'compensate payment', 'compensate inventory']);
    for (const c of compensations) expect(c.parentSpanId).toBe(root.spanId);
    expect(compensations[1]!.attributes['saga.idempotency_key']).toBe(`${sagaId}:payment:compensate`);
  });

  it('a checkout continues the trace TRACEPARENT names (the same path `saga serve` takes for a request\'s traceparent)', async () => {
    const dir = tempDir();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parent = '00f067aa0ba902b7';
    const run = await checkout(dir, [], otel({ TRACEPARENT: `00-${traceId}-${parent}-01` }));
    expect(run.code, run.stderr).toBe(0);
    const { root, spans } = traceOf(sagaIdOf(run));
    expect(root.traceId).toBe(traceId);
    expect(root.parentSpanId).toBe(parent);
    expect(spans).toHaveLength(4);
    // A malformed one is ignored: the saga starts a trace of its own.
    const other = await checkout(dir, [], otel({ TRACEPARENT: 'not-a-traceparent' }));
    expect(other.code, other.stderr).toBe(0);
    const { root: own } = traceOf(sagaIdOf(other));
    expect(own.parentSpanId).toBe('');
    expect(own.traceId).not.toBe(traceId);
  });

  it('saga bench: every checkout is its own trace', async () => {
    const dir = tempDir();
    const run = await runSaga(['bench', '--n', '3', '--db', join(dir, 'saga.db'), '--json'], { cwd: dir, env: otel({ OTEL_SERVICE_NAME: 'bench-run' }) });
    expect(run.code, run.stderr).toBe(0);
    const roots = receiver.spans.filter((s) => s.service === 'bench-run' && s.name === 'saga checkout');
    expect(roots).toHaveLength(3);
    expect(new Set(roots.map((r) => r.traceId)).size).toBe(3);
  });
});

describe.each(BACKENDS)('traces on $name', (backend) => {
  it('a checkout that crashed and was recovered continues its trace: the recovery span is a child of the first run\'s root', async () => {
    const dir = tempDir();
    const db = await backend.seededDb(dir);
    const crashed = await checkout(dir, ['--fail-at', 'payment', '--fail-mode', 'crash'], otel(), db);
    expect(crashed.signal ?? crashed.code).toBe('SIGKILL');
    const first = readLog(join(dir, 'saga.log'));
    const sagaId = first.find((l) => typeof l.sagaId === 'string')!.sagaId!;
    const traceId = first.find((l) => l.sagaId === sagaId)?.trace_id;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);

    const recovered = await runSaga(['recover', '--db', db], { cwd: dir, env: otel() });
    expect(recovered.code, recovered.stderr).toBe(0);
    expect(recovered.stdout).toContain(`${sagaId}  running      resumed forward -> completed`);
    const { root, spans } = traceOf(sagaId);
    expect(root.traceId).toBe(traceId);
    expect(root.attributes).toMatchObject({ 'saga.resumed': true, 'saga.outcome': 'completed' });
    // Its parent is the first run's root span, whose context was stored with the saga.
    const stored = await storedTraceContext(backend, db, sagaId);
    expect(stored).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(root.parentSpanId).toBe(stored.split('-')[2]);
    // The uncertain payment is asked again with the same key, then the steps after it.
    const payment = children(spans, root, 'payment');
    expect(payment).toHaveLength(1);
    expect(payment[0]!.attributes).toMatchObject({ 'saga.attempt': 2, 'saga.outcome': 'succeeded', 'saga.idempotency_key': `${sagaId}:payment` });
    expect(children(spans, root, 'order')).toHaveLength(1);
    expect(children(spans, root, 'shipping')).toHaveLength(1);
    // The recoverer's lines join the same trace.
    const recoveryLines = readLog(join(dir, 'saga.log')).slice(first.length).filter((l) => l.sagaId === sagaId && l.event !== 'taken-over');
    expect(recoveryLines.length).toBeGreaterThan(0);
    for (const line of recoveryLines) expect(line.trace_id, line.msg).toBe(traceId);
  });
});

describe('traces from the recovery daemon', () => {
  it('recover --watch continues a crashed checkout\'s trace and sends its spans when it stops', async () => {
    const dir = tempDir();
    const db = join(dir, 'saga.db');
    const log = join(dir, 'saga.log');
    expect((await runSaga(['seed', '--db', db], { cwd: dir })).code).toBe(0);
    const crashed = await checkout(dir, ['--fail-at', 'order', '--fail-mode', 'crash'], otel(), db);
    expect(crashed.signal).toBe('SIGKILL');
    const sagaId = readLog(log).find((l) => typeof l.sagaId === 'string')!.sagaId!;
    const traceId = readLog(log).find((l) => l.sagaId === sagaId)!.trace_id;
    const watcher = startSaga(['recover', '--watch', '--interval', '50', '--db', db], { cwd: dir, env: otel() });
    const deadline = Date.now() + 20_000;
    while (!readLog(log).some((l) => l.sagaId === sagaId && l.event === 'completed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    watcher.child.kill('SIGTERM');
    const stopped = await watcher.done;
    expect(stopped.code, stopped.stderr).toBe(0);
    const { root, spans } = traceOf(sagaId);
    expect(root.traceId).toBe(traceId);
    expect(root.attributes).toMatchObject({ 'saga.resumed': true, 'saga.outcome': 'completed' });
    // The crash came inside order's own transaction, so nothing of it was recorded: recovery's is attempt 1.
    expect(children(spans, root, 'order')[0]?.attributes).toMatchObject({ 'saga.attempt': 1, 'saga.outcome': 'succeeded' });
    expect(children(spans, root, 'shipping')).toHaveLength(1);
  });
});

async function storedTraceContext(backend: TestBackend, db: string, sagaId: string): Promise<string> {
  const sql = 'SELECT trace_context FROM sagas WHERE saga_id = ';
  if (backend.name === 'postgres') return withPg(db, async (c) => (await c.query<{ trace_context: string }>(`${sql}$1`, [sagaId])).rows[0]!.trace_context);
  const handle = openDb(db);
  try {
    return (handle.prepare(`${sql}?`).get(sagaId) as { trace_context: string }).trace_context;
  } finally {
    handle.close();
  }
}

describe('traces off', () => {
  /** Node's own module debug lines say which files a process loaded. */
  const loadedOtel = (run: RunResult) => /@opentelemetry[\\/]/.test(run.stderr);

  it('without OTEL_* variables no OpenTelemetry module is even loaded, and the log has no trace ids', async () => {
    const dir = tempDir();
    const plain = await checkout(dir, [], { NODE_DEBUG: 'module' });
    expect(plain.code).toBe(0);
    expect(plain.stderr).toContain('MODULE'); // the debug output is there to read
    expect(loadedOtel(plain)).toBe(false);
    expect(readLog(join(dir, 'saga.log')).filter((l) => 'trace_id' in l)).toEqual([]);
    // The same probe sees the modules when tracing is on.
    const traced = await checkout(dir, [], otel({ NODE_DEBUG: 'module' }));
    expect(traced.code).toBe(0);
    expect(loadedOtel(traced)).toBe(true);
  });

  it('OTEL_SDK_DISABLED=true wins over an endpoint: nothing is loaded or sent', async () => {
    const dir = tempDir();
    const before = receiver.spans.length;
    const run = await checkout(dir, [], otel({ OTEL_SDK_DISABLED: 'true', NODE_DEBUG: 'module' }));
    expect(run.code).toBe(0);
    expect(loadedOtel(run)).toBe(false);
    expect(receiver.spans.length).toBe(before);
    expect(readLog(join(dir, 'saga.log')).filter((l) => 'trace_id' in l)).toEqual([]);
  });

  it('an exporter saga cannot use is named in one line and tracing stays off; the checkout goes on', async () => {
    const dir = tempDir();
    const run = await checkout(dir, [], { OTEL_TRACES_EXPORTER: 'zipkin' });
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('saga: OTEL_TRACES_EXPORTER=zipkin is not supported (saga exports traces with otlp only); traces are off\n');
  });
});

describe('a collector that never answers', () => {
  // Accepts connections and never replies: the worst case for a short-lived command.
  const sockets: Socket[] = [];
  const blackhole = createTcpServer((s) => sockets.push(s));
  beforeAll(() => new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve)));
  afterAll(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => blackhole.close(() => resolve()));
  });

  it('changes neither the exit code nor the saga, and delays the exit by about a second at most', async () => {
    const dir = tempDir();
    const { port } = blackhole.address() as { port: number };
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` };
    // The same checkout without tracing, just before: what the silent collector adds is the difference.
    const b0 = performance.now();
    expect((await checkout(tempDir(), [], {})).code).toBe(0);
    const baselineMs = performance.now() - b0;
    const t0 = performance.now();
    const completed = await checkout(dir, [], env);
    const elapsedMs = performance.now() - t0;
    expect(completed.code, completed.stderr).toBe(0);
    // Nothing about the collector reaches the user: the checkout's own lines only.
    expect(completed.stderr).not.toMatch(/otlp|export|trac|collector|internal error/i);
    // Loose on purpose (a loaded machine): the exporter's default timeout would add 10 s; saga's
    // budget is 1 s. Measured against the untraced run, so a slow process start is not counted.
    expect(elapsedMs - baselineMs).toBeLessThan(2500);
    expect(sockets.length).toBeGreaterThan(0); // it did try to send
    const rolledBack = await checkout(dir, ['--fail-at', 'payment'], env);
    expect(rolledBack.code).toBe(3);
    const db = openDb(join(dir, 'saga.db'));
    try {
      expect(db.prepare('SELECT status FROM sagas ORDER BY created_at').all()).toEqual([{ status: 'completed' }, { status: 'compensated' }]);
    } finally {
      db.close();
    }
  });
});
