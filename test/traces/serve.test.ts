import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readLog, tempDir } from '../support/cli.js';
import { postCheckout, startServer, stopServers } from '../serve/helpers.js';
import { startReceiver, type Receiver } from './otlp-receiver.js';

// `saga serve` continues a request's W3C traceparent: the storefront's trace includes the saga.

let receiver: Receiver;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(() => receiver.close());
afterEach(stopServers);

describe('traces through saga serve', () => {
  it('a checkout request with a traceparent: the saga\'s root span is a child of the caller\'s span, and the spans are sent when the server stops', async () => {
    const cwd = tempDir('saga-serve-traces-');
    const db = join(cwd, 'saga.db');
    const server = await startServer(['--db', db], { cwd, env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_SERVICE_NAME: 'checkout-api' } });
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const parent = 'b7ad6b7169203331';
    const res = await postCheckout(server.url, { productId: 101, qty: 1 }, { traceparent: `00-${traceId}-${parent}-01` });
    expect(res.status).toBe(201);
    const { sagaId } = (await res.json()) as { sagaId: string };
    // Without a traceparent, a trace of its own.
    const plain = await postCheckout(server.url, { productId: 101, qty: 1 });
    expect(plain.status).toBe(201);
    const { sagaId: plainId } = (await plain.json()) as { sagaId: string };
    server.signal('SIGTERM');
    expect((await server.done).code).toBe(0);

    const root = receiver.spans.find((s) => s.name === 'saga checkout' && s.attributes['saga.id'] === sagaId);
    expect(root?.traceId).toBe(traceId);
    expect(root?.parentSpanId).toBe(parent);
    expect(root?.service).toBe('checkout-api');
    expect(receiver.spans.filter((s) => s.parentSpanId === root!.spanId).map((s) => s.name).sort()).toEqual(['inventory', 'order', 'payment', 'shipping']);
    const own = receiver.spans.find((s) => s.name === 'saga checkout' && s.attributes['saga.id'] === plainId);
    expect(own?.parentSpanId).toBe('');
    expect(own?.traceId).not.toBe(traceId);
    // The saga's lines in saga.log carry the caller's trace id.
    const lines = readLog(join(cwd, 'saga.log')).filter((l) => l.sagaId === sagaId && l.step !== undefined);
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l.trace_id).toBe(traceId);
  });
});
