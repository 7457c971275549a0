import { pidAlive, recoverAbandonedSagas, type RecoveryResult } from '../../engine/recovery.js';
import { systemClock } from '../../engine/runner.js';
import { ExitCode } from '../../errors.js';
import { openApp, processOwner } from '../app.js';
import { commandLogger, type CommandContext } from '../context.js';

/**
 * `saga recover`: drive every abandoned saga to an end. Exit 0 when all it found is terminal
 * now, 4 when something is still stuck.
 */
export async function recoverCommand(flags: { json?: boolean }, ctx: CommandContext): Promise<number> {
  const app = await openApp(ctx.settings, 'never');
  const { logger, close } = commandLogger(ctx);
  try {
    const results = await recoverAbandonedSagas(app.definitions, {
      store: app.store,
      logger,
      clock: systemClock,
      random: Math.random,
      owner: processOwner(),
      leaseMs: ctx.settings.leaseMs,
      pidAlive,
    });
    const stuck = results.some((r) => r.action === 'recovered' && r.outcome.status === 'stuck');
    if (flags.json) {
      ctx.stdout.write(`${JSON.stringify({ recovered: results.map(toJson), stuck })}\n`);
    } else {
      ctx.stdout.write(render(results));
    }
    return stuck ? ExitCode.rollbackIncomplete : ExitCode.ok;
  } finally {
    close();
    await app.close();
  }
}

function toJson(r: RecoveryResult) {
  return r.action === 'recovered'
    ? { sagaId: r.sagaId, from: r.from, action: r.action, direction: r.direction, status: r.outcome.status, error: r.outcome.error ?? null }
    : { sagaId: r.sagaId, from: r.from, action: r.action };
}

function render(results: readonly RecoveryResult[]): string {
  if (results.length === 0) return 'nothing to recover: every saga is terminal\n';
  const lines = results.map((r) => {
    if (r.action !== 'recovered') {
      const why = { owned: 'skipped: its owner is alive and its lease current', 'taken-by-another': 'skipped: another recoverer took it', 'unknown-definition': 'skipped: unknown saga definition' }[r.action];
      return `${r.sagaId}  ${r.from.padEnd(12)} ${why}`;
    }
    const how = r.direction === 'forward' ? 'resumed forward' : 'rolled back';
    return `${r.sagaId}  ${r.from.padEnd(12)} ${how} -> ${r.outcome.status}${r.outcome.status === 'stuck' ? ' (still stuck: see `saga show`)' : ''}`;
  });
  return `${lines.join('\n')}\n`;
}
