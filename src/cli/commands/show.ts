import { checkoutRows, formatMoney, type CheckoutRows } from '../../checkout/queries.js';
import { ExitCode } from '../../errors.js';
import type { SagaRecord, StepEvent, TakeOver } from '../../engine/store.js';
import { requireSaga } from '../../operations/find-saga.js';
import { openApp } from '../app.js';
import type { CommandContext } from '../context.js';
import { chalkFor, formatDuration, formatTime, paintStatus } from '../output/format.js';
import { renderTimeline } from '../output/timeline.js';

/** `saga show <sagaId>`: the saga's timeline from the log, its input and the rows it produced. */
export async function showCommand(flags: { sagaId: string; json?: boolean }, ctx: CommandContext): Promise<number> {
  const app = await openApp(ctx.settings, 'read-only');
  try {
    const saga = await requireSaga(app, flags.sagaId);
    const events = await app.store.getEvents(saga.sagaId);
    const takeOvers = await app.store.getTakeOvers(saga.sagaId);
    const rows = await checkoutRows(app.db, saga.sagaId);
    if (flags.json) {
      ctx.stdout.write(`${JSON.stringify(showJson(saga, events, takeOvers, rows))}\n`);
      return ExitCode.ok;
    }
    const c = chalkFor(ctx.color);
    const input = (saga.input ?? {}) as { productId?: number; qty?: number; customerId?: number; amountCents?: number };
    const lines = [
      `${c.bold(`saga ${saga.sagaId}`)}  ${paintStatus(c, saga.status, 0)}  ${c.dim(saga.definition)}${saga.damage === null ? '' : `  ${c.red('damaged')}`}`,
      `  created ${formatTime(saga.createdAt)} UTC, took ${formatDuration((saga.endedAt ?? Date.now()) - saga.createdAt)}${saga.endedAt === null ? ' so far' : ''}`,
      saga.damage === null
        ? `  input   ${input.qty} × product ${input.productId} for customer ${input.customerId}${input.amountCents === undefined ? '' : `, ${formatMoney(input.amountCents)}`}`
        : `  input   ${c.red(`damaged: ${saga.damage}`)}`,
    ];
    if (saga.error !== null) lines.push(`  error   ${c.red(saga.error)}`);
    // Who asked for a cancel and when; whether it won is the status (a completed saga never has one).
    if (saga.cancelRequestedAt !== null) lines.push(`  cancel  requested by ${saga.cancelRequestedBy ?? 'unknown'} at ${formatTime(saga.cancelRequestedAt)} UTC`);
    if (saga.ownerId !== null) lines.push(`  owner   ${saga.ownerId}, lease until ${saga.leaseUntil === null ? '-' : `${formatTime(saga.leaseUntil)} UTC`}`);
    lines.push('', renderTimeline(events, saga.createdAt, c, takeOvers), '');
    lines.push(`  stock    ${rows.reservation ? `${rows.reservation.qty} ${rows.reservation.status}` : '-'}`);
    lines.push(`  payment  ${rows.payment ? `#${rows.payment.paymentId} ${formatMoney(rows.payment.amountCents)} ${rows.payment.status}` : '-'}`);
    lines.push(`  order    ${rows.order ? `#${rows.order.orderId} ${rows.order.status}` : '-'}`);
    lines.push(`  shipment ${rows.shipment ? `#${rows.shipment.shipmentId} ${rows.shipment.status}` : '-'}`);
    if (saga.damage !== null) lines.push('', c.red('  damaged: recovery cannot drive this saga; repair its input (or restore the row from a backup), then run `saga recover`'));
    else if (saga.status === 'stuck') lines.push('', c.red(`  stuck: fix the cause, then run \`saga retry ${saga.sagaId}\` (or \`saga recover\`) to retry the failed compensation`));
    ctx.stdout.write(`${lines.join('\n')}\n`);
    return ExitCode.ok;
  } finally {
    await app.close();
  }
}

/** The one JSON object of `saga show --json` (and of `GET /api/sagas/:id`). */
export function showJson(saga: SagaRecord, events: readonly StepEvent[], takeOvers: readonly TakeOver[], rows: CheckoutRows) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  // The stored trace context is not part of the documented JSON shape (yet); docs/traces.md says where trace ids are.
  const { traceContext: _traceContext, ...record } = saga;
  return {
    ...record,
    input: saga.input ?? null,
    createdAt: iso(saga.createdAt),
    updatedAt: iso(saga.updatedAt),
    endedAt: iso(saga.endedAt),
    leaseUntil: iso(saga.leaseUntil),
    cancelRequestedAt: iso(saga.cancelRequestedAt),
    events: events.map((e) => ({ ...e, at: iso(e.at) })),
    takeOvers: takeOvers.map((t) => ({ ...t, at: iso(t.at), previousOwner: { ...t.previousOwner, leaseUntil: iso(t.previousOwner.leaseUntil) } })),
    ...rows,
  };
}
