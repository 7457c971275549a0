import type { SagaStatus } from '../engine/store.js';
import { parseStoredInput } from './saga-rows.js';
import type { SqlDatabase } from './sql.js';

/** Read models for `saga list` and `saga inventory`, portable across SQLite and PostgreSQL. */
export interface SagaListRow {
  readonly sagaId: string;
  readonly definition: string;
  readonly status: SagaStatus;
  readonly productId: number | null;
  readonly qty: number | null;
  readonly failedStep: string | null;
  readonly error: string | null;
  readonly createdAt: number;
  readonly endedAt: number | null;
  readonly leaseUntil: number | null;
  /** Why the row cannot be read in full (its stored input is not JSON), or null. */
  readonly damage: string | null;
}

type ListedRow = Omit<SagaListRow, 'productId' | 'qty' | 'damage'> & { input: string };

// The input is read here, not by the database: one damaged row must not fail the whole listing.
const LIST_COLUMNS = `saga_id AS "sagaId", definition, status, input, failed_step AS "failedStep", error,
  created_at AS "createdAt", ended_at AS "endedAt", lease_until AS "leaseUntil"`;

/** Most recent first; walks `sagas_created` or `sagas_status_created` backwards, never the table. */
export async function listSagas(db: SqlDatabase, opts: { status?: SagaStatus; limit: number }): Promise<SagaListRow[]> {
  const rows = opts.status === undefined
    ? await db.all<ListedRow>(`SELECT ${LIST_COLUMNS} FROM sagas ORDER BY created_at DESC, saga_id LIMIT ?`, [opts.limit])
    : await db.all<ListedRow>(`SELECT ${LIST_COLUMNS} FROM sagas WHERE status = ? ORDER BY created_at DESC LIMIT ?`, [opts.status, opts.limit]);
  return rows.map(toListRow);
}

/** Where a page of `listSagasPage` ended: the last row's place in `created_at DESC, saga_id` order. */
export interface ListPosition {
  readonly createdAt: number;
  readonly sagaId: string;
}

/**
 * A page of `listSagas` after `after` (`GET /api/sagas?cursor=`), in the same order over the same
 * indexes: a keyset, so a page costs its own rows whatever its depth, and sagas started meanwhile
 * never shift a page.
 */
export async function listSagasPage(db: SqlDatabase, opts: { status?: SagaStatus; limit: number; after?: ListPosition }): Promise<SagaListRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (opts.status !== undefined) {
    where.push('status = ?');
    params.push(opts.status);
  }
  if (opts.after !== undefined) {
    where.push('(created_at < ? OR (created_at = ? AND saga_id > ?))');
    params.push(opts.after.createdAt, opts.after.createdAt, opts.after.sagaId);
  }
  const rows = await db.all<ListedRow>(
    `SELECT ${LIST_COLUMNS} FROM sagas ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`} ORDER BY created_at DESC, saga_id LIMIT ?`,
    [...params, opts.limit],
  );
  return rows.map(toListRow);
}

function toListRow({ input, ...row }: ListedRow): SagaListRow {
  const parsed = parseStoredInput(input);
  const fields = (parsed.input ?? {}) as { productId?: unknown; qty?: unknown };
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  return { ...row, productId: num(fields.productId), qty: num(fields.qty), damage: parsed.damage };
}

/**
 * Saga ids that start or end with `fragment` (at most two: enough to tell unique from ambiguous),
 * so `saga show` takes the short id the console prints. Only asked when no id matches exactly.
 */
export async function sagaIdsMatching(db: SqlDatabase, fragment: string): Promise<string[]> {
  const rows = await db.all<{ saga_id: string }>(
    `SELECT saga_id FROM sagas WHERE saga_id LIKE ? OR saga_id LIKE ? LIMIT 2`,
    [`${fragment}%`, `%${fragment}`],
  );
  return rows.map((r) => r.saga_id);
}

export interface InventoryRow {
  readonly productId: number;
  readonly name: string;
  readonly priceCents: number;
  readonly seeded: number;
  readonly available: number;
  /** Held by sagas still in flight (or stuck). */
  readonly reserved: number;
  /** Held by completed sagas. */
  readonly sold: number;
}

export function inventoryReport(db: SqlDatabase): Promise<InventoryRow[]> {
  return db.all<InventoryRow>(
      `SELECT p.product_id AS "productId", p.name, p.price_cents AS "priceCents", p.seeded_stock AS seeded, i.stock AS available,
         coalesce(sum(CASE WHEN r.status = 'held' AND s.status <> 'completed' THEN r.qty END), 0) AS reserved,
         coalesce(sum(CASE WHEN r.status = 'held' AND s.status = 'completed' THEN r.qty END), 0) AS sold
       FROM products p JOIN inventory i USING (product_id)
       LEFT JOIN reservations r ON r.product_id = p.product_id AND r.status = 'held'
       LEFT JOIN sagas s ON s.saga_id = r.saga_id
       GROUP BY p.product_id, p.name, p.price_cents, p.seeded_stock, i.stock ORDER BY p.product_id`,
  );
}

/** How many sagas are stuck now (the `saga_stuck` gauge of `saga serve`); uses sagas_status_created. */
export async function countStuck(db: SqlDatabase): Promise<number> {
  return (await db.get<{ n: number }>(`SELECT count(*) AS n FROM sagas WHERE status = 'stuck'`))?.n ?? 0;
}
