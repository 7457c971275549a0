/**
 * The fault suites' in-process driver: a checkout and a recovery run in the test's own process,
 * wired exactly as `saga checkout` and `saga recover` wire them (openApp, the flags turned into a
 * fault plan by the CLI's own resolveFaults, pino writing the shop's saga.log), with one
 * difference: a crash point throws instead of sending SIGKILL.
 *
 * Why a throw is the same crash: every crash point fires either before anything of the step is
 * asked for, or inside the open transaction that would record its outcome (`beforeCommit`). The
 * throw unwinds that transaction (SQLite rolls it back, PostgreSQL gets ROLLBACK), exactly what
 * the database does when the process dies; the payment provider has committed its own effect or
 * not, as with a kill. The saga is left to an owner whose process is gone (a pid that has exited),
 * so recovery takes it over at once, as it does after a real SIGKILL. test/faults/crash-recovery
 * keeps real SIGKILLs of the real CLI for a representative sample.
 */
import { findProduct } from '../../src/checkout/queries.js';
import type { CheckoutInput } from '../../src/checkout/checkout-saga.js';
import { openApp, type App } from '../../src/cli/app.js';
import { resolveFaults, resolveGlobals } from '../../src/cli/settings.js';
import { faultInjector } from '../../src/engine/faults.js';
import { localMachine, processOwner } from '../../src/engine/process-identity.js';
import { crashedOwner } from '../../src/explore/run-scenario.js';
import { recoverAbandonedSagas, type RecoveryResult } from '../../src/engine/recovery.js';
import { SimulatedCrashError } from '../../src/engine/attempt.js';
import { systemClock } from '../../src/engine/clock.js';
import { startSaga, type SagaOutcome } from '../../src/engine/runner.js';
import { newSagaId } from '../../src/engine/saga-id.js';
import { createLogger } from '../../src/log.js';
import type { CheckoutSpec, Shop } from './helpers.js';

async function withApp<T>(shop: Shop, env: Record<string, string>, fn: (app: App, settings: ReturnType<typeof resolveGlobals>) => Promise<T>): Promise<T> {
  const settings = resolveGlobals({ flags: { db: shop.db }, env: { SAGA_RETRY_BASE_MS: '5', ...env }, dotenv: {} });
  const app = await openApp(settings, 'never');
  try {
    return await fn(app, settings);
  } finally {
    await app.close();
  }
}

function shopLogger(shop: Shop) {
  return createLogger({ level: 'info', logFile: shop.log, color: false, onFileError: (err) => { throw err; } });
}

export interface InProcessCheckout {
  readonly sagaId: string;
  /** How the saga ended, when the run was not cut short by a crash. */
  readonly outcome?: SagaOutcome;
  /** The crash point that "killed" the run. */
  readonly crashed?: string;
}

/** `saga checkout` with these flags and `SAGA_CRASH_AT` (comma-separated), in this process. */
export async function checkoutInProcess(shop: Shop, spec: CheckoutSpec = {}, env: Record<string, string> = {}): Promise<InProcessCheckout> {
  const flags = {
    ...(spec.failAt === undefined ? {} : { failAt: spec.failAt }),
    ...(spec.failMode === undefined ? {} : { failMode: spec.failMode }),
    ...(spec.failTimes === undefined ? {} : { failTimes: spec.failTimes }),
    ...(spec.failCompensation === undefined ? {} : { failCompensation: spec.failCompensation }),
    ...(spec.failCompensationMode === undefined ? {} : { failCompensationMode: spec.failCompensationMode }),
  };
  const { SAGA_CRASH_AT, ...settingsEnv } = env;
  const plan = resolveFaults({ flags, env: SAGA_CRASH_AT === undefined ? {} : { SAGA_CRASH_AT }, dotenv: {} });
  const stepTimeout: Record<string, string> = spec.stepTimeout === undefined ? {} : { SAGA_STEP_TIMEOUT_MS: String(spec.stepTimeout) };
  return withApp(shop, { ...settingsEnv, ...stepTimeout }, async (app, settings) => {
    const product = await findProduct(app.db, spec.product ?? 101);
    if (product === undefined) throw new Error(`unknown product ${spec.product}`);
    const qty = spec.qty ?? 1;
    const input: CheckoutInput = { productId: product.productId, qty, customerId: spec.customer ?? 1, unitPriceCents: product.priceCents, amountCents: product.priceCents * qty };
    const { logger, close } = shopLogger(shop);
    const sagaId = newSagaId();
    const crash = (point: string): never => {
      throw new SimulatedCrashError(point);
    };
    try {
      const outcome = await startSaga(app.checkout, input, {
        store: app.store, logger, clock: systemClock, random: Math.random, owner: crashedOwner(), leaseMs: settings.leaseMs, faults: faultInjector(plan, crash),
      }, { sagaId });
      return { sagaId, outcome };
    } catch (err) {
      if (err instanceof SimulatedCrashError) return { sagaId, crashed: err.point };
      throw err;
    } finally {
      close();
    }
  });
}

/** `saga recover`, in this process: every abandoned saga driven to an end, without injected faults. */
export function recoverInProcess(shop: Shop): Promise<RecoveryResult[]> {
  return withApp(shop, {}, async (app, settings) => {
    const { logger, close } = shopLogger(shop);
    try {
      const owner = processOwner();
      return await recoverAbandonedSagas(app.definitions, {
        store: app.store, logger, clock: systemClock, random: Math.random, owner, leaseMs: settings.leaseMs, machine: localMachine(owner),
      });
    } finally {
      close();
    }
  });
}
