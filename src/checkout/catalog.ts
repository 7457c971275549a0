import type { Db } from '../store/sqlite/open.js';

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

/** Loads the catalog where it is missing; changes nothing when it is there. Returns rows added. */
export function seedCatalog(db: Db): number {
  return db.transaction(() => {
    let added = 0;
    const product = db.prepare('INSERT OR IGNORE INTO products (product_id, name, price_cents, seeded_stock) VALUES (?, ?, ?, ?)');
    const stock = db.prepare('INSERT OR IGNORE INTO inventory (product_id, stock) VALUES (?, ?)');
    for (const p of SEED_PRODUCTS) {
      added += product.run(p.productId, p.name, p.priceCents, p.stock).changes;
      added += stock.run(p.productId, p.stock).changes;
    }
    const customer = db.prepare('INSERT OR IGNORE INTO customers (customer_id, name, email) VALUES (?, ?, ?)');
    const account = db.prepare('INSERT OR IGNORE INTO provider_accounts (customer_id, opening_balance_cents, balance_cents) VALUES (?, ?, ?)');
    for (const c of SEED_CUSTOMERS) {
      added += customer.run(c.customerId, c.name, c.email).changes;
      added += account.run(c.customerId, c.balanceCents, c.balanceCents).changes;
    }
    return added;
  }).immediate();
}

/**
 * Puts the catalog back to its seeded state and clears every order, payment, shipment, saga and
 * the provider's ledger. The only place rows are deleted: an explicit reset of the demo, never a
 * compensation.
 */
export function resetCatalog(db: Db): void {
  db.transaction(() => {
    for (const table of ['saga_events', 'shipments', 'orders', 'payments', 'reservations', 'sagas', 'provider_ledger', 'provider_accounts', 'inventory', 'customers', 'products']) {
      db.exec(`DELETE FROM ${table}`);
    }
    seedCatalog(db);
  }).immediate();
}
