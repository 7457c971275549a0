import { checkInvariants, prunedLogs } from '../../checkout/invariants.js';
import { localMachine } from '../../engine/process-identity.js';
import { ExitCode } from '../../errors.js';
import { openApp } from '../app.js';
import type { CommandContext } from '../context.js';
import { chalkFor, formatTime, withIsoTimes, withReadableTimes } from '../output/format.js';

/** `saga verify`: every invariant of docs/guarantees.md over the whole database. Exit 5 on any violation. */
export async function verifyCommand(flags: { json?: boolean }, ctx: CommandContext): Promise<number> {
  const app = await openApp(ctx.settings, 'read-only');
  try {
    const violations = await checkInvariants(app.db, { now: Date.now(), machine: localMachine() });
    const sagas = (await app.db.get<{ n: number }>('SELECT count(*) AS n FROM sagas'))?.n ?? 0;
    const pruned = await prunedLogs(app.db);
    // What it could no longer check: the logs `saga prune` removed (their rows are still checked).
    const prunedNote = pruned.sagas === 0 || pruned.endedBefore === null
      ? ''
      : `  the log of ${pruned.sagas} pruned saga(s), which ended before ${formatTime(pruned.endedBefore)} UTC, is gone: their rows were checked against each other and the provider, not against their log\n`;
    if (flags.json) {
      const prunedJson = pruned.endedBefore === null ? null : { sagas: pruned.sagas, endedBefore: new Date(pruned.endedBefore).toISOString() };
      ctx.stdout.write(`${JSON.stringify({ ok: violations.length === 0, sagas, pruned: prunedJson, violations: violations.map((v) => ({ ...v, rows: v.rows.map(withIsoTimes) })) })}\n`);
    } else if (violations.length === 0) {
      ctx.stdout.write(`${chalkFor(ctx.color).green('✔')} all invariants hold over ${sagas} saga(s): stock conserved, no charge without cause, no shipment for a cancelled order, every saga terminal, stuck or owned\n${prunedNote}`);
    } else {
      const c = chalkFor(ctx.color);
      const lines = violations.map((v) => `${c.red('✖')} ${c.bold(v.invariant)}: ${v.message}\n    ${c.dim(JSON.stringify(v.rows.map(withReadableTimes)))}`);
      ctx.stdout.write(`${lines.join('\n')}\n${c.red(`${violations.length} violation(s) over ${sagas} saga(s)`)}\n${prunedNote}`);
    }
    return violations.length === 0 ? ExitCode.ok : ExitCode.violations;
  } finally {
    await app.close();
  }
}
