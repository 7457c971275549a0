import type { Db } from '../store/sqlite/open.js';

export interface Product {
  readonly productId: number;
  readonly name: string;
  readonly priceCents: number;
  readonly stock: number;
}

export function findProduct(db: Db, productId: number): Product | undefined {
  return db
    .prepare('SELECT p.product_id AS productId, p.name, p.price_cents AS priceCents, i.stock FROM products p JOIN inventory i USING (product_id) WHERE p.product_id = ?')
    .get(productId) as Product | undefined;
}

export function customerExists(db: Db, customerId: number): boolean {
  return db.prepare('SELECT 1 FROM customers WHERE customer_id = ?').get(customerId) !== undefined;
}

export interface CheckoutRows {
  readonly order: { orderId: number; status: string; amountCents: number } | null;
  readonly payment: { paymentId: number; status: string; amountCents: number; providerChargeId: string } | null;
  readonly shipment: { shipmentId: number; status: string } | null;
  readonly reservation: { qty: number; status: string } | null;
}

/** The business rows one checkout saga produced. */
export function checkoutRows(db: Db, sagaId: string): CheckoutRows {
  const one = <T>(sql: string) => (db.prepare(sql).get(sagaId) as T | undefined) ?? null;
  return {
    order: one('SELECT order_id AS orderId, status, amount_cents AS amountCents FROM orders WHERE saga_id = ?'),
    payment: one('SELECT payment_id AS paymentId, status, amount_cents AS amountCents, provider_charge_id AS providerChargeId FROM payments WHERE saga_id = ?'),
    shipment: one('SELECT shipment_id AS shipmentId, status FROM shipments WHERE saga_id = ?'),
    reservation: one('SELECT qty, status FROM reservations WHERE saga_id = ?'),
  };
}

export function formatMoney(cents: number): string {
  return `$${(cents / 100).toFixed(2)}`;
}
