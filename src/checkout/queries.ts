import type { SqlDatabase } from '../store/sql.js';

export interface Product {
  readonly productId: number;
  readonly name: string;
  readonly priceCents: number;
  readonly stock: number;
}

export function findProduct(db: SqlDatabase, productId: number): Promise<Product | undefined> {
  return db.get<Product>(
    'SELECT p.product_id AS "productId", p.name, p.price_cents AS "priceCents", i.stock FROM products p JOIN inventory i ON i.product_id = p.product_id WHERE p.product_id = ?',
    [productId],
  );
}

export async function customerExists(db: SqlDatabase, customerId: number): Promise<boolean> {
  return (await db.get('SELECT 1 AS one FROM customers WHERE customer_id = ?', [customerId])) !== undefined;
}

export interface CheckoutRows {
  readonly order: { orderId: number; status: string; amountCents: number } | null;
  readonly payment: { paymentId: number; status: string; amountCents: number; providerChargeId: string } | null;
  readonly shipment: { shipmentId: number; status: string } | null;
  readonly reservation: { qty: number; status: string } | null;
}

/** The business rows one checkout saga produced. */
export async function checkoutRows(db: SqlDatabase, sagaId: string): Promise<CheckoutRows> {
  const one = async <T>(sql: string) => (await db.get<T>(sql, [sagaId])) ?? null;
  const [order, payment, shipment, reservation] = await Promise.all([
    one<CheckoutRows['order']>('SELECT order_id AS "orderId", status, amount_cents AS "amountCents" FROM orders WHERE saga_id = ?'),
    one<CheckoutRows['payment']>('SELECT payment_id AS "paymentId", status, amount_cents AS "amountCents", provider_charge_id AS "providerChargeId" FROM payments WHERE saga_id = ?'),
    one<CheckoutRows['shipment']>('SELECT shipment_id AS "shipmentId", status FROM shipments WHERE saga_id = ?'),
    one<CheckoutRows['reservation']>('SELECT qty, status FROM reservations WHERE saga_id = ?'),
  ]);
  return { order, payment, shipment, reservation };
}

export function formatMoney(cents: number): string {
  return `$${(cents / 100).toFixed(2)}`;
}
