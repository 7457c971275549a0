import type { SagaStatus } from '../../engine/store.js';
import { ExitCode } from '../../errors.js';
import { listSagas, type SagaListRow } from '../../store/read-models.js';
import { openApp } from '../app.js';
import { outputWidth, type CommandContext } from '../context.js';
import type { ChalkInstance } from 'chalk';
import { chalkFor, fitWidth, formatDuration, formatTime, paintStatus, table } from '../output/format.js';

/** `saga list`: the most recent sagas, one line each. */
export async function listCommand(flags: { status?: SagaStatus; limit?: number; json?: boolean }, ctx: CommandContext): Promise<number> {
  const app = await openApp(ctx.settings, 'read-only');
  try {
    const rows = await listSagas(app.db, { limit: flags.limit ?? 20, ...(flags.status === undefined ? {} : { status: flags.status }) });
    const now = Date.now();
    if (flags.json) {
      const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
      ctx.stdout.write(`${JSON.stringify(rows.map((r) => ({ ...r, createdAt: iso(r.createdAt), endedAt: iso(r.endedAt), leaseUntil: iso(r.leaseUntil), durationMs: duration(r, now) })))}\n`);
      return ExitCode.ok;
    }
    if (rows.length === 0) {
      ctx.stdout.write(flags.status === undefined ? 'no sagas yet: run `saga checkout --product 101 --qty 1`\n' : `no ${flags.status} sagas\n`);
      return ExitCode.ok;
    }
    const c = chalkFor(ctx.color);
    const width = outputWidth(ctx);
    const full = renderList(rows, now, c, 'full');
    if (width === undefined || full.every((line) => visibleLength(line) <= width)) {
      ctx.stdout.write(`${full.join('\n')}\n`);
      return ExitCode.ok;
    }
    // Too wide for the terminal: the short ids the log lines use (\`saga show\` takes them), times
    // to the second, then whatever still does not fit is cut.
    ctx.stdout.write(`${renderList(rows, now, c, 'compact').map((line) => fitWidth(line, width)).join('\n')}\n`);
    return ExitCode.ok;
  } finally {
    await app.close();
  }
}

function duration(r: SagaListRow, now: number): number {
  return (r.endedAt ?? now) - r.createdAt;
}

function renderList(rows: readonly SagaListRow[], now: number, c: ChalkInstance, layout: 'full' | 'compact'): string[] {
  const compact = layout === 'compact';
  const lines = rows.map((r) => [
    compact ? shortSagaId(r.sagaId) : r.sagaId,
    compact ? formatTime(r.createdAt).slice(5, 19) : formatTime(r.createdAt),
    r.damage !== null ? c.red('damaged') : r.productId === null ? '-' : `${r.qty} × ${r.productId}`,
    paintStatus(c, r.status, compact ? 0 : 12),
    r.damage !== null ? c.red(compact ? 'damaged: see `saga show`' : 'damaged row: see `saga show`') : r.failedStep === null ? '' : c.red(compact ? r.failedStep : `failed at ${r.failedStep}`),
    formatDuration(duration(r, now)),
  ]);
  const header = ['SAGA', 'CREATED (UTC)', 'ITEMS', 'STATUS', compact ? 'FAILED AT' : 'FAILED', 'TOOK'];
  return table([header.map((h) => c.dim(h)), ...lines]).split('\n');
}

/** The last 8 characters: the random end of a saga id, as log lines print it. */
function shortSagaId(sagaId: string): string {
  return sagaId.slice(-8);
}

function visibleLength(line: string): number {
  return [...line.replace(/\x1b\[[0-9;]*m/g, '')].length;
}
