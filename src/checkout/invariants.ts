import { isAbandoned, type LocalMachine } from '../engine/recovery.js';
import { compensationOrder, foldEvents } from '../engine/step-state.js';
import type { SagaStatus, StepEvent } from '../engine/store.js';
import { OWNER_COLUMNS, parseStoredInput, toOwnerFields, type OwnerRow } from '../store/saga-rows.js';
import { sagaIdOfKey, type Dialect, type SqlDatabase } from '../store/sql.js';
import { CHECKOUT_SAGA, CHECKOUT_STEPS } from './checkout-saga.js';
import { formatMoney } from './queries.js';

/**
 * The invariants of docs/guarantees.md checked over a whole database: what `saga verify` prints
 * and what every crash and concurrency test asserts. Each check names the rows involved.
 */
export interface Violation {
  readonly invariant: string;
  readonly message: string;
  readonly rows: readonly Record<string, unknown>[];
}

interface Check {
  readonly invariant: string;
  readonly sql: string;
  /** Parameters of `sql`: `saga prune`'s latest cutoff (0 when nothing was pruned), as often as it needs it. */
  readonly prunedBeforeParams?: number;
  readonly message: (row: Record<string, unknown>) => string;
}

const checks = (dialect: Dialect): readonly Check[] => [
  {
    invariant: 'stock-conserved',
    sql: `SELECT p.product_id, p.seeded_stock, i.stock AS available,
            coalesce((SELECT sum(qty) FROM reservations r WHERE r.product_id = p.product_id AND r.status = 'held'), 0) AS held
          FROM products p JOIN inventory i USING (product_id)
          WHERE p.seeded_stock <> i.stock + coalesce((SELECT sum(qty) FROM reservations r WHERE r.product_id = p.product_id AND r.status = 'held'), 0)`,
    message: (r) => `product ${r.product_id}: seeded ${r.seeded_stock} <> available ${r.available} + held ${r.held}`,
  },
  {
    invariant: 'stock-held-by-rolled-back-saga',
    sql: `SELECT r.saga_id, r.product_id, r.qty, s.status FROM reservations r JOIN sagas s USING (saga_id)
          WHERE r.status = 'held' AND s.status = 'compensated'`,
    message: (r) => `saga ${r.saga_id} is compensated but still holds ${r.qty} of product ${r.product_id}`,
  },
  {
    invariant: 'charge-without-cause',
    // A payment whose saga was pruned (made before the latest prune's cutoff) has no log left to
    // check it against; pruned-saga-half-done checks it against its order and shipment instead.
    sql: `SELECT p.payment_id, p.saga_id, p.amount_cents, s.status AS saga_status FROM payments p LEFT JOIN sagas s USING (saga_id)
          WHERE p.status = 'charged' AND ((s.saga_id IS NULL AND p.created_at >= ?) OR s.status = 'compensated')`,
    prunedBeforeParams: 1,
    message: (r) => `payment ${r.payment_id} of saga ${r.saga_id} is charged but the saga is ${r.saga_status ?? 'missing'}`,
  },
  {
    invariant: 'provider-charge-not-refunded',
    sql: `SELECT l.idempotency_key, l.amount_cents, s.saga_id, s.status AS saga_status FROM provider_ledger l
          LEFT JOIN sagas s ON s.saga_id = ${sagaIdOfKey(dialect, 'l.idempotency_key')}
          WHERE l.kind = 'charge' AND (s.status = 'compensated' OR (s.saga_id IS NULL AND (l.created_at >= ?
              -- A pruned saga ended: a charge it kept means it completed, so it has a charged payment.
              OR NOT EXISTS (SELECT 1 FROM payments p WHERE p.saga_id = ${sagaIdOfKey(dialect, 'l.idempotency_key')} AND p.status = 'charged'))))
            AND NOT EXISTS (SELECT 1 FROM provider_ledger r WHERE r.kind = 'refund' AND r.charge_key = l.idempotency_key)`,
    prunedBeforeParams: 1,
    message: (r) => `the provider holds charge ${r.idempotency_key} (${formatMoney(Number(r.amount_cents))}) but saga ${r.saga_id ?? '?'} is ${r.saga_status ?? 'missing'} and it was never refunded`,
  },
  {
    // Our payments row and the provider's ledger tell the same story about the charge.
    invariant: 'payment-disagrees-with-provider',
    sql: `WITH provider AS (
            SELECT p.payment_id, p.saga_id, p.status,
              (SELECT kind FROM provider_ledger WHERE idempotency_key = p.saga_id || ':payment') AS provider_charge,
              (SELECT count(*) FROM provider_ledger r WHERE r.kind = 'refund' AND r.charge_key = p.saga_id || ':payment') AS provider_refunds
            FROM payments p)
          SELECT * FROM provider
          WHERE (status = 'charged' AND (coalesce(provider_charge, '') <> 'charge' OR provider_refunds > 0))
             OR (status = 'refunded' AND provider_refunds = 0)`,
    message: (r) => `payment ${r.payment_id} of saga ${r.saga_id} is ${r.status}, but the provider shows ${r.provider_charge ?? 'no charge'} and ${r.provider_refunds} refund(s)`,
  },
  {
    invariant: 'charged-twice',
    sql: `SELECT ${sagaIdOfKey(dialect, 'idempotency_key')} AS saga_id, count(*) AS charges, sum(amount_cents) AS total_cents
          FROM provider_ledger WHERE kind = 'charge' GROUP BY 1 HAVING count(*) > 1`,
    message: (r) => `saga ${r.saga_id} was charged ${r.charges} times (${formatMoney(Number(r.total_cents))} in all)`,
  },
  {
    invariant: 'money-conserved',
    sql: `WITH accounts AS (
            SELECT a.customer_id, a.opening_balance_cents, a.balance_cents,
              coalesce((SELECT sum(c.amount_cents) FROM provider_ledger c WHERE c.kind = 'charge' AND c.customer_id = a.customer_id
                AND NOT EXISTS (SELECT 1 FROM provider_ledger r WHERE r.kind = 'refund' AND r.charge_key = c.idempotency_key)), 0) AS kept_cents
            FROM provider_accounts a)
          SELECT * FROM accounts WHERE opening_balance_cents <> balance_cents + kept_cents`,
    message: (r) => `customer ${r.customer_id}: opening balance ${formatMoney(Number(r.opening_balance_cents))} <> balance ${formatMoney(Number(r.balance_cents))} + charges kept ${formatMoney(Number(r.kept_cents))}`,
  },
  {
    invariant: 'shipment-for-cancelled-order',
    sql: `SELECT sh.shipment_id, sh.saga_id, o.order_id, o.status AS order_status FROM shipments sh JOIN orders o USING (order_id)
          WHERE sh.status = 'scheduled' AND o.status <> 'confirmed'`,
    message: (r) => `shipment ${r.shipment_id} is scheduled for order ${r.order_id}, which is ${r.order_status}`,
  },
  {
    invariant: 'completed-saga-incomplete',
    sql: `SELECT s.saga_id,
            (SELECT status FROM orders WHERE saga_id = s.saga_id) AS order_status,
            (SELECT status FROM payments WHERE saga_id = s.saga_id) AS payment_status,
            (SELECT status FROM shipments WHERE saga_id = s.saga_id) AS shipment_status,
            (SELECT status FROM reservations WHERE saga_id = s.saga_id) AS reservation_status
          FROM sagas s WHERE s.status = 'completed' AND NOT (
            coalesce((SELECT status FROM orders WHERE saga_id = s.saga_id), '') = 'confirmed'
            AND coalesce((SELECT status FROM payments WHERE saga_id = s.saga_id), '') = 'charged'
            AND coalesce((SELECT status FROM shipments WHERE saga_id = s.saga_id), '') = 'scheduled'
            AND coalesce((SELECT status FROM reservations WHERE saga_id = s.saga_id), '') = 'held')`,
    message: (r) => `completed saga ${r.saga_id} lacks its effects: order ${r.order_status ?? 'missing'}, payment ${r.payment_status ?? 'missing'}, shipment ${r.shipment_status ?? 'missing'}, stock ${r.reservation_status ?? 'missing'}`,
  },
  {
    invariant: 'rolled-back-saga-left-effects',
    sql: `SELECT s.saga_id,
            (SELECT status FROM orders WHERE saga_id = s.saga_id) AS order_status,
            (SELECT status FROM shipments WHERE saga_id = s.saga_id) AS shipment_status
          FROM sagas s WHERE s.status = 'compensated' AND (
            EXISTS (SELECT 1 FROM orders WHERE saga_id = s.saga_id AND status = 'confirmed')
            OR EXISTS (SELECT 1 FROM shipments WHERE saga_id = s.saga_id AND status = 'scheduled'))`,
    message: (r) => `compensated saga ${r.saga_id} still has order ${r.order_status ?? '-'} / shipment ${r.shipment_status ?? '-'}`,
  },
  {
    // What the two checks above say of a saga whose log `saga prune` removed: it was terminal, so
    // its rows are all done (completed) or all undone (compensated), never a mix.
    invariant: 'pruned-saga-half-done',
    sql: `SELECT r.saga_id, r.status AS reservation_status, p.status AS payment_status, o.status AS order_status, sh.status AS shipment_status
          FROM reservations r
          LEFT JOIN payments p ON p.saga_id = r.saga_id
          LEFT JOIN orders o ON o.saga_id = r.saga_id
          LEFT JOIN shipments sh ON sh.saga_id = r.saga_id
          WHERE r.created_at < ? AND NOT EXISTS (SELECT 1 FROM sagas s WHERE s.saga_id = r.saga_id)
            AND NOT (
              (r.status = 'held' AND coalesce(p.status, '') = 'charged' AND coalesce(o.status, '') = 'confirmed' AND coalesce(sh.status, '') = 'scheduled')
              OR (r.status = 'released' AND coalesce(p.status, 'refunded') = 'refunded' AND coalesce(o.status, 'cancelled') = 'cancelled' AND coalesce(sh.status, 'cancelled') = 'cancelled'))`,
    prunedBeforeParams: 1,
    message: (r) => `saga ${r.saga_id} was pruned as ended, but its rows are half done: stock ${r.reservation_status}, payment ${r.payment_status ?? '-'}, order ${r.order_status ?? '-'}, shipment ${r.shipment_status ?? '-'}`,
  },
];

