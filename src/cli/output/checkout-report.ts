import { Chalk } from 'chalk';
import type { CheckoutInput } from '../../checkout/checkout-saga.js';
import { CHECKOUT_STEPS } from '../../checkout/checkout-saga.js';
import { checkoutRows, formatMoney, type CheckoutRows } from '../../checkout/queries.js';
import type { SagaOutcome } from '../../engine/runner.js';
import { stepOutcome, type StepOutcome } from '../../engine/step-state.js';
import type { SqlDatabase } from '../../store/sql.js';

/** The facts `checkout` reports: printed as a summary, or as the one JSON object of `--json`. */
export interface CheckoutReport extends CheckoutRows {
  readonly sagaId: string;
  readonly status: SagaOutcome['status'];
  /** True when `--key` matched an earlier checkout and this run did nothing new. */
  readonly replayed: boolean;
  readonly interrupted: boolean;
  /** Rolled back because `saga cancel` asked for it: who asked and when (ISO 8601), else null. */
  readonly cancelled: { readonly by: string; readonly at: string } | null;
  readonly product: { readonly id: number; readonly name: string };
  readonly qty: number;
  readonly customerId: number;
  readonly amountCents: number;
  readonly failedStep: string | null;
  readonly error: string | null;
  readonly steps: readonly { name: string; status: StepOutcome; attempts: number; compensationAttempts: number }[];
  readonly durationMs: number;
}

export async function checkoutReport(db: SqlDatabase, outcome: SagaOutcome, input: CheckoutInput, productName: string, durationMs: number, replayed: boolean): Promise<CheckoutReport> {
  return {
    sagaId: outcome.sagaId,
    status: outcome.status,
    replayed,
    interrupted: outcome.interrupted,
    cancelled: outcome.cancelled === undefined ? null : { by: outcome.cancelled.by, at: new Date(outcome.cancelled.at).toISOString() },
    product: { id: input.productId, name: productName },
    qty: input.qty,
    customerId: input.customerId,
    amountCents: input.amountCents,
    failedStep: outcome.failedStep ?? null,
    error: outcome.error ?? null,
    steps: outcome.steps.map((s, i) => ({ name: CHECKOUT_STEPS[i] ?? `step ${i}`, status: stepOutcome(s), attempts: s.actionAttempts, compensationAttempts: s.compensationAttempts })),
    ...(await checkoutRows(db, outcome.sagaId)),
    durationMs,
  };
}

export function renderCheckoutReport(r: CheckoutReport, color: boolean): string {
  const c = new Chalk({ level: color ? 1 : 0 });
  const what = `${r.qty} × ${r.product.name} (product ${r.product.id}) for ${formatMoney(r.amountCents)}, customer ${r.customerId}`;
  const headline =
    r.status === 'completed'
      ? c.green.bold(`✔ checkout completed: ${what}`)
      : r.status === 'compensated'
        ? c.yellow.bold(`✖ checkout rolled back: ${r.error ?? 'failed'}`)
        : c.red.bold(`‼ checkout STUCK, rollback incomplete: ${r.error ?? 'a compensation failed'}`);
  const lines = [headline, `  saga ${r.sagaId}${r.replayed ? c.dim(' (same --key as an earlier run: nothing new was done)') : ''}`];
  for (const s of r.steps) {
    const paint = s.status === 'succeeded' ? c.green : s.status === 'compensated' ? c.yellow : s.status === 'not-run' ? c.dim : c.red;
    const tries = triesNote(s);
    lines.push(`  ${s.name.padEnd(10)} ${paint(s.status.padEnd(20))}${detail(s.name, r)}${tries === '' ? '' : c.dim(` (${tries})`)}`.trimEnd());
  }
  if (r.status === 'compensated') lines.push(c.dim(`  ${undoneSentence(r)}`));
  if (r.status === 'stuck') lines.push(c.red(`  Fix the cause, then run \`saga retry ${r.sagaId}\` (or \`saga recover\`) to retry the failed compensation; \`saga show ${r.sagaId}\` shows what happened.`));
  return `${lines.join('\n')}\n`;
}

/** What each step does and what undoes it, so a count of attempts says which of the two it counts. */
const VERBS: Record<string, { readonly action: string; readonly compensation: string }> = {
  inventory: { action: 'reserve', compensation: 'release' },
  payment: { action: 'charge', compensation: 'refund' },
  order: { action: 'confirm', compensation: 'cancel' },
  shipping: { action: 'schedule', compensation: 'cancel' },
};

/**
 * Retries worth mentioning, each named by what was tried: "charge tried 3 times" (the action)
 * is not "refund tried 3 times" (its compensation). A single attempt goes without saying.
 */
function triesNote(s: CheckoutReport['steps'][number]): string {
  const verbs = VERBS[s.name] ?? { action: 'action', compensation: 'compensation' };
  return [
    s.attempts > 1 ? `${verbs.action} tried ${s.attempts} times` : '',
    s.compensationAttempts > 1 ? `${verbs.compensation} tried ${s.compensationAttempts} times` : '',
  ].filter(Boolean).join(', ');
}

/** What the rollback did, from the rows: nothing reserved or charged says so instead. */
function undoneSentence(r: CheckoutReport): string {
  const undone = [
    r.reservation?.status === 'released' ? `${r.qty} × product ${r.product.id} back in stock` : '',
    r.payment?.status === 'refunded' ? `${formatMoney(r.payment.amountCents)} refunded` : '',
    r.order?.status === 'cancelled' ? `order #${r.order.orderId} cancelled` : '',
    r.shipment?.status === 'cancelled' ? `shipment #${r.shipment.shipmentId} cancelled` : '',
  ].filter(Boolean);
  return undone.length === 0 ? 'Nothing had taken effect: no stock was taken, no money moved.' : `Rolled back: ${undone.join(', ')}. Nothing is left half-done.`;
}

function detail(step: string, r: CheckoutReport): string {
  switch (step) {
    case 'inventory':
      return r.reservation ? `${r.reservation.qty} unit${r.reservation.qty === 1 ? '' : 's'} ${r.reservation.status}` : '';
    case 'payment':
      return r.payment ? `${formatMoney(r.payment.amountCents)} ${r.payment.status}` : '';
    case 'order':
      return r.order ? `order #${r.order.orderId} ${r.order.status}` : '';
    case 'shipping':
      return r.shipment ? `shipment #${r.shipment.shipmentId} ${r.shipment.status}` : '';
    default:
      return '';
  }
}
