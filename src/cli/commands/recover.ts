import { localMachine, processOwner } from '../../engine/process-identity.js';
import { recoverAbandonedSagas, type RecoveryDeps, type RecoveryResult } from '../../engine/recovery.js';
import { runRecoveryLoop } from '../../engine/recovery-loop.js';
import { systemClock } from '../../engine/clock.js';
import { ExitCode, signalExitCode, UsageError, type StopSignal } from '../../errors.js';
import { openApp, type App } from '../app.js';
import { checkLogFile, commandLogger, lockWaitNotice, type CommandContext } from '../context.js';
import { again, listenForInterrupts } from '../interrupt.js';
import { loadTracing, type Tracing } from '../../telemetry/load.js';

export interface RecoverFlags {
  readonly json?: boolean;
  readonly watch?: boolean;
  readonly interval?: number;
}

/**
 * `saga recover`: drive every abandoned saga to an end. Exit 0 when all it found is terminal
 * now (or still driven by a live owner), 4 when something is left neither done nor undone: still
 * stuck, or abandoned and impossible to drive here (a damaged row, an unknown definition). With `--watch`, the recovery daemon of the Sagas paper:
 * it keeps recovering sagas as their owners die or their leases expire, until Ctrl-C or SIGTERM.
 */
export async function recoverCommand(flags: RecoverFlags, ctx: CommandContext): Promise<number> {
  if (flags.interval !== undefined && !flags.watch) throw new UsageError('--interval goes with --watch: add --watch, or leave --interval out', 'conflicting_options');
  checkLogFile(ctx.settings.logFile);
  const { logger, close } = commandLogger(ctx);
  let app: App;
  let tracing: Tracing | undefined;
  try {
    app = await openApp(ctx.settings, 'never', undefined, undefined, lockWaitNotice(ctx));
    tracing = await loadTracing(ctx.sources.env, (line) => ctx.stderr.write(`saga: ${line}\n`));
  } catch (err) {
    close();
    throw err;
  }
  const owner = processOwner();
  const deps: RecoveryDeps = {
    store: app.store, logger, clock: systemClock, random: Math.random, owner, leaseMs: ctx.settings.leaseMs, machine: localMachine(owner),
    ...(tracing === undefined ? {} : { tracer: tracing.tracer }),
  };
  try {
    if (flags.watch) app.checkpointInBackground();
    if (flags.watch) return await watch(flags, ctx, deps, app.definitions, logger);
    const results = await recoverAbandonedSagas(app.definitions, deps);
    for (const r of results) logSkipped(r, logger);
    const stuck = results.some(leftUnfinished);
    if (flags.json) ctx.stdout.write(`${JSON.stringify({ recovered: results.map(toJson), stuck })}\n`);
    else ctx.stdout.write(results.length === 0 ? 'nothing to recover: every saga is terminal\n' : `${results.map(render).join('\n')}\n`);
    return stuck ? ExitCode.rollbackIncomplete : ExitCode.ok;
  } finally {
    await tracing?.shutdown();
    close();
    await app.close();
  }
}

async function watch(flags: RecoverFlags, ctx: CommandContext, deps: RecoveryDeps, definitions: Parameters<typeof recoverAbandonedSagas>[0], logger: RecoveryDeps['logger']): Promise<number> {
  const interval = flags.interval ?? 1000;
  // The first signal lets the saga in hand reach its end, then stops; a second stops at once
  // (a saga it was driving keeps its lease and is recovered like any other).
  let passing = false;
  const interrupts = listenForInterrupts({
    onFirst: (sig) => ctx.stderr.write(passing
      ? `saga: interrupted: finishing the saga being recovered, then stopping; ${again(sig)} to stop now\n`
      : 'saga: interrupted: stopping\n'),
    onSecond: (sig) => {
      ctx.stderr.write(`saga: ${sig} again: stopped at once; run \`saga recover\` to finish what this watcher was driving\n`);
      process.exit(signalExitCode(sig as StopSignal));
    },
  });
  logger.info({ event: 'watching', intervalMs: interval, owner: deps.owner.id }, `recovering abandoned sagas every ${interval} ms until Ctrl-C or SIGTERM`);
  try {
    await runRecoveryLoop(definitions, deps, {
      intervalMs: interval,
      signal: interrupts.signal,
      onPass: (running) => (passing = running),
      onResult: (r) => {
        if (r.action === 'owned') return;
        logSkipped(r, logger);
        ctx.stdout.write(`${flags.json ? JSON.stringify(toJson(r)) : render(r)}\n`);
      },
    });
    logger.info({ event: 'stopped', signal: String(interrupts.signal.reason) }, `stopped watching (${String(interrupts.signal.reason)})`);
    return ExitCode.ok;
  } finally {
    interrupts.dispose();
  }
}

/** Still neither done nor undone after this run: `saga recover` exits 4. */
function leftUnfinished(r: RecoveryResult): boolean {
  return (r.action === 'recovered' && r.outcome.status === 'stuck') || r.action === 'failed' || r.action === 'damaged' || r.action === 'unknown-definition';
}

function logSkipped(r: RecoveryResult, logger: RecoveryDeps['logger']): void {
  if (r.action !== 'damaged' && r.action !== 'unknown-definition') return;
  logger.error({ sagaId: r.sagaId, event: 'recover-skipped', reason: r.action, err: { message: r.error } }, `cannot recover saga ${r.sagaId}: ${r.error}; ${whatToDo(r)}`);
}

function whatToDo(r: RecoveryResult): string {
  return r.action === 'unknown-definition'
    ? 'run `saga recover` with the saga version that started it'
    : `repair its input (or restore the row from a backup), then run \`saga recover\` (see \`saga show ${r.sagaId}\`)`;
}

function toJson(r: RecoveryResult) {
  return r.action === 'recovered'
    ? { sagaId: r.sagaId, from: r.from, action: r.action, direction: r.direction, status: r.outcome.status, error: r.outcome.error ?? null }
    : { sagaId: r.sagaId, from: r.from, action: r.action, ...('error' in r ? { error: r.error } : {}) };
}

function render(r: RecoveryResult): string {
  if (r.action === 'failed') return `${r.sagaId}  ${r.from.padEnd(12)} could not be recovered: ${r.error}`;
  if (r.action === 'damaged' || r.action === 'unknown-definition') return `${r.sagaId}  ${r.from.padEnd(12)} skipped, left ${r.from}: ${r.error}; ${whatToDo(r)}`;
  if (r.action !== 'recovered') {
    const why = { owned: 'skipped: its owner may be alive and its lease is current', 'taken-by-another': 'skipped: another recoverer took it' }[r.action];
    return `${r.sagaId}  ${r.from.padEnd(12)} ${why}`;
  }
  const how = r.direction === 'forward' ? 'resumed forward' : 'rolled back';
  return `${r.sagaId}  ${r.from.padEnd(12)} ${how} -> ${r.outcome.status}${r.outcome.status === 'stuck' ? ' (still stuck: see `saga show`)' : ''}`;
}
