import type { SagaStatus } from '../../engine/store.js';
import { ExitCode } from '../../errors.js';
import { listSagas, type SagaListRow } from '../../store/read-models.js';
import { openApp } from '../app.js';
import type { CommandContext } from '../context.js';
import { chalkFor, formatDuration, formatTime, paintStatus, table } from '../output/format.js';

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
    const lines = rows.map((r) => [
      r.sagaId,
      formatTime(r.createdAt),
      r.damage !== null ? c.red('damaged') : r.productId === null ? '-' : `${r.qty} × ${r.productId}`,
      paintStatus(c, r.status),
      r.damage !== null ? c.red('damaged row: see `saga show`') : r.failedStep === null ? '' : c.red(`failed at ${r.failedStep}`),
      formatDuration(duration(r, now)),
    ]);
    ctx.stdout.write(`${table([['SAGA', 'CREATED (UTC)', 'ITEMS', 'STATUS', 'FAILED', 'TOOK'].map((h) => c.dim(h)), ...lines])}\n`);
    return ExitCode.ok;
  } finally {
    await app.close();
  }
}

function duration(r: SagaListRow, now: number): number {
  return (r.endedAt ?? now) - r.createdAt;
}
