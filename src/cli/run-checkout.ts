import { DEFAULT_CUSTOMER_ID, SEED_CUSTOMERS, SEED_PRODUCTS } from '../checkout/catalog.js';
import type { CheckoutInput } from '../checkout/checkout-saga.js';
import { customerExists, findProduct } from '../checkout/queries.js';
import { runSagaOnce } from '../engine/run-once.js';
import { withCommitPoints } from '../engine/commit-points.js';
import { systemClock } from '../engine/clock.js';
import type { EngineDeps, EngineLogger, SagaOutcome } from '../engine/runner.js';
import type { FaultInjector } from '../engine/faults.js';
import type { Owner } from '../engine/store.js';
import type { SagaTracer } from '../engine/tracing.js';
import { UsageError } from '../errors.js';
import type { App } from './app.js';
import { checkoutReport, type CheckoutReport } from './output/checkout-report.js';

/**
 * One checkout, the same for every edge: `saga checkout` and `POST /api/checkouts` both call
 * `runCheckout`, so validation against the catalog, the idempotency key's meaning (run-once.ts)
 * and the JSON report are one code path. The edges add only what is theirs: signals and exit
 * codes for the CLI, status codes and headers for HTTP.
 */
export interface CheckoutRequest {
  readonly productId: number;
  readonly qty: number;
  readonly customerId?: number;
  readonly idempotencyKey?: string;
  /**
   * Extra text for the request hash (HTTP: the faults asked for), so one key with another
   * request is refused. Left out by the CLI, whose hash is the checkout alone.
   */
  readonly hashExtra?: string;
}

export interface CheckoutDeps {
  readonly logger: EngineLogger;
  readonly owner: Owner;
  readonly leaseMs: number;
  readonly faults: FaultInjector;
  /** Each saga a trace, when tracing is on (src/telemetry/). */
  readonly tracer?: SagaTracer;
}

export interface CheckoutHooks {
  readonly sagaId: string;
  readonly signal?: AbortSignal;
  readonly onWaiting?: (sagaId: string) => void;
  readonly onTakenOver?: (sagaId: string) => void;
  readonly onSaga?: (sagaId: string) => void;
  /** The saga's first record committed: from here a failing database loses nothing of it. */
  readonly onRecorded?: () => void;
  /** A W3C traceparent the new saga's trace continues (a request's header, the TRACEPARENT variable). */
  readonly traceParent?: string;
}

export interface CheckoutResult {
  readonly report: CheckoutReport;
  readonly outcome: SagaOutcome;
}

export interface PreparedCheckout {
  readonly input: CheckoutInput;
  readonly productName: string;
}

/**
 * The checkout as it will be run, or why not (an unknown product or customer: nothing written).
 * An edge that must refuse bad input before saying anything else calls it first and hands the
 * result to `runCheckout`.
 */
export async function checkoutInput(app: Pick<App, 'db'>, req: CheckoutRequest): Promise<PreparedCheckout> {
  const customerId = req.customerId ?? DEFAULT_CUSTOMER_ID;
  const product = await findProduct(app.db, req.productId);
  if (product === undefined) throw unknownProduct(req.productId);
  if (!(await customerExists(app.db, customerId))) throw unknownCustomer(customerId);
  const input: CheckoutInput = { productId: product.productId, qty: req.qty, customerId, unitPriceCents: product.priceCents, amountCents: product.priceCents * req.qty };
  return { input, productName: product.name };
}

/**
 * Runs the checkout (or replays the earlier saga of its key) to its end and builds the report.
 * Engine errors (a key used for another request, a saga that vanished) are thrown as they are:
 * each edge words them for its users.
 */
export async function runCheckout(app: App, req: CheckoutRequest, deps: CheckoutDeps, hooks: CheckoutHooks, prepared?: PreparedCheckout): Promise<CheckoutResult> {
  const { input, productName } = prepared ?? (await checkoutInput(app, req));
  const requestHash = `product=${input.productId};qty=${input.qty};customer=${input.customerId}${req.hashExtra ?? ''}`;
  let recorded = false;
  // Crash points around commits (SAGA_CRASH_AT=commit:<n>:…) when armed; the store itself otherwise.
  const inner = withCommitPoints(app.store, deps.faults);
  const store = { ...inner, commit: async (batch: Parameters<typeof app.store.commit>[0]) => {
    const result = await inner.commit(batch);
    if (!recorded) hooks.onRecorded?.();
    recorded = true;
    return result;
  } };
  const engine: EngineDeps = { store, logger: deps.logger, clock: systemClock, random: Math.random, owner: deps.owner, leaseMs: deps.leaseMs, faults: deps.faults, ...(deps.tracer === undefined ? {} : { tracer: deps.tracer }) };
  const startedAt = Date.now();
  const { outcome, replayed } = await runSagaOnce(app.checkout, input, app.definitions, engine, {
    sagaId: hooks.sagaId,
    ...(hooks.signal === undefined ? {} : { signal: hooks.signal }),
    ...(req.idempotencyKey === undefined ? {} : { idempotencyKey: req.idempotencyKey, requestHash }),
    ...(hooks.onWaiting === undefined ? {} : { onWaiting: hooks.onWaiting }),
    ...(hooks.onTakenOver === undefined ? {} : { onTakenOver: hooks.onTakenOver }),
    ...(hooks.onSaga === undefined ? {} : { onSaga: hooks.onSaga }),
    ...(hooks.traceParent === undefined ? {} : { traceParent: hooks.traceParent }),
  });
  const report = await checkoutReport(app.db, outcome, input, productName, Date.now() - startedAt, replayed);
  return { report, outcome };
}

/** A product id the catalog has, for refusing bad input before a new database is created. */
export function checkCatalogIds(productId: number, customerId: number | undefined): void {
  if (!SEED_PRODUCTS.some((p) => p.productId === productId)) throw unknownProduct(productId);
  const customer = customerId ?? DEFAULT_CUSTOMER_ID;
  if (!SEED_CUSTOMERS.some((c) => c.customerId === customer)) throw unknownCustomer(customer);
}

function unknownProduct(id: number): UsageError {
  return new UsageError(`unknown product ${id}: run \`saga inventory\` to see the products (the demo catalog has ${SEED_PRODUCTS.map((p) => p.productId).join(', ')})`, 'unknown_product');
}

function unknownCustomer(id: number): UsageError {
  return new UsageError(`unknown customer ${id}: the demo customers are ${SEED_CUSTOMERS.map((c) => c.customerId).join(', ')} (leave out --customer to use ${DEFAULT_CUSTOMER_ID})`, 'unknown_customer');
}
