import { newSagaId } from '../../engine/saga-id.js';
import { faultInjector, killProcess } from '../../engine/faults.js';
import { IdempotencyConflictError, SagaUndrivableError, SagaVanishedError, WaitInterruptedError } from '../../engine/run-once.js';
import type { SagaOutcome } from '../../engine/runner.js';
import { DatabaseFailedError, ExitCode, exitCodeOfStatus, SagaError, signalExitCode, UsageError, type StopSignal } from '../../errors.js';
import { databaseTrouble } from '../../store/db-errors.js';
import { processOwner } from '../../engine/process-identity.js';
import { openApp } from '../app.js';
import { checkLogFile, commandLogger, lockWaitNotice, type CommandContext } from '../context.js';
import { again, listenForInterrupts } from '../interrupt.js';
import { sagaProgress } from '../saga-progress.js';
import { describeInjected, resolveFaultSettings, unfireableCompensationFault } from '../settings.js';
import { loadTracing } from '../../telemetry/load.js';
import { renderCheckoutReport, type CheckoutReport } from '../output/checkout-report.js';
import { checkCatalogIds, checkoutInput, runCheckout } from '../run-checkout.js';

export interface CheckoutFlags {
  readonly product: number;
  readonly qty: number;
  readonly customer?: number;
  readonly key?: string;
  readonly json?: boolean;
}

/** `saga checkout`: one checkout saga. Returns the exit code. */
export async function checkoutCommand(flags: CheckoutFlags, ctx: CommandContext): Promise<number> {
  const { plan: faults, injected } = resolveFaultSettings(ctx.sources);
  checkLogFile(ctx.settings.logFile);
  // A new user's first command creates the database; bad input must not, so check it against
  // the catalog that is about to be loaded.
  // --fail-mode crash is a real SIGKILL; one line first, so the exit code 137 is not a mystery.
  let crashing = 'the saga';
  const injector = faultInjector(faults, (point) => {
    ctx.stderr.write(`saga: crashing at ${point} as asked (a SIGKILL, exit 137): \`saga recover\` finishes ${crashing}\n`);
    return killProcess();
  });
  const app = await openApp(
    ctx.settings,
    'if-missing',
    () => checkCatalogIds(flags.product, flags.customer),
    injector,
    lockWaitNotice(ctx),
  );
  try {
    if (app.created) ctx.stderr.write(`saga: no database at ${app.db.label}; created it and loaded the demo catalog\n`);
    const request = { productId: flags.product, qty: flags.qty, ...(flags.customer === undefined ? {} : { customerId: flags.customer }), ...(flags.key === undefined ? {} : { idempotencyKey: flags.key }) };
    const prepared = await checkoutInput(app, request);

    // A fault set in .env or the environment and forgotten fails every checkout: say where it was
    // set. One asked for by a flag on this very command line needs no such reminder.
    for (const fault of injected) if (!fault.from.every((f) => f.startsWith('--'))) ctx.stderr.write(`saga: ${describeInjected(fault)}\n`);
    const unfireable = unfireableCompensationFault(faults);
    if (unfireable !== undefined) ctx.stderr.write(`saga: ${unfireable}\n`);
    const { logger, close } = commandLogger(ctx);
    const tracing = await loadTracing(ctx.sources.env, (line) => ctx.stderr.write(`saga: ${line}\n`));
    const def = app.checkout;
    const progress = sagaProgress(logger, {
      steps: def.steps.map((s) => s.name),
      timeoutOf: (name) => def.steps.find((s) => s.name === name)?.timeoutMs ?? def.timeoutMs,
    });
    let sagaId = newSagaId();
    crashing = `saga ${sagaId}`;
    const interrupts = listenForInterrupts({
      onFirst: (sig) => {
        const what = progress.describe();
        if (what !== undefined) ctx.stderr.write(`saga: interrupted: ${what}; ${again(sig)} to stop now\n`);
      },
      onSecond: (sig) => {
        // Recovery decides from the log alone: a saga with no failed step recorded yet is driven
        // forward (it may still charge and ship), one with a failure is rolled back. Say so.
        ctx.stderr.write(`saga: ${sig} again: stopped at once; saga ${sagaId} is left to recovery: \`saga recover\` finishes it, forward (charging and shipping) unless a step had already failed, in which case it rolls back\n`);
        close();
        process.exit(signalExitCode(sig as StopSignal));
      },
    });
    // Whether the saga's first record committed: then a failing database loses nothing of it.
    let recorded = false;
    try {
      const { report: done, outcome } = await runCheckout(app, request, { logger: progress.logger, owner: processOwner(), leaseMs: ctx.settings.leaseMs, faults: injector, ...(tracing === undefined ? {} : { tracer: tracing.tracer }) }, {
        sagaId,
        signal: interrupts.signal,
        // A script or CI job that is itself traced hands its context down this way (OpenTelemetry's
        // environment-variable carrier), so its trace includes the saga.
        ...(ctx.sources.env.TRACEPARENT === undefined ? {} : { traceParent: ctx.sources.env.TRACEPARENT }),
        onWaiting: (id) => {
          progress.waitingFor(id);
          ctx.stderr.write(`saga: --key ${flags.key} belongs to saga ${id}, which another process is driving; waiting for its outcome (Ctrl-C stops waiting, not the saga)\n`);
        },
        onTakenOver: (id) => {
          progress.waitingFor(id);
          ctx.stderr.write(`saga: saga ${id} was taken over by another process while this one was stalled; waiting for its outcome\n`);
        },
        onSaga: (id) => {
          sagaId = id;
          crashing = `saga ${id}`;
        },
        onRecorded: () => (recorded = true),
      }, prepared).catch((err: unknown) => explain(err, interrupts.exitCode(), sagaId, recorded));
      const report = { ...done, interrupted: outcome.interrupted || interrupts.exitCode() !== undefined, ...(injected.length === 0 ? {} : { injectedFaults: injected }) };
      return finish(report, outcome, interrupts.exitCode(), flags, ctx);
    } finally {
      interrupts.dispose();
      // After the report: the user has the answer while the spans go out (bounded, see telemetry/).
      await tracing?.shutdown();
      close();
    }
  } finally {
    await app.close();
  }
}

