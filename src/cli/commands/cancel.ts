import { operatorName } from '../../engine/operator.js';
import { localMachine } from '../../engine/process-identity.js';
import { ExitCode } from '../../errors.js';
import { cancelSaga, type CancelResult } from '../../operations/cancel.js';
import { openApp, type App } from '../app.js';
import { checkLogFile, commandLogger, type CommandContext } from '../context.js';
import { formatTime } from '../output/format.js';

/**
 * `saga cancel <id>`: records a cancel request for a running saga and says who will roll it
 * back; it does not wait for the rollback (`saga show` follows it). Exit 0 when the saga will not
 * complete (cancel recorded now or before, or already rolling back), 2 when it already ended.
 */
export async function cancelCommand(flags: { sagaId: string; json?: boolean }, ctx: CommandContext): Promise<number> {
  checkLogFile(ctx.settings.logFile);
  const { logger, close } = commandLogger(ctx, { console: false });
  let app: App | undefined;
  try {
    app = await openApp(ctx.settings, 'never');
    const result = await cancelSaga(app, flags.sagaId, { by: operatorName(ctx.sources.env), now: Date.now(), machine: localMachine(), logger });
    if (flags.json) {
      ctx.stdout.write(`${JSON.stringify(cancelJson(result))}\n`);
    } else {
      ctx.stdout.write(`${render(result)}\n`);
    }
    return ExitCode.ok;
  } finally {
    close();
    await app?.close();
  }
}

/** The object of `saga cancel --json`, also the answer of `POST /api/sagas/:id/cancel`. */
export function cancelJson(r: CancelResult) {
  return { ...r, cancelRequestedAt: r.cancelRequestedAt === null ? null : new Date(r.cancelRequestedAt).toISOString() };
}

function render(r: CancelResult): string {
  const who = `by ${r.cancelRequestedBy ?? 'unknown'} at ${r.cancelRequestedAt === null ? '?' : formatTime(r.cancelRequestedAt)} UTC`;
  const next = r.ownerAlive
    ? `its owner rolls it back before its next step; \`saga show ${r.sagaId}\` follows it`
    : 'its owner is gone: `saga recover` rolls it back';
  if (r.outcome === 'recorded') return `cancel of saga ${r.sagaId} recorded (${who}): ${next}`;
  if (r.outcome === 'already-requested') return `saga ${r.sagaId} already has a cancel request (${who}): ${next}`;
  if (r.status === 'stuck') {
    return `saga ${r.sagaId} is stuck: its rollback already ran and a compensation keeps failing, so it will not complete; fix the cause, then run \`saga retry ${r.sagaId}\``;
  }
  return `saga ${r.sagaId} is already rolling back (compensating), so it will not complete: nothing to cancel; ${r.ownerAlive ? `\`saga show ${r.sagaId}\` follows it` : 'its owner is gone: `saga recover` finishes it'}`;
}
