import { timingSafeEqual } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { EngineLogger } from '../engine/runner.js';
import type { Owner } from '../engine/store.js';
import type { SagaTracer } from '../engine/tracing.js';
import { SagaError } from '../errors.js';
import { databaseTrouble } from '../store/db-errors.js';
import type { App } from '../cli/app.js';
import type { Metrics } from './metrics.js';
import { fail, problem, ProblemError, problemOfSagaError, sendProblem, type Problem } from './problem.js';
import type { Wakeup } from './events.js';
import type { InFlight } from './in-flight.js';
import { checkoutRoutes } from './routes/checkouts.js';
import { sagaRoutes } from './routes/sagas.js';
import { sagaOperationRoutes } from './routes/saga-operations.js';
import { eventRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { dashboardRoutes } from './routes/dashboard.js';

/** Everything the HTTP layer needs, built by `saga serve` (cli/commands/serve.ts) and passed in. */
export interface ServeDeps {
  readonly app: App;
  /** pino: request lines and saga lines go to the same console and saga.log. */
  readonly logger: Logger;
  /** The engine's logger: `logger`, observed by the metrics and the event feed. */
  readonly engineLogger: EngineLogger;
  readonly owner: Owner;
  readonly leaseMs: number;
  readonly allowFaults: boolean;
  /** When set, every /api request needs `Authorization: Bearer <token>`. */
  readonly apiToken: string | undefined;
  readonly metrics: Metrics;
  readonly wakeup: Wakeup;
  readonly inFlight: InFlight;
  /** How long a request waits for the saga of its Idempotency-Key that another request is running. */
  readonly keyWaitMs: number;
  /** Aborts when the server starts shutting down: event streams end, /readyz says so. */
  readonly closing: AbortSignal;
  /** Each saga a trace (continuing a request's `traceparent`), when the OTEL_* variables turn tracing on. */
  readonly tracer?: SagaTracer;
}

/** Bodies are small JSON objects: a checkout is about 60 bytes. */
const BODY_LIMIT = 16 * 1024;

export async function buildServer(deps: ServeDeps): Promise<FastifyInstance> {
  const server = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // One line per request (the onResponse hook below), not Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // Unknown fields are refused, not dropped, and "2" is not the number 2: a client's mistake is
    // named, not silently repaired. (Query strings, which are all text, are parsed by hand.)
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false, verbose: true } },
    // Keep-alive connections that are idle are closed by close(); those with a request in flight
    // (a checkout waiting for its saga) are answered first.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });

  server.addHook('onRequest', async (request) => {
    if (deps.apiToken !== undefined && request.url.startsWith('/api') && !bearerMatches(request.headers.authorization, deps.apiToken)) {
      fail('unauthorized', 'this server needs a token: send `Authorization: Bearer <SAGA_API_TOKEN>`', { headers: { 'www-authenticate': 'Bearer realm="saga"' } });
    }
  });
  // A response given while shutting down closes its connection: close() waits for every
  // connection, and a client's keep-alive socket would otherwise hold it open to the grace's end.
  server.addHook('onSend', async (_request, reply) => {
    if (deps.closing.aborted) void reply.header('connection', 'close');
  });
  server.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const ms = reply.elapsedTime;
    deps.metrics.httpRequest(request.method, route, reply.statusCode, ms / 1000);
    request.log.info({ event: 'http', method: request.method, url: request.url, status: reply.statusCode, durationMs: Math.round(ms * 10) / 10 }, `${request.method} ${request.url} ${reply.statusCode} ${ms.toFixed(1)}ms`);
  });

  server.setErrorHandler((err: FastifyError | ProblemError | SagaError | Error, request, reply) => {
    const [p, headers] = toProblem(err, request);
    for (const [name, value] of Object.entries(headers)) void reply.header(name, value);
    return sendProblem(reply, p);
  });
  server.setNotFoundHandler((request, reply) => sendProblem(reply, problem('not_found', `no route ${request.method} ${request.url.split('?')[0]}: see docs/serve.md for the routes`)));

  await server.register(checkoutRoutes(deps), { prefix: '/api' });
  await server.register(sagaRoutes(deps), { prefix: '/api' });
  await server.register(sagaOperationRoutes(deps), { prefix: '/api' });
  await server.register(eventRoutes(deps), { prefix: '/api' });
  await server.register(healthRoutes(deps));
  await server.register(dashboardRoutes(deps));
  return server;
}

