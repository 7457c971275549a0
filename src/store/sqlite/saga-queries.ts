import type { SagaStatus } from '../../engine/store.js';
import type { Db } from './open.js';

/** Read models for `saga list` and `saga inventory`: each answers from an index, never a scan. */
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
}

const LIST_COLUMNS = `saga_id AS sagaId, definition, status, json_extract(input, '$.productId') AS productId,
  json_extract(input, '$.qty') AS qty, failed_step AS failedStep, error, created_at AS createdAt, ended_at AS endedAt, lease_until AS leaseUntil`;

/** Most recent first; uses `sagas_created` or `sagas_status_created`. */
export function listSagas(db: Db, opts: { status?: SagaStatus; limit: number }): SagaListRow[] {
  if (opts.status === undefined) {
    return db.prepare(`SELECT ${LIST_COLUMNS} FROM sagas ORDER BY created_at DESC, saga_id DESC LIMIT ?`).all(opts.limit) as SagaListRow[];
  }
  return db.prepare(`SELECT ${LIST_COLUMNS} FROM sagas WHERE status = ? ORDER BY created_at DESC LIMIT ?`).all(opts.status, opts.limit) as SagaListRow[];
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

export function inventoryReport(db: Db): InventoryRow[] {
  return db
    .prepare(
      `SELECT p.product_id AS productId, p.name, p.price_cents AS priceCents, p.seeded_stock AS seeded, i.stock AS available,
         coalesce(sum(CASE WHEN r.status = 'held' AND s.status <> 'completed' THEN r.qty END), 0) AS reserved,
         coalesce(sum(CASE WHEN r.status = 'held' AND s.status = 'completed' THEN r.qty END), 0) AS sold
       FROM products p JOIN inventory i USING (product_id)
       LEFT JOIN reservations r ON r.product_id = p.product_id AND r.status = 'held'
       LEFT JOIN sagas s ON s.saga_id = r.saga_id
       GROUP BY p.product_id ORDER BY p.product_id`,
    )
    .all() as InventoryRow[];
}