/** What `saga prune` removed, which verify can no longer check against the log. */
export interface PrunedLogs {
  /** Sagas whose log was pruned, in all. */
  readonly sagas: number;
  /** The latest cutoff: every pruned saga ended before it (ms since the epoch), or null. */
  readonly endedBefore: number | null;
}

export async function prunedLogs(db: SqlDatabase): Promise<PrunedLogs> {
  const row = await db.get<{ sagas: number | null; ended_before: number | null }>('SELECT sum(sagas) AS sagas, max(ended_before) AS ended_before FROM saga_prunes');
  return { sagas: Number(row?.sagas ?? 0), endedBefore: row?.ended_before === null || row?.ended_before === undefined ? null : Number(row.ended_before) };
}

export interface LivenessProbe {
  readonly now: number;
  /** How the checking process sees its machine: who can be proven gone (rule 7). */
  readonly machine: LocalMachine;
}

export async function checkInvariants(db: SqlDatabase, probe: LivenessProbe): Promise<Violation[]> {
  const violations: Violation[] = [];
  const prunedBefore = (await prunedLogs(db)).endedBefore ?? 0;
  for (const check of checks(db.dialect)) {
    const params = Array.from({ length: check.prunedBeforeParams ?? 0 }, () => prunedBefore);
    for (const row of await db.all<Record<string, unknown>>(check.sql, params)) {
      violations.push({ invariant: check.invariant, message: check.message(row), rows: [row] });
    }
  }
  violations.push(...(await unownedSagas(db, probe)), ...(await logDisagreements(db)));
  return violations;
}