/** The engine's word for what went wrong, as the user's. */
function explain(err: unknown, interruptedExitCode: ExitCode | undefined, sagaId: string, recorded: boolean): never {
  const trouble = databaseTrouble(err);
  if (trouble !== undefined) {
    // Every step's outcome is committed before the next begins: a recorded saga loses nothing,
    // it only pauses. One whose first commit failed may or may not be in the database.
    throw new DatabaseFailedError(
      recorded
        ? `the database failed during saga ${sagaId} (${trouble}): once it is back, \`saga recover\` will finish the saga`
        : `the database failed as saga ${sagaId} was starting (${trouble}): once it is back, \`saga show ${sagaId}\` tells whether it was recorded; if it was, \`saga recover\` will finish it, if not, nothing was changed`,
    );
  }
  if (err instanceof IdempotencyConflictError) {
    throw new UsageError(`--key ${err.key} was already used for another checkout (${err.previousRequest?.replaceAll(';', ', ')}): use a new key for a new checkout`, 'key_conflict');
  }
  if (err instanceof SagaVanishedError) throw new SagaError('saga_vanished', err.message);
  // The earlier saga of this key is left as it was: neither done nor undone, like a stuck one.
  if (err instanceof SagaUndrivableError) throw new SagaError('saga_undrivable', err.message);
  if (err instanceof WaitInterruptedError) throw new SagaError('interrupted', `interrupted: ${err.message}`, interruptedExitCode ?? ExitCode.sigint);
  throw err;
}

function finish(report: CheckoutReport, outcome: SagaOutcome, signalExit: number | undefined, flags: CheckoutFlags, ctx: CommandContext): number {
  const exitCode = exitCodeOfStatus(outcome.status);
  if (flags.json) ctx.stdout.write(`${JSON.stringify(report)}\n`);
  else ctx.stdout.write(renderCheckoutReport(report, ctx.color));
  // Said on stderr too, so a script reading only the exit code (3) and stderr knows why.
  if (report.cancelled !== null && signalExit === undefined) {
    ctx.stderr.write(`saga: saga ${outcome.sagaId} was cancelled by ${report.cancelled.by} at ${report.cancelled.at}: ${outcome.status === 'stuck' ? 'its rollback is incomplete: run `saga retry ' + outcome.sagaId + '`' : 'it was rolled back'}\n`);
  }
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
