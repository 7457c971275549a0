import type { FastifyInstance, FastifyReply } from 'fastify';
import { CHECKOUT_STEPS } from '../../checkout/checkout-saga.js';
import { COMPENSATION_FAULT_MODES, FAULT_MODES, faultInjector, killProcess, type FaultPlan } from '../../engine/faults.js';
import { IdempotencyConflictError, SagaUndrivableError, SagaVanishedError, WaitInterruptedError } from '../../engine/run-once.js';
import { newSagaId } from '../../engine/saga-id.js';
import { isTerminal } from '../../engine/store.js';
import { SagaError } from '../../errors.js';
import { MAX_QTY } from '../../cli/parsers.js';
import { checkoutInput, runCheckout, type CheckoutRequest, type CheckoutResult } from '../../cli/run-checkout.js';
import { fail } from '../problem.js';
import type { ServeDeps } from '../server.js';

/**
 * `POST /api/checkouts`: the checkout of `saga checkout`, over HTTP (cli/run-checkout.ts is the
 * code both run). 201 with the report of `saga checkout --json` once the saga has ended, or 202
 * at once with `Prefer: respond-async`. Idempotency-Key follows the IETF httpapi draft: the same
 * key and body replay the first saga (Idempotent-Replayed: true), another body is 422, and a
 * request racing one still running with its key waits for it, at most `keyWaitMs`, then 409.
 */
interface FaultsBody {
  readonly failAt?: string;
  readonly mode?: (typeof FAULT_MODES)[number];
  readonly times?: number;
  readonly failCompensation?: string;
  readonly compensationMode?: (typeof COMPENSATION_FAULT_MODES)[number];
  readonly compensationTimes?: number;
}

interface CheckoutBody {
  readonly productId: number;
  readonly qty: number;
  readonly customerId?: number;
  readonly faults?: FaultsBody;
}

const id = { type: 'integer', minimum: 1, maximum: 2_147_483_647 } as const;
const times = { type: 'integer', minimum: 1, maximum: 100 } as const;

export const CHECKOUT_BODY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['productId', 'qty'],
  properties: {
    productId: id,
    qty: { type: 'integer', minimum: 1, maximum: MAX_QTY },
    customerId: id,
    faults: {
      type: 'object',
      additionalProperties: false,
      properties: {
        failAt: { type: 'string', enum: [...CHECKOUT_STEPS] },
        mode: { type: 'string', enum: [...FAULT_MODES] },
        times,
        failCompensation: { type: 'string', enum: [...CHECKOUT_STEPS] },
        compensationMode: { type: 'string', enum: [...COMPENSATION_FAULT_MODES] },
        compensationTimes: times,
      },
    },
  },
} as const;

const KEY = /^[\w.:-]{1,128}$/;

export function checkoutRoutes(deps: ServeDeps) {
  return async (server: FastifyInstance) => {
    server.post<{ Body: CheckoutBody }>(
      '/checkouts',
      {
        schema: { body: CHECKOUT_BODY_SCHEMA },
        // Before the schema: a body asking for faults from a server that does not allow them is
        // refused as such, whatever else is wrong with it.
        preValidation: async (request) => {
          const body = request.body as unknown;
          if (!deps.allowFaults && typeof body === 'object' && body !== null && 'faults' in body) {
            fail('faults_disabled', 'fault injection is off on this server: start it with `saga serve --allow-faults` to accept "faults" (for demos and tests only)', { field: 'faults' });
          }
        },
      },
      async (request, reply) => {
        const key = idempotencyKey(request.headers['idempotency-key']);
        const plan = faultPlan(request.body.faults);
        const req: CheckoutRequest = {
          productId: request.body.productId,
          qty: request.body.qty,
          ...(request.body.customerId === undefined ? {} : { customerId: request.body.customerId }),
          ...(key === undefined ? {} : { idempotencyKey: key }),
          ...(request.body.faults === undefined ? {} : { hashExtra: `;faults=${canonicalFaults(request.body.faults)}` }),
        };
        // Unknown product or customer: 422 before anything is written or acknowledged.
        const prepared = await checkoutInput(deps.app, req).catch(inHttpWords);
        const async = /\brespond-async\b/i.test(String(request.headers.prefer ?? ''));
        // A key whose saga is already running elsewhere: this request waits for it, bounded.
        const earlier = key === undefined ? undefined : await deps.app.store.findByIdempotencyKey(key);
        const waitSignal = earlier !== undefined && !isTerminal(earlier.status) && earlier.status !== 'stuck' ? AbortSignal.timeout(deps.keyWaitMs) : undefined;

        let sagaId = newSagaId();
        // Which saga this request is about: a new one (its first commit) or an earlier one of its key.
        let recorded = false;
        let replayed = false;
        let known!: () => void;
        const sagaKnown = new Promise<void>((resolve) => (known = resolve));
        const run = deps.inFlight.track(
          runCheckout(deps.app, req, { logger: deps.engineLogger, owner: deps.owner, leaseMs: deps.leaseMs, faults: faultInjector(plan, (point) => {
            // As the CLI does: one line first, so a server that vanished is not a mystery.
            request.log.error({ sagaId, event: 'crashing', point }, `crashing at ${point} as asked by a request's faults (a SIGKILL): the next start, another server or \`saga recover\` finishes saga ${sagaId}`);
            return killProcess();
          }), ...(deps.tracer === undefined ? {} : { tracer: deps.tracer }) }, {
            sagaId,
            // The storefront's trace goes on into the saga (W3C Trace Context); a malformed header is ignored.
            ...(typeof request.headers.traceparent === 'string' ? { traceParent: request.headers.traceparent } : {}),
            ...(waitSignal === undefined ? {} : { signal: waitSignal }),
            onSaga: (id) => {
              if (!recorded) replayed = true;
              sagaId = id;
              known();
            },
            onRecorded: () => {
              recorded = true;
              deps.metrics.sagaStarted();
              known();
            },
          }, prepared),
        );
        if (async) {
          // 202 only once the saga's first record is durable (or the key named an earlier saga):
          // the Location then names a saga that exists, whatever happens to this process next.
          const first = await Promise.race([sagaKnown.then(() => undefined), run.then((r) => r, (err: unknown) => explain(err, key))]);
          if (first === undefined) {
            run.catch((err: unknown) => err instanceof WaitInterruptedError || request.log.error({ sagaId, event: 'async-checkout-failed', err: { message: (err as Error).message } }, `saga ${sagaId} (answered 202) failed: ${(err as Error).message}`));
            return accepted(reply, sagaId, replayed);
          }
          return accepted(reply, first.report.sagaId, first.report.replayed);
        }
        const result = await run.catch((err: unknown) => explain(err, key));
        return created(reply, result);
      },
    );
  };
}

