import { newSagaId } from '../../engine/saga-id.js';
import { DEFAULT_CUSTOMER_ID, SEED_CUSTOMERS, SEED_PRODUCTS } from '../../checkout/catalog.js';
import type { CheckoutInput } from '../../checkout/checkout-saga.js';
import { customerExists, findProduct } from '../../checkout/queries.js';
import { DuplicateSagaKeyError, LostOwnershipError } from '../../engine/errors.js';
import { faultInjector } from '../../engine/faults.js';
import { recoverSaga, isAbandoned, pidAlive } from '../../engine/recovery.js';
import { startSaga, systemClock, type EngineDeps, type SagaOutcome } from '../../engine/runner.js';
import { foldEvents } from '../../engine/step-state.js';
import { isTerminal, type SagaRecord } from '../../engine/store.js';
import { ExitCode, SagaError, UsageError } from '../../errors.js';
import { openApp, processOwner, type App } from '../app.js';
import { checkLogFile, commandLogger, type CommandContext } from '../context.js';
import { listenForInterrupts } from '../interrupt.js';
import { resolveFaults } from '../settings.js';
import { checkoutReport, renderCheckoutReport, type CheckoutReport } from '../output/checkout-report.js';

export interface CheckoutFlags {
  readonly product: number;
  readonly qty: number;
  readonly customer?: number;
  readonly key?: string;
  readonly json?: boolean;
}

/** `saga checkout`: one checkout saga. Returns the exit code. */
export async function checkoutCommand(flags: CheckoutFlags, ctx: CommandContext): Promise<number> {
  const faults = resolveFaults(ctx.sources);
  checkLogFile(ctx.settings.logFile);
  const customerId = flags.customer ?? DEFAULT_CUSTOMER_ID;
  // A new user's first command creates the database; bad input must not, so check it against
  // the catalog that is about to be loaded.
  const app = await openApp(ctx.settings, 'if-missing', () => {
    if (!SEED_PRODUCTS.some((p) => p.productId === flags.product)) throw unknownProduct(flags.product);
    if (!SEED_CUSTOMERS.some((c) => c.customerId === customerId)) throw unknownCustomer(customerId);
  });
  try {
    if (app.created) ctx.stderr.write(`saga: no database at ${app.db.label}; created it and loaded the demo catalog\n`);
    const product = await findProduct(app.db, flags.product);
    if (product === undefined) throw unknownProduct(flags.product);
    if (!(await customerExists(app.db, customerId))) throw unknownCustomer(customerId);
    const input: CheckoutInput = { productId: product.productId, qty: flags.qty, customerId, unitPriceCents: product.priceCents, amountCents: product.priceCents * flags.qty };
    const requestHash = `product=${input.productId};qty=${input.qty};customer=${input.customerId}`;
    const previous = flags.key === undefined ? undefined : await sagaForKey(app, flags.key, requestHash);

    const { logger, close } = commandLogger(ctx);
    let sagaId: string = previous?.sagaId ?? newSagaId();
    const interrupts = listenForInterrupts((sig) => {
      ctx.stderr.write(`saga: ${sig} again: stopped at once; saga ${sagaId} is left to recovery: run \`saga recover\`\n`);
      close();
      process.exit(sig === 'SIGINT' ? ExitCode.sigint : sig === 'SIGHUP' ? ExitCode.sighup : ExitCode.sigterm);
    });
    const deps: EngineDeps = { store: app.store, logger, clock: systemClock, random: Math.random, owner: processOwner(), leaseMs: ctx.settings.leaseMs, faults: faultInjector(faults) };
    try {
      const startedAt = Date.now();
      let outcome: SagaOutcome;
      let replayed = previous !== undefined;
      if (previous !== undefined) {
        outcome = await outcomeOfExisting(app, previous, deps);
      } else {
        try {
          outcome = await startSaga(app.checkout, input, deps, {
            sagaId,
            signal: interrupts.signal,
            ...(flags.key === undefined ? {} : { idempotencyKey: flags.key, requestHash }),
          });
        } catch (err) {
          if (err instanceof DuplicateSagaKeyError && flags.key !== undefined) {
            // Another process with the same key got there first: report its saga instead.
            const winner = await sagaForKey(app, flags.key, requestHash);
            if (winner === undefined) throw err;
            sagaId = winner.sagaId;
            replayed = true;
            outcome = await outcomeOfExisting(app, winner, deps);
          } else if (err instanceof LostOwnershipError) {
            // This process stalled past its lease and a recoverer took the saga over: it stopped
            // touching it at once (rule 7). Report what the new owner makes of it.
            ctx.stderr.write(`saga: saga ${sagaId} was taken over by another process while this one was stalled; waiting for its outcome\n`);
            const current = await app.store.getSaga(sagaId);
            if (current === undefined) throw new SagaError(`saga ${sagaId} no longer exists (was the database reset while it ran?)`, ExitCode.internal);
            outcome = await outcomeOfExisting(app, current, deps);
          } else {
            throw err;
          }
        }
      }
      const report = { ...(await checkoutReport(app.db, outcome, input, product.name, Date.now() - startedAt, replayed)), interrupted: outcome.interrupted || interrupts.exitCode() !== undefined };
      return finish(report, outcome, interrupts.exitCode(), flags, ctx);
    } finally {
      interrupts.dispose();
      close();
    }
  } finally {
    await app.close();
  }
}

