import type { SqlWrite } from '../engine/definition.js';
import type { SqlDatabase } from '../store/sql.js';

/** The demo catalog `saga seed` loads. Product 101 is the one the README uses. */
export const SEED_PRODUCTS = [
  { productId: 101, name: 'Mechanical keyboard', priceCents: 8999, stock: 25 },
  { productId: 102, name: 'Wireless mouse', priceCents: 2450, stock: 60 },
  { productId: 103, name: 'USB-C hub', priceCents: 3900, stock: 12 },
  { productId: 104, name: '27-inch 4K monitor', priceCents: 32900, stock: 4 },
  { productId: 105, name: 'Laptop stand', priceCents: 4500, stock: 0 },
] as const;

/** Customer 1 pays by default and can afford a lot; customer 2's card is declined for most things. */
export const SEED_CUSTOMERS = [
  { customerId: 1, name: 'Ada Lovelace', email: 'ada@example.com', balanceCents: 100_000_000 },
  { customerId: 2, name: 'Grace Hopper', email: 'grace@example.com', balanceCents: 5_000 },
] as const;

export const DEFAULT_CUSTOMER_ID = 1;

/** The catalog as inserts that skip what is there: what a new database is created with. */
export function seedWrites(): SqlWrite[] {
  const writes: SqlWrite[] = [];
  for (const p of SEED_PRODUCTS) {
    writes.push(
      { sql: 'INSERT INTO products (product_id, name, price_cents, seeded_stock) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING', params: [p.productId, p.name, p.priceCents, p.stock] },
      { sql: 'INSERT INTO inventory (product_id, stock) VALUES (?, ?) ON CONFLICT DO NOTHING', params: [p.productId, p.stock] },
    );
  }
  for (const c of SEED_CUSTOMERS) {
    writes.push(
      { sql: 'INSERT INTO customers (customer_id, name, email) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', params: [c.customerId, c.name, c.email] },
      { sql: 'INSERT INTO provider_accounts (customer_id, opening_balance_cents, balance_cents) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', params: [c.customerId, c.balanceCents, c.balanceCents] },
    );
  }
  return writes;
}

/** Loads the catalog where it is missing, in one transaction; changes nothing when it is there. Returns rows added. */
export async function seedCatalog(db: SqlDatabase): Promise<number> {
  return (await db.batch(seedWrites())).reduce((a, b) => a + b, 0);
}

/**
 * Puts the catalog back to its seeded state and clears every order, payment, shipment, saga and
 * the provider's ledger, in one transaction. The only place rows are deleted: an explicit reset
 * of the demo (and `saga prune`'s deletion of old logs), never a compensation.
 */
export async function resetCatalog(db: SqlDatabase): Promise<void> {
  const tables = ['saga_prunes', 'saga_takeovers', 'saga_events', 'shipments', 'orders', 'payments', 'reservations', 'sagas', 'provider_ledger', 'provider_accounts', 'inventory', 'customers', 'products'];
  await db.batch([...tables.map((t) => ({ sql: `DELETE FROM ${t}`, params: [] })), ...seedWrites()]);
}