interface UnfinishedRow extends OwnerRow {
  saga_id: string;
  input: string;
}

/**
 * Every saga is terminal, stuck, or owned under a live lease; and every unfinished saga can be
 * driven (a damaged row is a violation, not a crash of verify). Only unfinished rows are read
 * back: they are few, and they are the ones recovery must be able to drive.
 */
async function unownedSagas(db: SqlDatabase, probe: LivenessProbe): Promise<Violation[]> {
  const rows = await db.all<UnfinishedRow>(
    `SELECT saga_id, input, ${OWNER_COLUMNS} FROM sagas WHERE status IN ('running', 'compensating', 'stuck')`,
  );
  const violations: Violation[] = [];
  for (const { input, ...r } of rows) {
    const { damage } = parseStoredInput(input);
    if (damage !== null) {
      violations.push({
        invariant: 'saga-damaged',
        message: `saga ${r.saga_id} is ${r.status} but ${damage}: recovery cannot drive it; repair its input (or restore the row from a backup), then run \`saga recover\``,
        rows: [{ saga_id: r.saga_id, status: r.status, input }],
      });
    }
    if (r.status !== 'stuck' && isAbandoned(toOwnerFields(r), probe.now, probe.machine)) {
      violations.push({ invariant: 'saga-abandoned', message: `saga ${r.saga_id} is ${r.status} with no live owner: run \`saga recover\``, rows: [r] });
    }
  }
  return violations;
}