/**
 * With `--key`: the saga a key started before, if any. The same key with another checkout is
 * refused: it would silently do something other than what was asked.
 */
async function sagaForKey(app: App, key: string, requestHash: string): Promise<SagaRecord | undefined> {
  const existing = await app.store.findByIdempotencyKey(key);
  if (existing !== undefined && existing.requestHash !== requestHash) {
    throw new UsageError(`--key ${key} was already used for another checkout (${existing.requestHash?.replaceAll(';', ', ')}): use a new key for a new checkout`);
  }
  return existing;
}

/**
 * The outcome of a saga started earlier with the same key: waited for while its owner lives,
 * driven to an end (without injected faults) if it was abandoned.
 */
async function outcomeOfExisting(app: App, saga: SagaRecord, deps: EngineDeps): Promise<SagaOutcome> {
  const { faults: _injected, ...withoutFaults } = deps;
  let current = saga;
  // Until it ends: wait while someone owns it; take it over when nobody does (another waiter may
  // win that race, and then this one waits for the winner).
  while (!isTerminal(current.status) && current.status !== 'stuck') {
    if (isAbandoned(current, Date.now(), deps.owner.host, pidAlive)) {
      const result = await recoverSaga(current, app.definitions, { ...withoutFaults, pidAlive });
      if (result.action === 'recovered') return result.outcome;
    } else {
      await systemClock.sleep(100);
    }
    const latest = await app.store.getSaga(saga.sagaId);
    if (latest === undefined) throw new SagaError(`saga ${saga.sagaId} no longer exists (was the database reset?)`, ExitCode.internal);
    current = latest;
  }
  const steps = foldEvents(app.checkout.steps.length, await app.store.getEvents(saga.sagaId));
  return {
    sagaId: current.sagaId,
    status: current.status === 'completed' || current.status === 'compensated' ? current.status : 'stuck',
    steps,
    interrupted: false,
    ...(current.failedStep === null ? {} : { failedStep: current.failedStep }),
    ...(current.error === null ? {} : { error: current.error }),
  };
}

function finish(report: CheckoutReport, outcome: SagaOutcome, signalExit: number | undefined, flags: CheckoutFlags, ctx: CommandContext): number {
  const exitCode = outcome.status === 'completed' ? ExitCode.ok : outcome.status === 'compensated' ? ExitCode.rolledBack : ExitCode.rollbackIncomplete;
  if (flags.json) ctx.stdout.write(`${JSON.stringify(report)}\n`);
  else ctx.stdout.write(renderCheckoutReport(report, ctx.color));
  if (signalExit !== undefined) {
    const what = {
      completed: 'its last step had already run, so it completed',
      compensated: 'it was rolled back; nothing is left half-done',
      stuck: 'its rollback is incomplete: run `saga recover`',
    }[outcome.status];
    ctx.stderr.write(`saga: interrupted: saga ${outcome.sagaId} finished its current step; ${what}\n`);
    return signalExit;
  }
  return exitCode;
}

function unknownProduct(id: number): UsageError {
  return new UsageError(`unknown product ${id}: run \`saga inventory\` to see the products (the demo catalog has ${SEED_PRODUCTS.map((p) => p.productId).join(', ')})`);
}

function unknownCustomer(id: number): UsageError {
  return new UsageError(`unknown customer ${id}: the demo customers are ${SEED_CUSTOMERS.map((c) => c.customerId).join(', ')} (leave out --customer to use ${DEFAULT_CUSTOMER_ID})`);
}
