import { ExitCode, signalExitCode, UsageError, type StopSignal } from '../../errors.js';
import { pruneSagas, vacuumSagaLog, type PruneReport } from '../../store/prune.js';
import { openApp, type App } from '../app.js';
import { checkLogFile, commandLogger, type CommandContext } from '../context.js';
import { again, listenForInterrupts } from '../interrupt.js';
import { formatTime } from '../output/format.js';

export interface PruneFlags {
  /** Milliseconds (parsed from `30d`, `12h`, `90m`, `45s`). */
  readonly olderThan: number;
  readonly dryRun?: boolean;
  readonly vacuum?: boolean;
  readonly json?: boolean;
}

/**
 * `saga prune --older-than <duration>`: deletes the log of terminal sagas that ended before then,
 * in batches (store/prune.ts); `--vacuum` gives the space back. Business rows are never touched,
 * and `saga verify` stays clean (it knows which sagas were pruned).
 */
export async function pruneCommand(flags: PruneFlags, ctx: CommandContext): Promise<number> {
  if (flags.dryRun && flags.vacuum) throw new UsageError('--vacuum does nothing with --dry-run (nothing is deleted): leave one of them out', 'conflicting_options');
  checkLogFile(ctx.settings.logFile);
  const { logger, close } = commandLogger(ctx, { console: false });
  let app: App | undefined;
  // Every batch is a whole transaction: a signal stops between two batches.
  const interrupts = listenForInterrupts({
    onFirst: (sig) => ctx.stderr.write(`saga: interrupted: stopping after the batch in hand; ${again(sig)} to stop now\n`),
    onSecond: (sig) => {
      ctx.stderr.write(`saga: ${sig} again: stopped at once; every batch already deleted is whole, run \`saga prune\` again to finish\n`);
      process.exit(signalExitCode(sig as StopSignal));
    },
  });
  try {
    app = await openApp(ctx.settings, 'never');
    const now = Date.now();
    const endedBefore = now - flags.olderThan;
    const report = await pruneSagas(app.db, { endedBefore, now, dryRun: flags.dryRun === true, signal: interrupts.signal });
    const removed = report.sagas.completed + report.sagas.compensated;
    if (!flags.dryRun && removed > 0) {
      logger.info(
        { event: 'pruned', endedBefore, sagas: removed, completed: report.sagas.completed, compensated: report.sagas.compensated, events: report.events, takeOvers: report.takeOvers, batches: report.batches },
        `pruned the log of ${removed} saga(s) that ended before ${new Date(endedBefore).toISOString()}`,
      );
    }
    const vacuumed = flags.vacuum === true && !report.stopped;
    if (vacuumed) await vacuumSagaLog(app.db);
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    if (flags.json) {
      ctx.stdout.write(`${JSON.stringify({
        dryRun: flags.dryRun === true,
        endedBefore: iso(endedBefore),
        sagas: report.sagas,
        events: report.events,
        takeOvers: report.takeOvers,
        batches: report.batches,
        oldestEndedAt: iso(report.oldestEndedAt),
        newestEndedAt: iso(report.newestEndedAt),
        vacuumed,
        stopped: report.stopped,
      })}\n`);
    } else {
      ctx.stdout.write(render(report, endedBefore, flags, vacuumed, app.db.label));
    }
    if (report.stopped) {
      ctx.stderr.write(`saga: interrupted: stopped after ${report.batches} batch(es); what was deleted is whole, run \`saga prune\` again to finish\n`);
      return interrupts.exitCode() ?? ExitCode.sigint;
    }
    return ExitCode.ok;
  } finally {
    interrupts.dispose();
    close();
    await app?.close();
  }
}

function render(r: PruneReport, endedBefore: number, flags: PruneFlags, vacuumed: boolean, label: string): string {
  const n = r.sagas.completed + r.sagas.compensated;
  const cutoff = `${formatTime(endedBefore)} UTC`;
  if (n === 0) return `nothing to prune: no saga in ${label} ended before ${cutoff}${vacuumed ? '; vacuumed the saga log' : ''}\n`;
  const what = `the log of ${n} saga(s) that ended before ${cutoff} (${r.sagas.completed} completed, ${r.sagas.compensated} compensated): ${r.events} event(s), ${r.takeOvers} take-over(s)`;
  const lines = flags.dryRun
    ? [`would prune ${what}`, 'dry run: nothing was deleted']
    : [`pruned ${what}, in ${r.batches} batch(es)`, 'kept every order, payment, shipment, reservation and provider entry'];
  if (vacuumed) lines.push(`vacuumed the saga log of ${label}`);
  return `${lines.join('\n')}\n`;
}