/** The log and the business tables tell the same story: the log's steps match the saga's status. */
async function logDisagreements(db: SqlDatabase): Promise<Violation[]> {
  const violations: Violation[] = [];
  // One pass over the log of every finished saga, grouped in memory: no query per saga.
  const events = await db.all<{ saga_id: string; status: SagaStatus; step_index: number; phase: StepEvent['phase']; event: StepEvent['event']; attempt: number; uncertain: number | null }>(
    `SELECT s.saga_id, s.status, e.step_index, e.phase, e.event, e.attempt, e.uncertain
     FROM sagas s JOIN saga_events e ON e.saga_id = s.saga_id
     WHERE s.status IN ('completed', 'compensated') AND s.definition = ? ORDER BY s.saga_id, e.event_id`,
    [CHECKOUT_SAGA],
  );
  let i = 0;
  while (i < events.length) {
    const sagaId = events[i]!.saga_id;
    const status = events[i]!.status;
    const own: StepEvent[] = [];
    for (; i < events.length && events[i]!.saga_id === sagaId; i++) {
      const e = events[i]!;
      own.push({ sagaId, step: '', stepIndex: e.step_index, phase: e.phase, event: e.event, attempt: e.attempt, at: 0, uncertain: e.uncertain === 1 });
    }
    const states = foldEvents(CHECKOUT_STEPS.length, own);
    if (status === 'completed' && states.some((st) => st.action !== 'succeeded' || st.compensation !== 'none')) {
      violations.push({ invariant: 'log-disagrees', message: `saga ${sagaId} is completed but its log does not show every step succeeded`, rows: [{ saga_id: sagaId, status }] });
    }
    if (status === 'compensated' && compensationOrder(states).length > 0) {
      const steps = compensationOrder(states).map((k) => CHECKOUT_STEPS[k]);
      violations.push({ invariant: 'log-disagrees', message: `saga ${sagaId} is compensated but its log shows ${steps.join(', ')} not compensated`, rows: [{ saga_id: sagaId, status }] });
    }
  }
  return violations;
}