function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (m === null) return false;
  const given = Buffer.from(m[1]!);
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

/**
 * Every error as a problem. No stack and no internal message ever reaches a client: a bug is
 * logged with its stack and answered with a bare 500.
 */
function toProblem(err: Error, request: FastifyRequest): [Problem, Record<string, string>] {
  if (err instanceof ProblemError) return [err.problem, { ...err.headers }];
  if (err instanceof SagaError) return [problemOfSagaError(err), {}];
  const trouble = databaseTrouble(err);
  if (trouble !== undefined) {
    request.log.error({ event: 'http-error', err: { message: err.message } }, `database failed under ${request.method} ${request.url}: ${trouble}`);
    return [problem('database_failed', `the database failed (${trouble}); try again once it is back`), { 'retry-after': '1' }];
  }
  const fe = err as FastifyError;
  if (fe.validation !== undefined && fe.validation.length > 0) return [validationProblem(fe), {}];
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return [problem('unsupported_media_type', `the body must be JSON: send \`Content-Type: application/json\` (got ${request.headers['content-type'] ?? 'none'})`), {}];
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return [problem('body_too_large', `the body is larger than ${BODY_LIMIT} bytes: a checkout is a small JSON object`), {}];
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return [problem('invalid_body', 'the body is empty: send a JSON object such as {"productId":101,"qty":1}'), {}];
    default:
      break;
  }
  if (fe.statusCode === 400 || err instanceof SyntaxError) {
    return [problem('invalid_body', `the body is not valid JSON (${err.message.replace(/\s+/g, ' ').slice(0, 120)}): send a JSON object such as {"productId":101,"qty":1}`), {}];
  }
  if (fe.statusCode === 503) return [problem('unavailable', 'the server is shutting down: try another server, or again once it is back'), { 'retry-after': '1' }];
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return [{ ...problem('invalid_body', err.message), status: fe.statusCode }, {}];
  }
  request.log.error({ event: 'http-error', err: { message: err.message, stack: err.stack } }, `internal error under ${request.method} ${request.url}: ${err.message}`);
  return [problem('internal', 'internal error: the server logged the details'), {}];
}

/** Ajv's first complaint, in the words of the field it is about. */
function validationProblem(err: FastifyError): Problem {
  const v = err.validation![0]!;
  const where = err.validationContext ?? 'body';
  const path = v.instancePath.replace(/^\//, '').replaceAll('/', '.');
  const params = v.params as Record<string, unknown>;
  const field = [path, (params.missingProperty ?? params.additionalProperty) as string | undefined].filter(Boolean).join('.');
  let detail: string;
  if (v.keyword === 'additionalProperties') detail = `unknown field ${field}: ${where === 'body' ? 'a checkout takes productId, qty, customerId and (with --allow-faults) faults' : 'remove it'}`;
  else if (v.keyword === 'required') detail = `${field} is required`;
  else if (v.keyword === 'enum') detail = `${field} must be one of ${(params.allowedValues as unknown[]).join(', ')}`;
  else if (v.keyword === 'type' && path === '') detail = `the ${where} must be a JSON object`;
  else detail = rangeRule(field, (v as { parentSchema?: unknown }).parentSchema) ?? `${field} ${v.message ?? 'is invalid'}`;
  return problem('invalid_body', detail, field === '' ? {} : { field });
}

/** A whole-number field's rule, whichever part of it was broken (a string, 0, 2.5). */
function rangeRule(field: string, schema: unknown): string | undefined {
  const s = schema as { minimum?: number; maximum?: number; type?: string } | undefined;
  if (s?.type !== 'integer' || s.minimum === undefined || s.maximum === undefined) return undefined;
  return `${field} must be a whole number from ${s.minimum} to ${s.maximum}`;
}

export type Reply = FastifyReply;
export { fail };
