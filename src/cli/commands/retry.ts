import { systemClock } from '../../engine/clock.js';
import { localMachine, processOwner } from '../../engine/process-identity.js';
import type { RecoveryDeps } from '../../engine/recovery.js';
import { ExitCode, signalExitCode, type StopSignal } from '../../errors.js';
import { retrySaga, type RetryResult } from '../../operations/retry.js';
import { openApp, type App } from '../app.js';
import { checkLogFile, commandLogger, type CommandContext } from '../context.js';
import { again, listenForInterrupts } from '../interrupt.js';

/**
 * `saga retry <id>`: drive one stuck (or abandoned) saga to an end now, with a fresh retry budget
 * for its compensations. Exit 0 when it ends completed or compensated, 4 when it is still stuck.
 */
export async function retryCommand(flags: { sagaId: string; json?: boolean }, ctx: CommandContext): Promise<number> {
  checkLogFile(ctx.settings.logFile);
  const { logger, close } = commandLogger(ctx);
  let app: App | undefined;
  // A first Ctrl-C lets the saga in hand reach an end (a rollback is not cut short); a second
  // stops at once, leaving the saga with this process's lease to `saga recover`.
  const interrupts = listenForInterrupts({
    onFirst: (sig) => ctx.stderr.write(`saga: interrupted: letting the saga being retried reach its end, then stopping; ${again(sig)} to stop now\n`),
    onSecond: (sig) => {
      ctx.stderr.write(`saga: ${sig} again: stopped at once; run \`saga recover\` to finish the saga this retry was driving\n`);
      close();
      process.exit(signalExitCode(sig as StopSignal));
    },
  });
  try {
    app = await openApp(ctx.settings, 'never');
    const owner = processOwner();
    const deps: RecoveryDeps = { store: app.store, logger, clock: systemClock, random: Math.random, owner, leaseMs: ctx.settings.leaseMs, machine: localMachine(owner) };
    const result = await retrySaga(app, flags.sagaId, deps);
    const status = result.outcome.status;
    if (flags.json) {
      ctx.stdout.write(`${JSON.stringify(retryJson(result))}\n`);
    } else {
      ctx.stdout.write(`${render(result)}\n`);
    }
    return interrupts.exitCode() ?? (status === 'stuck' ? ExitCode.rollbackIncomplete : ExitCode.ok);
  } finally {
    interrupts.dispose();
    close();
    await app?.close();
  }
}

/** The object of `saga retry --json`, also the answer of `POST /api/sagas/:id/retry`. */
export function retryJson(r: RetryResult) {
  return { sagaId: r.sagaId, from: r.from, direction: r.direction, status: r.outcome.status, error: r.outcome.error ?? null };
}

function render(r: RetryResult): string {
  const how = r.direction === 'forward' ? 'resumed forward' : 'rolled back';
  const head = `saga ${r.sagaId}  ${r.from} -> ${how} -> ${r.outcome.status}`;
  if (r.outcome.status !== 'stuck') return head;
  return `${head}: a compensation still fails; fix the cause, then run \`saga retry ${r.sagaId}\` again (\`saga show ${r.sagaId}\` shows the errors)`;
}