function created(reply: FastifyReply, result: CheckoutResult): FastifyReply {
  const { report } = result;
  void reply.code(201).header('location', `/api/sagas/${report.sagaId}`);
  if (report.replayed) void reply.header('idempotent-replayed', 'true');
  return reply.send(report);
}

function accepted(reply: FastifyReply, sagaId: string, replayed: boolean): FastifyReply {
  void reply.code(202).header('location', `/api/sagas/${sagaId}`);
  if (replayed) void reply.header('idempotent-replayed', 'true');
  return reply.send({ sagaId, location: `/api/sagas/${sagaId}`, replayed });
}

function idempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header[0]! : header;
  // The draft's key is a quoted string; a bare token is accepted too.
  const key = value.trim().replace(/^"(.*)"$/, '$1');
  if (!KEY.test(key)) fail('invalid_body', 'the Idempotency-Key header must be 1 to 128 letters, digits, or . _ : - characters', { field: 'Idempotency-Key' });
  return key;
}

/** The catalog's refusals name CLI commands and flags; over HTTP, the routes and fields. */
function inHttpWords(err: unknown): never {
  if (err instanceof SagaError && err.code === 'unknown_product') fail('unknown_product', `${err.message.split(':')[0]}: GET /api/inventory lists the products`, { field: 'productId' });
  if (err instanceof SagaError && err.code === 'unknown_customer') fail('unknown_customer', `${err.message.split(':')[0]}: ${err.message.slice(err.message.indexOf(':') + 2).replace(/ \(leave out --customer.*\)$/, ' (leave out customerId for customer 1)')}`, { field: 'customerId' });
  throw err;
}

/** The engine's errors in HTTP's words (the CLI words them for --key in commands/checkout.ts). */
function explain(err: unknown, key: string | undefined): never {
  if (err instanceof IdempotencyConflictError) {
    fail('key_conflict', `Idempotency-Key ${key} was already used for another request (${err.previousRequest?.replaceAll(';', ', ') ?? 'unknown'}): use a new key for a new checkout`, { field: 'Idempotency-Key' });
  }
  if (err instanceof WaitInterruptedError) {
    fail('key_in_flight', `a request with Idempotency-Key ${key} is still running saga ${err.sagaId}: retry with the same key later (see /api/sagas/${err.sagaId})`, { headers: { 'retry-after': '1' } });
  }
  if (err instanceof SagaVanishedError) throw new SagaError('saga_vanished', err.message);
  if (err instanceof SagaUndrivableError) throw new SagaError('saga_undrivable', err.message);
  throw err;
}

/** The same rules as the --fail-* flags (cli/settings.ts resolveFaults), named by body field. */
function faultPlan(f: FaultsBody | undefined): FaultPlan {
  if (f === undefined) return {};
  if (f.mode !== undefined && f.failAt === undefined) fail('invalid_body', 'faults.mode needs faults.failAt to say which step fails', { field: 'faults.mode' });
  if (f.compensationMode !== undefined && f.failCompensation === undefined) {
    fail('invalid_body', 'faults.compensationMode needs faults.failCompensation to say which compensation fails', { field: 'faults.compensationMode' });
  }
  if (f.times !== undefined && (f.failAt === undefined || f.mode === undefined || f.mode === 'error' || f.mode === 'crash')) {
    fail('invalid_body', `faults.times counts failed attempts of mode transient or timeout; mode ${f.mode ?? 'error'} fails once for good`, { field: 'faults.times' });
  }
  if (f.compensationTimes !== undefined && f.failCompensation === undefined) {
    fail('invalid_body', 'faults.compensationTimes needs faults.failCompensation', { field: 'faults.compensationTimes' });
  }
  return {
    ...(f.failAt === undefined ? {} : { failAt: f.failAt, mode: f.mode ?? 'error' }),
    ...(f.times === undefined ? {} : { times: f.times }),
    ...(f.failCompensation === undefined ? {} : { failCompensation: f.failCompensation, compensationMode: f.compensationMode ?? 'transient' }),
    ...(f.compensationTimes === undefined ? {} : { compensationTimes: f.compensationTimes }),
  };
}

/** Field order must not make one request two: keys sorted. */
function canonicalFaults(f: FaultsBody): string {
  return JSON.stringify(Object.fromEntries(Object.entries(f).sort(([a], [b]) => a.localeCompare(b))));
}
