import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real OTLP/HTTP trace receiver on loopback, as a collector would be: it accepts
 * `POST /v1/traces` in http/protobuf or http/json, answers 200 and keeps every span, decoded
 * into one shape whichever encoding carried it. The protobuf decoder is written out here (the
 * wire format is small, and @opentelemetry/otlp-transformer ships only an encoder).
 */
export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a span with no parent. */
  readonly parentSpanId: string;
  readonly name: string;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  /** 0 unset, 1 ok, 2 error. */
  readonly status: { readonly code: number; readonly message: string };
  readonly service: string;
  readonly startNs: bigint;
  readonly endNs: bigint;
}

export interface Receiver {
  /** e.g. http://127.0.0.1:4318, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string;
  readonly spans: ReceivedSpan[];
  /** The content type of each request received. */
  readonly contentTypes: string[];
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const spans: ReceivedSpan[] = [];
  const contentTypes: string[] = [];
  const server: Server = createServer((req, res) => {
    void body(req).then((buf) => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      const type = String(req.headers['content-type'] ?? '');
      contentTypes.push(type);
      if (type.startsWith('application/json')) {
        spans.push(...fromJson(JSON.parse(buf.toString('utf8')) as JsonRequest));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else if (type.startsWith('application/x-protobuf')) {
        spans.push(...fromProtobuf(buf));
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      } else {
        res.writeHead(415).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    contentTypes,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function body(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// ---- http/json -----------------------------------------------------------------------------

interface JsonValue { stringValue?: string; boolValue?: boolean; intValue?: number | string; doubleValue?: number }
interface JsonKeyValue { key: string; value: JsonValue }
interface JsonRequest {
  resourceSpans?: {
    resource?: { attributes?: JsonKeyValue[] };
    scopeSpans?: {
      spans?: {
        traceId: string; spanId: string; parentSpanId?: string; name: string; attributes?: JsonKeyValue[];
        status?: { code?: number; message?: string }; startTimeUnixNano: string | number; endTimeUnixNano: string | number;
      }[];
    }[];
  }[];
}

function jsonAttributes(kvs: readonly JsonKeyValue[] = []): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of kvs) {
    out[key] = value.stringValue ?? value.boolValue ?? (value.intValue !== undefined ? Number(value.intValue) : (value.doubleValue ?? ''));
  }
  return out;
}

function fromJson(req: JsonRequest): ReceivedSpan[] {
  return (req.resourceSpans ?? []).flatMap((rs) => {
    const service = String(jsonAttributes(rs.resource?.attributes)['service.name'] ?? '');
    return (rs.scopeSpans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((s) => ({
        traceId: s.traceId,
        spanId: s.spanId,
        parentSpanId: s.parentSpanId ?? '',
        name: s.name,
        attributes: jsonAttributes(s.attributes),
        status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
        service,
        startNs: BigInt(s.startTimeUnixNano),
        endNs: BigInt(s.endTimeUnixNano),
      })),
    );
  });
}

// ---- http/protobuf (opentelemetry/proto/collector/trace/v1/trace_service.proto) ------------

type Value = bigint | Buffer;

/** The fields of one protobuf message, by field number, in order. */
function fields(buf: Buffer): Map<number, Value[]> {
  const out = new Map<number, Value[]>();
  let i = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = buf[i++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
  };
  while (i < buf.length) {
    const tag = varint();
    const no = Number(tag >> 3n);
    let value: Value;
    switch (Number(tag & 7n)) {
      case 0:
        value = varint();
        break;
      case 1:
        value = buf.subarray(i, i + 8);
        i += 8;
        break;
      case 2: {
        const len = Number(varint());
        value = buf.subarray(i, i + len);
        i += len;
        break;
      }
      case 5:
        value = buf.subarray(i, i + 4);
        i += 4;
        break;
      default:
        throw new Error(`unsupported protobuf wire type in tag ${tag}`);
    }
    out.set(no, [...(out.get(no) ?? []), value]);
  }
  return out;
}

const bytes = (m: Map<number, Value[]>, no: number): Buffer => (m.get(no)?.[0] as Buffer | undefined) ?? Buffer.alloc(0);
const all = (m: Map<number, Value[]>, no: number): Buffer[] => (m.get(no) ?? []) as Buffer[];
const num = (m: Map<number, Value[]>, no: number): bigint => (m.get(no)?.[0] as bigint | undefined) ?? 0n;

function protoAttributes(kvs: readonly Buffer[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of kvs) {
    const f = fields(kv);
    const v = fields(bytes(f, 2));
    const key = bytes(f, 1).toString('utf8');
    if (v.has(1)) out[key] = bytes(v, 1).toString('utf8');
    else if (v.has(2)) out[key] = num(v, 2) === 1n;
    else if (v.has(3)) out[key] = Number(BigInt.asIntN(64, num(v, 3)));
    else if (v.has(4)) out[key] = bytes(v, 4).readDoubleLE(0);
  }
  return out;
}

function fromProtobuf(buf: Buffer): ReceivedSpan[] {
  return all(fields(buf), 1).flatMap((rsBuf) => {
    const rs = fields(rsBuf);
    const service = String(protoAttributes(all(fields(bytes(rs, 1)), 1))['service.name'] ?? '');
    return all(rs, 2).flatMap((ssBuf) =>
      all(fields(ssBuf), 2).map((spanBuf) => {
        const s = fields(spanBuf);
        const status = fields(bytes(s, 15));
        return {
          traceId: bytes(s, 1).toString('hex'),
          spanId: bytes(s, 2).toString('hex'),
          parentSpanId: bytes(s, 4).toString('hex'),
          name: bytes(s, 5).toString('utf8'),
          attributes: protoAttributes(all(s, 9)),
          status: { code: Number(num(status, 3)), message: bytes(status, 2).toString('utf8') },
          service,
          startNs: bytes(s, 7).readBigUInt64LE(0),
          endNs: bytes(s, 8).readBigUInt64LE(0),
        };
      }),
    );
  });
}
